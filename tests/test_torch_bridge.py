"""``tconv_sparse.torch`` functions against independent oracles, and their gradients.

Oracles: ``ts.conv`` / ``ts.conv_transpose`` with ``method="sparse"`` (``C @ x`` and
``C.T @ y`` with the library's sparse matrix) on the same float64 data, ``F.pad`` +
``F.conv*d``, ``F.conv_transpose*d`` where PyTorch supports the case (zero padding,
symmetric numeric padding), and the adjoint dot test ``<conv(x), y> == <x, conv_transpose(y)>``
for every padding mode. Gradients:
``torch.autograd.gradcheck`` for input, weight and bias, ``gradgradcheck`` on a few cases,
and ``torch.compile`` (default backend) giving the eager numbers.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tconv_sparse as ts
from conftest import assert_close
from reference import forward_padding

torch = pytest.importorskip("torch")
F = torch.nn.functional
tst = pytest.importorskip("tconv_sparse.torch")

MODES = ("zeros", "circular", "reflect", "replicate")
_TORCH_MODE = {"zeros": "constant", "circular": "circular", "reflect": "reflect", "replicate": "replicate"}

# (input spatial shape, forward weight (C_out, C_in // groups, *k), arguments): ranks 1-3,
# numeric, per-axis, per-side and string padding, stride, dilation, groups
FORWARD_CASES = [
    ((7,), (4, 2, 3), dict(padding=1)),
    ((8,), (2, 2, 3), dict(stride=2, padding=((1, 2),))),
    ((9,), (4, 1, 3), dict(stride=3, padding="same", dilation=2, groups=2)),
    ((6, 7), (4, 2, 3, 2), dict(stride=(2, 1), padding=((1, 2), (0, 1)))),
    ((6, 5), (2, 2, 3, 3), dict(stride=2, padding="same", dilation=(1, 2))),
    ((5, 6), (4, 1, 3, 3), dict(padding="full", groups=2)),
    ((7, 6), (2, 2, 2, 3), dict(stride=2, padding="valid")),
    ((4, 5, 4), (2, 2, 3, 3, 2), dict(stride=(1, 2, 2), padding=(1, (0, 1), 1))),
    ((5, 4, 4), (2, 2, 2, 3, 3), dict(padding="same", dilation=(2, 1, 1))),
]

# (input spatial shape, weight (C_in_t, C_out_t // groups, *k), arguments of conv_transpose)
TRANSPOSE_CASES = [
    ((4,), (2, 4, 3), dict(stride=2, padding=1, output_padding=1)),
    ((5,), (4, 1, 4), dict(stride=3, padding="same", groups=2)),
    ((4,), (2, 2, 3), dict(stride=2, padding=((0, 2),), dilation=2)),
    ((3, 4), (2, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2))),
    ((3, 3), (4, 1, 3, 3), dict(stride=2, padding="same", groups=2)),
    ((4, 3), (2, 2, 3, 3), dict(stride=2, padding="valid")),
    ((3, 3), (2, 2, 3, 3), dict(stride=2, padding=((1, 0), (2, 1)), output_size=(6, 4))),
    ((3, 4), (2, 2, 3, 3), dict(stride=2, padding=1, output_size=(6, 7))),
    ((5, 6), (2, 2, 3, 3), dict(padding="full")),
    ((2, 3, 2), (2, 2, 3, 2, 3), dict(stride=2, padding=1, output_padding=(1, 0, 1), dilation=(1, 2, 1))),
    ((2, 2, 3), (4, 1, 2, 3, 3), dict(stride=(2, 1, 2), padding="same", groups=2)),
]


def _random(seed, *shape, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _forward_data(case, seed, batch=2, dtype=torch.float64):
    shape, weight_shape, kwargs = case
    channels = weight_shape[1] * kwargs.get("groups", 1)
    return (_random(seed, batch, channels, *shape, dtype=dtype),
            _random(seed + 1, *weight_shape, dtype=dtype), _random(seed + 2, weight_shape[0], dtype=dtype))


def _transpose_data(case, seed, batch=2, dtype=torch.float64):
    shape, weight_shape, kwargs = case
    channels = weight_shape[1] * kwargs.get("groups", 1)
    return (_random(seed, batch, weight_shape[0], *shape, dtype=dtype),
            _random(seed + 1, *weight_shape, dtype=dtype), _random(seed + 2, channels, dtype=dtype))


def _per_axis(value, ndim):
    return (value,) * ndim if isinstance(value, int) else tuple(value)


def _pad_then_conv(x, weight, bias, mode, kwargs):
    """The forward convolution as PyTorch writes it: ``F.pad`` (any mode), then ``F.conv*d``."""
    ndim = weight.ndim - 2
    stride, dilation = _per_axis(kwargs.get("stride", 1), ndim), _per_axis(kwargs.get("dilation", 1), ndim)
    pads = forward_padding(kwargs.get("padding", 0), tuple(x.shape[2:]), tuple(weight.shape[2:]), stride,
                           dilation)
    padded = F.pad(x, [side for lo_hi in reversed(pads) for side in lo_hi], mode=_TORCH_MODE[mode])
    return getattr(F, f"conv{ndim}d")(padded, weight, bias, stride=stride, dilation=dilation,
                                       groups=kwargs.get("groups", 1))


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index", range(len(FORWARD_CASES)))
def test_conv_equals_library_and_pad_then_conv(index, mode):
    x, weight, bias = _forward_data(FORWARD_CASES[index], index)
    kwargs = FORWARD_CASES[index][2]
    result = tst.conv(x, weight, bias, padding_mode=mode, **kwargs)
    expected = ts.conv(x.numpy(), weight.numpy(), bias.numpy(), padding_mode=mode, method="sparse",
                       **kwargs)
    assert_close(result.numpy(), expected, np.float64)
    assert_close(_pad_then_conv(x, weight, bias, mode, kwargs).numpy(), expected, np.float64)
    unbatched = tst.conv(x[0], weight, bias, padding_mode=mode, **kwargs)
    assert_close(unbatched.numpy(), expected[0], np.float64)


# ------------------------------------------------------------------ transposed
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index", range(len(TRANSPOSE_CASES)))
def test_conv_transpose_equals_library(index, mode):
    y, weight, bias = _transpose_data(TRANSPOSE_CASES[index], index)
    kwargs = TRANSPOSE_CASES[index][2]
    result = tst.conv_transpose(y, weight, bias, padding_mode=mode, **kwargs)
    expected = ts.conv_transpose(y.numpy(), weight.numpy(), bias.numpy(), padding_mode=mode,
                                 method="sparse", **kwargs)
    assert_close(result.numpy(), expected, np.float64)
    unbatched = tst.conv_transpose(y[0], weight, bias, padding_mode=mode, **kwargs)
    assert_close(unbatched.numpy(), expected[0], np.float64)


def _torch_supports(kwargs):
    """PyTorch's ``F.conv_transpose*d`` takes symmetric numeric padding and no ``output_size``."""
    padding = kwargs.get("padding", 0)
    numeric = isinstance(padding, int) or all(isinstance(p, int) for p in padding)
    return numeric and "output_size" not in kwargs


@pytest.mark.parametrize("index", [i for i, case in enumerate(TRANSPOSE_CASES) if _torch_supports(case[2])])
def test_conv_transpose_equals_torch(index):
    y, weight, bias = _transpose_data(TRANSPOSE_CASES[index], index)
    kwargs = TRANSPOSE_CASES[index][2]
    torch_transpose = getattr(F, f"conv_transpose{weight.ndim - 2}d")
    expected = torch_transpose(y, weight, bias, **kwargs)
    torch.testing.assert_close(tst.conv_transpose(y, weight, bias, **kwargs), expected)
    torch.testing.assert_close(tst.conv_transpose(y[0], weight, bias, **kwargs), expected[0])


def _aten_calls(function):
    """The ATen operators ``function()`` runs, in order, without dtype look-ups."""
    with torch.profiler.profile() as profile:
        function()
    return [event.name for event in profile.events()
            if event.name.startswith("aten::") and event.name != "aten::promote_types"]


@pytest.mark.parametrize("index", [i for i, case in enumerate(TRANSPOSE_CASES) if _torch_supports(case[2])])
def test_zero_padding_runs_exactly_pytorch_s_operators(index):
    """Where PyTorch supports the case, the bridge is PyTorch's own call: the same speed."""
    y, weight, bias = _transpose_data(TRANSPOSE_CASES[index], index)
    kwargs = TRANSPOSE_CASES[index][2]
    torch_transpose = getattr(F, f"conv_transpose{weight.ndim - 2}d")
    expected = _aten_calls(lambda: torch_transpose(y, weight, bias, **kwargs))
    assert _aten_calls(lambda: tst.conv_transpose(y, weight, bias, **kwargs)) == expected


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index", range(len(TRANSPOSE_CASES)))
def test_adjoint_dot_test(index, mode):
    """``<conv(x), y> == <x, conv_transpose(y)>`` in float64: ``conv_transpose`` is ``C.T``."""
    y, weight, _ = _transpose_data(TRANSPOSE_CASES[index], index)
    kwargs = dict(TRANSPOSE_CASES[index][2])
    transposed = tst.conv_transpose(y, weight, padding_mode=mode, **kwargs)
    x = _random(index + 7, *transposed.shape)
    kwargs.pop("output_padding", None)
    kwargs.pop("output_size", None)
    forward = tst.conv(x, weight, padding_mode=mode, **kwargs)
    assert forward.shape == y.shape
    left, right = torch.vdot(forward.flatten(), y.flatten()), torch.vdot(x.flatten(), transposed.flatten())
    assert abs(float(left - right)) <= 1e-12 * max(1.0, abs(float(left)))


def test_complex_and_integer_dtypes():
    """complex128 follows ``ts.conv_transpose`` (``C.T``, no conjugation); integers give float64."""
    y, weight, bias = (t.to(torch.complex128) * (1 + 2j) for t in _transpose_data(TRANSPOSE_CASES[3], 3))
    for mode in MODES:
        result = tst.conv_transpose(y, weight, bias, padding_mode=mode, stride=2, padding="same")
        expected = ts.conv_transpose(y.numpy(), weight.numpy(), bias.numpy(), padding_mode=mode, stride=2,
                                     padding="same", method="sparse")
        assert_close(result.numpy(), expected, np.complex128)
    ones = torch.ones(1, 1, 4, dtype=torch.int64)
    assert tst.conv(ones, ones[:, :, :3]).dtype == torch.float64


def test_arguments_are_checked_on_every_call_not_only_the_first():
    """The geometry cache keeps equal-but-invalid arguments (1.0, True) apart; lists work."""
    y, weight = torch.ones(1, 2, 3), torch.ones(2, 1, 3)
    expected = tst.conv_transpose(y, weight, stride=1, padding=1)
    for stride in (1.0, True):
        with pytest.raises(ValueError, match="stride"):
            tst.conv_transpose(y, weight, stride=stride, padding=1)
    torch.testing.assert_close(tst.conv_transpose(y, weight, stride=[1], padding=[1]), expected)
    with pytest.raises(ValueError, match="y has 1 channels"):
        tst.conv_transpose(y[:, :1], weight, stride=1, padding=1)
    with pytest.raises(ValueError, match="bias"):
        tst.conv_transpose(y, weight, torch.ones(2), stride=1, padding=1)


# (parameter, invalid value, a valid value it equals or serialises like): the plan cache's key
# must keep the invalid value apart from the valid call it hit before
_EQUAL_BUT_INVALID = [
    ("stride", 1.0, 1), ("stride", True, 1), ("stride", (True,), (1,)), ("stride", [1.0], [1]),
    ("stride", np.bool_(True), np.int8(1)), ("stride", b"\x01", np.int8(1)), ("padding", True, 1),
    ("padding", (1.0,), (1,)), ("padding", ((1, True),), ((1, 1),)), ("dilation", 1.0, 1),
    ("dilation", [True], [1]), ("groups", True, 1), ("groups", 1.0, 1), ("groups", (1,), 1),
    ("groups", np.bool_(True), np.int64(1)), ("output_padding", (False,), (0,)),
    ("output_padding", 0.0, 0),
]


@pytest.mark.parametrize("name, bad, good", _EQUAL_BUT_INVALID, ids=repr)
def test_bad_arguments_raise_after_a_cache_hit(name, bad, good):
    """A valid call, repeated (a cache hit), then an equal-but-invalid argument: a ValueError naming it."""
    y, weight = torch.ones(1, 2, 3), torch.ones(2, 1, 3)
    functions = [(tst.conv_transpose, y, dict(stride=1, padding=1, output_padding=0, dilation=1))]
    if name != "output_padding":
        functions.append((tst.conv, y[:, :1], dict(stride=1, padding=1, dilation=1)))
    for function, data, valid in functions:
        expected = function(data, weight, **valid)
        for _ in range(2):
            torch.testing.assert_close(function(data, weight, **dict(valid, **{name: good})), expected)
        with pytest.raises(ValueError, match=name):
            function(data, weight, **dict(valid, **{name: bad}))


def test_tensor_checks_run_after_a_cache_hit():
    """Rank, channels, bias, tensor type and dtype are checked (or promoted) on every call."""
    y, weight, bias = torch.ones(2, 2, 5), torch.ones(2, 3, 3), torch.ones(3)
    arguments = dict(stride=2, padding=1)
    for _ in range(2):
        expected = tst.conv_transpose(y, weight, bias, **arguments)
        tst.conv(expected, weight, **arguments)
    bad = [((y[:, :1], weight, bias), "y has 1 channels"), ((y[None], weight, bias), "y must have"),
           ((y, weight[None, None], bias), "y must have"), ((y, weight, torch.ones(2)), "bias"),
           ((y.numpy(), weight, bias), "y must be a torch.Tensor"),
           ((y, weight.numpy(), bias), "weight must be a torch.Tensor"), ((y, weight, [1.0] * 3), "bias")]
    for tensors, message in bad:
        with pytest.raises(ValueError, match=message):
            tst.conv_transpose(*tensors, **arguments)
    with pytest.raises(ValueError, match="x has 2 channels"):
        tst.conv(y, weight, **arguments)
    mixes = [((y, weight.double(), bias), torch.float64), ((y, weight, bias.double()), torch.float64),
             ((y.to(torch.int64), weight.to(torch.int64), None), torch.float64),
             ((y, weight.to(torch.complex64), bias), torch.complex64)]
    for tensors, dtype in mixes:
        result = tst.conv_transpose(*tensors, **arguments)
        assert result.dtype == dtype
        torch.testing.assert_close(result, tst.conv_transpose(y, weight, tensors[2], **arguments).to(dtype))
    assert tst.conv(expected.double(), weight, **arguments).dtype == torch.float64
    torch.testing.assert_close(tst.conv_transpose(y[0], weight, bias, **arguments), expected[0])


def test_a_repeated_call_is_validated_once(monkeypatch):
    """The plan is reused: a second call with the same signature does not validate again."""
    from tconv_sparse.torch import functional

    calls = []
    validated = functional._validated
    monkeypatch.setattr(functional, "_CALLS", type(functional._CALLS)())   # empty, whatever ran before
    monkeypatch.setattr(functional, "_validated", lambda *a: calls.append(a) or validated(*a))
    y, weight = torch.ones(1, 2, 7), torch.ones(2, 2, 3)
    for _ in range(3):
        tst.conv_transpose(y, weight, stride=3, padding=(2,), padding_mode="circular")
        tst.conv(y, weight, stride=3, padding=[2], padding_mode="circular")
    assert len(calls) == 2
    tst.conv(y, weight, stride=np.int64(3), padding=[2], padding_mode="circular")
    tst.conv(y, weight, stride=np.int64(3), padding=[2], padding_mode="circular")
    assert len(calls) == 4   # NumPy scalars are valid but not cached: checked on every call


# ------------------------------------------------------------------ gradients
GRAD_CASES = [
    ("conv", (5,), (2, 2, 3), dict(stride=2, padding="same")),
    ("conv", (3, 4), (2, 1, 2, 2), dict(padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)),
    ("conv_transpose", (4,), (2, 2, 3), dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose", (3, 3), (2, 1, 3, 2), dict(stride=(2, 1), padding="same", groups=2)),
]


def _grad_inputs(function, shape, weight_shape, kwargs, seed):
    data = _forward_data if function == "conv" else _transpose_data
    tensors = data((shape, weight_shape, kwargs), seed, batch=1)
    return tuple(t.requires_grad_() for t in tensors)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index", range(len(GRAD_CASES)))
def test_gradcheck_input_weight_bias(index, mode):
    function, shape, weight_shape, kwargs = GRAD_CASES[index]
    inputs = _grad_inputs(function, shape, weight_shape, kwargs, index)
    apply = lambda *tensors: getattr(tst, function)(*tensors, padding_mode=mode, **kwargs)
    assert torch.autograd.gradcheck(apply, inputs)


@pytest.mark.parametrize("index, mode", [(0, "reflect"), (2, "circular"), (3, "replicate")])
def test_gradgradcheck(index, mode):
    function, shape, weight_shape, kwargs = GRAD_CASES[index]
    inputs = _grad_inputs(function, shape, weight_shape, kwargs, index)
    apply = lambda *tensors: getattr(tst, function)(*tensors, padding_mode=mode, **kwargs)
    assert torch.autograd.gradgradcheck(apply, inputs)


# ------------------------------------------------------------------ torch.compile
def test_torch_compile_gives_the_eager_numbers():
    """One graph, forward and backward: a circular up-sampling, then a reflect "same" conv.

    Skipped only if the default backend's compiler fails on this machine (the reason shown).
    """
    y, up, bias = _transpose_data(GRAD_CASES[3][1:], 0, batch=1)
    down = _random(5, 3, up.shape[1] * 2, 3, 2)
    inputs = tuple(t.requires_grad_() for t in (y, up, bias, down))

    def loss(y, up, bias, down):
        upsampled = tst.conv_transpose(y, up, bias, stride=(2, 1), padding="same", groups=2,
                                       padding_mode="circular")
        return (tst.conv(upsampled, down, padding="same", padding_mode="reflect") ** 2).sum()

    eager = torch.autograd.grad(loss(*inputs), inputs)
    torch._dynamo.reset()
    try:
        value = torch.compile(loss, fullgraph=True)(*inputs)
    except torch._dynamo.exc.BackendCompilerFailed as error:
        pytest.skip(f"torch.compile's default backend cannot compile on this machine: {error}")
    torch.testing.assert_close(value, loss(*inputs))
    for actual, expected in zip(torch.autograd.grad(value, inputs), eager):
        torch.testing.assert_close(actual, expected)


# ------------------------------------------------------------------ import
def test_importing_tconv_sparse_does_not_import_torch():
    code = "import sys, tconv_sparse; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
