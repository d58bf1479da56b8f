"""PyTorch as an oracle: F.conv*d, F.conv_transpose*d, and F.pad + conv (and its vjp) for padding modes."""

from __future__ import annotations

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.functional import FORWARD_METHODS, TRANSPOSE_METHODS
from cases import MODE_CASES, MODE_TRANSPOSE_CASES, OPINFO_CONV, OPINFO_CONV_TRANSPOSE
from conftest import DTYPES, assert_close, random_array
from reference import forward_padding

torch = pytest.importorskip("torch")
F = torch.nn.functional

_TORCH_MODE = {"zeros": "constant", "circular": "circular", "reflect": "reflect", "replicate": "replicate"}


@pytest.fixture(autouse=True, scope="module")
def _deterministic_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _tensor(array):
    return None if array is None else torch.from_numpy(np.ascontiguousarray(array))


def _case_data(case, dtype, seed, transposed=False):
    shape, weight_shape, bias_shape, kwargs = case
    rng = np.random.default_rng(seed)
    channels = weight_shape[1] * kwargs.get("groups", 1) if transposed else weight_shape[0]
    bias = random_array(rng, (channels,), dtype) if bias_shape is not None else None
    return random_array(rng, shape, dtype), random_array(rng, weight_shape, dtype), bias


def _torch_pad_then_conv(x, weight, bias, kwargs):
    """Forward conv with any padding mode as F.pad + an unpadded conv (PyTorch's own recipe)."""
    ndim = weight.ndim - 2
    expand = lambda v: (v,) * ndim if isinstance(v, int) else tuple(v)
    stride, dilation = expand(kwargs.get("stride", 1)), expand(kwargs.get("dilation", 1))
    pads = forward_padding(kwargs.get("padding", 0), tuple(x.shape[2:]), weight.shape[2:], stride, dilation)
    torch_pads = [p for lo_hi in reversed(pads) for p in lo_hi]
    padded = F.pad(x, torch_pads, mode=_TORCH_MODE[kwargs.get("padding_mode", "zeros")])
    conv = getattr(F, f"conv{ndim}d")
    return conv(padded, _tensor(weight), _tensor(bias), stride=stride, dilation=dilation,
                groups=kwargs.get("groups", 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(OPINFO_CONV)))
def test_conv_opinfo_samples(index, dtype):
    x, weight, bias = _case_data(OPINFO_CONV[index], dtype, index)
    kwargs = OPINFO_CONV[index][3]
    conv = getattr(F, f"conv{weight.ndim - 2}d")
    expected = conv(_tensor(x), _tensor(weight), _tensor(bias), **kwargs).numpy()
    for method in FORWARD_METHODS:
        assert_close(ts.conv(x, weight, bias, method=method, **kwargs), expected, dtype)
        assert_close(ts.conv(x[0], weight, bias, method=method, **kwargs), expected[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(OPINFO_CONV_TRANSPOSE)))
def test_conv_transpose_opinfo_samples(index, dtype):
    y, weight, bias = _case_data(OPINFO_CONV_TRANSPOSE[index], dtype, index, transposed=True)
    kwargs = OPINFO_CONV_TRANSPOSE[index][3]
    conv_transpose = getattr(F, f"conv_transpose{weight.ndim - 2}d")
    expected = conv_transpose(_tensor(y), _tensor(weight), _tensor(bias), **kwargs).numpy()
    for method in TRANSPOSE_METHODS:
        assert_close(ts.conv_transpose(y, weight, bias, method=method, **kwargs), expected, dtype)
        assert_close(ts.conv_transpose(y[0], weight, bias, method=method, **kwargs), expected[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(MODE_CASES)))
def test_conv_padding_modes_against_pad_then_conv(index, dtype):
    x, weight, bias = _case_data(MODE_CASES[index], dtype, index)
    kwargs = MODE_CASES[index][3]
    expected = _torch_pad_then_conv(_tensor(x), weight, bias, kwargs).numpy()
    for method in FORWARD_METHODS:
        assert_close(ts.conv(x, weight, bias, method=method, **kwargs), expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(MODE_TRANSPOSE_CASES)))
def test_conv_transpose_padding_modes_against_autograd(index, dtype):
    """The transpose of pad + conv is its vjp: PyTorch's autograd gives C.T y for every padding mode.

    For complex data autograd returns the adjoint ``C^H v``; ``C.T y = conj(C^H conj(y))``.
    """
    y, weight, _ = _case_data(MODE_TRANSPOSE_CASES[index], dtype, index, transposed=True)
    kwargs = dict(MODE_TRANSPOSE_CASES[index][3])
    x_shape = (y.shape[0], weight.shape[1] * kwargs.get("groups", 1), *kwargs["output_size"])
    x = torch.zeros(x_shape, dtype=_tensor(y).dtype, requires_grad=True)
    forward_kwargs = {k: v for k, v in kwargs.items() if k != "output_size"}
    out = _torch_pad_then_conv(x, weight, None, forward_kwargs)
    assert tuple(out.shape) == y.shape
    (grad,) = torch.autograd.grad(out, x, grad_outputs=_tensor(np.conj(y)))
    expected = np.conj(grad.numpy())
    for method in TRANSPOSE_METHODS:
        assert_close(ts.conv_transpose(y, weight, method=method, **kwargs), expected, dtype)
