"""``tconv_sparse.torch``'s layers against ``torch.nn``'s: arguments, parameters, outputs, repr.

The transposed layers with a padding mode or string padding (which ``torch.nn`` has not)
are checked against ``ts.conv_transpose``'s sparse ``C.T @ y``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import tconv_sparse as ts
from conftest import assert_close

torch = pytest.importorskip("torch")
tst = pytest.importorskip("tconv_sparse.torch")

LAYERS = [f"Conv{d}d" for d in (1, 2, 3)] + [f"ConvTranspose{d}d" for d in (1, 2, 3)]

# arguments torch.nn takes too (zero padding); output_padding only for the transposed layers
_ARGUMENTS = dict(stride=2, padding=1, dilation=(1, 2, 1), groups=2)


def _arguments(name):
    ndim = int(name[-2])
    arguments = dict(_ARGUMENTS, dilation=_ARGUMENTS["dilation"][:ndim])
    if name.startswith("ConvTranspose"):
        arguments["output_padding"] = 1
    return arguments


def _input(name, channels=4, size=5, seed=0):
    ndim = int(name[-2])
    return torch.randn(2, channels, *(size,) * ndim, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


@pytest.mark.parametrize("name", LAYERS)
def test_constructor_arguments_are_torch_nn_s(name):
    ours, theirs = (inspect.signature(getattr(module, name)).parameters for module in (tst, torch.nn))
    assert list(ours) == list(theirs)
    differ = {key: ours[key].default for key in ours if ours[key].default != theirs[key].default}
    # output_padding=None: 0 for numeric padding, as in PyTorch; the Keras default for "valid" / "same"
    assert differ == ({"output_padding": None} if name.startswith("ConvTranspose") else {})


@pytest.mark.parametrize("name", LAYERS)
def test_state_dict_loads_both_ways_and_outputs_equal(name):
    arguments = _arguments(name)
    torch.manual_seed(3)
    ours = getattr(tst, name)(4, 6, 3, **arguments, dtype=torch.float64)
    torch.manual_seed(3)
    theirs = getattr(torch.nn, name)(4, 6, 3, **arguments, dtype=torch.float64)
    for (key, value), (other_key, other) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert key == other_key and torch.equal(value, other)     # same parameters, same initialisation
    x = _input(name)
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours(x[0]), theirs(x[0]))
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.mul_(-2.0)
    ours.load_state_dict(theirs.state_dict())
    torch.testing.assert_close(ours(x), theirs(x))
    theirs.load_state_dict(getattr(tst, name)(4, 6, 3, **arguments, dtype=torch.float64).state_dict())
    assert not torch.allclose(ours(x), theirs(x))


@pytest.mark.parametrize("ndim", (1, 2, 3))
def test_transposed_output_size_as_torch_nn(ndim):
    name = f"ConvTranspose{ndim}d"
    torch.manual_seed(1)
    ours = getattr(tst, name)(4, 2, 3, stride=2, padding=1, dtype=torch.float64)
    theirs = getattr(torch.nn, name)(4, 2, 3, stride=2, padding=1, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    y, size = _input(name, size=3), (6,) * ndim
    for output_size in (size, (2, 2, *size)):
        torch.testing.assert_close(ours(y, output_size=output_size), theirs(y, output_size=output_size))


@pytest.mark.parametrize("mode", ("zeros", "circular", "reflect", "replicate"))
@pytest.mark.parametrize("padding", ("same", "valid", "full", ((1, 0), (2, 1)), 1))
def test_transposed_layers_take_every_mode_and_string_padding(padding, mode):
    layer = tst.ConvTranspose2d(4, 2, 3, stride=2, padding=padding, padding_mode=mode, dtype=torch.float64)
    y = _input("ConvTranspose2d", size=4)
    expected = ts.conv_transpose(y.numpy(), layer.weight.detach().numpy(), layer.bias.detach().numpy(),
                                 stride=2, padding=padding, padding_mode=mode, method="sparse")
    assert_close(layer(y).detach().numpy(), expected, np.float64)


def test_forward_layers_take_every_mode_and_string_padding():
    layer = tst.Conv1d(4, 2, 3, stride=2, padding="same", padding_mode="reflect", dtype=torch.float64)
    x = _input("Conv1d", size=7)
    expected = ts.conv(x.numpy(), layer.weight.detach().numpy(), layer.bias.detach().numpy(), stride=2,
                       padding="same", padding_mode="reflect", method="sparse")
    assert_close(layer(x).detach().numpy(), expected, np.float64)


@pytest.mark.parametrize("name", LAYERS)
def test_repr_is_torch_nn_s_and_shows_the_new_arguments(name):
    arguments = dict(_arguments(name), bias=False)
    ours, theirs = (getattr(module, name)(4, 6, 3, **arguments) for module in (tst, torch.nn))
    assert repr(ours) == repr(theirs)
    layer = getattr(tst, name)(4, 6, 3, stride=2, padding="same", padding_mode="circular")
    assert repr(layer) == (f"{name}(4, 6, kernel_size={layer.kernel_size}, stride={layer.stride}, "
                           "padding=same, padding_mode=circular)")


BAD_ARGUMENTS = [
    (dict(kernel_size=0), "kernel_size"), (dict(kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(stride=0), "stride"), (dict(stride=1.5), "stride"), (dict(dilation=(1, 0)), "dilation"),
    (dict(groups=0), "groups"), (dict(groups=3), "in_channels"), (dict(out_channels=5), "out_channels"),
    (dict(in_channels=True), "in_channels"), (dict(padding=-1), "padding"), (dict(padding="half"), "padding"),
    (dict(padding_mode="wrap"), "padding_mode"),
]


@pytest.mark.parametrize("name", ("Conv2d", "ConvTranspose2d"))
@pytest.mark.parametrize("change, parameter", BAD_ARGUMENTS)
def test_bad_constructor_arguments_raise_value_errors_naming_them(name, change, parameter):
    arguments = dict(dict(in_channels=4, out_channels=2, kernel_size=3, groups=2), **change)
    with pytest.raises(ValueError, match=parameter):
        getattr(tst, name)(**arguments)


@pytest.mark.parametrize("change, parameter", [
    (dict(output_padding=-1), "output_padding"), (dict(output_padding=(1, 2, 3)), "output_padding"),
])
def test_bad_output_padding_raises_at_construction(change, parameter):
    with pytest.raises(ValueError, match=parameter):
        tst.ConvTranspose2d(4, 2, 3, stride=2, **change)


def test_bad_call_arguments_raise_value_errors_naming_them():
    layer = tst.ConvTranspose2d(4, 2, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="output_padding"):
        layer(torch.randn(1, 4, 3, 3))
    with pytest.raises(ValueError, match="output_size"):
        tst.ConvTranspose2d(4, 2, 3, stride=2)(torch.randn(1, 4, 3, 3), output_size=(6,))
    with pytest.raises(ValueError, match="y has 3 channels"):
        tst.ConvTranspose2d(4, 2, 3)(torch.randn(1, 3, 3, 3))


# attribute changes after construction (torch.nn's layers read theirs on every call, too)
_CHANGES = [
    dict(padding_mode="circular"), dict(padding_mode="reflect", padding=(1, 0)),
    dict(stride=(1, 2), output_padding=(0, 1)), dict(padding="same", output_padding=None),
    dict(padding=((1, 0), (2, 1))), dict(dilation=(2, 1)), dict(padding=[0, 2]),
]


@pytest.mark.parametrize("change", _CHANGES, ids=repr)
@pytest.mark.parametrize("name", ("Conv2d", "ConvTranspose2d"))
def test_attributes_changed_after_a_forward_are_honoured(name, change):
    """A layer whose attributes change after forward calls computes what a new layer would."""
    if not name.startswith("ConvTranspose"):
        change = {key: value for key, value in change.items() if key != "output_padding"}
    layer = getattr(tst, name)(4, 2, 3, stride=2, padding=1, dtype=torch.float64)
    x = _input(name, size=6)
    for _ in range(2):
        layer(x)
    for key, value in change.items():
        setattr(layer, key, value)
    fresh = getattr(tst, name)(4, 2, 3, **dict(dict(stride=2, padding=1), **change), dtype=torch.float64)
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), fresh(x))


@pytest.mark.parametrize("name", ("Conv2d", "ConvTranspose2d"))
def test_dtype_and_in_place_changes_after_a_forward_are_honoured(name):
    layer = getattr(tst, name)(4, 2, 3, stride=2, padding=1)
    x = _input(name, size=6)
    assert layer(x.float()).dtype == torch.float32
    layer.double()
    layer.padding = [1, 1]
    assert layer(x).dtype == torch.float64
    layer.padding[0] = 0   # a list attribute changed in place
    fresh = getattr(tst, name)(4, 2, 3, stride=2, padding=(0, 1), dtype=torch.float64)
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), fresh(x))


@pytest.mark.parametrize("key, value", [("stride", 1.5), ("stride", (True, 1)), ("padding", (True, 1)),
                                        ("groups", True), ("dilation", 0), ("padding_mode", "wrap")])
@pytest.mark.parametrize("name", ("Conv2d", "ConvTranspose2d"))
def test_bad_attributes_set_after_a_forward_raise_at_the_next_call(name, key, value):
    layer = getattr(tst, name)(4, 2, 3, stride=1, padding=1)
    x = _input(name, size=6).float()
    for _ in range(2):
        layer(x)
    setattr(layer, key, value)
    with pytest.raises(ValueError, match=key):
        layer(x)
