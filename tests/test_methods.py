"""Every method against the loop reference, the matrix identity and the dot test."""

from __future__ import annotations

import functools
import zlib

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.functional import FORWARD_METHODS, TRANSPOSE_METHODS
from cases import MODE_CASES, MODE_TRANSPOSE_CASES, OPINFO_CONV, OPINFO_CONV_TRANSPOSE
from conftest import DTYPES, assert_close, random_array
from reference import conv_reference, conv_transpose_reference

FORWARD_CASES = OPINFO_CONV + MODE_CASES
TRANSPOSE_CASES = OPINFO_CONV_TRANSPOSE + MODE_TRANSPOSE_CASES
FORWARD = list(FORWARD_METHODS)
TRANSPOSE = list(TRANSPOSE_METHODS)


def _data(case, dtype, transposed):
    """Deterministic data for a case (x or y, weight, bias) in ``dtype``."""
    shape, weight_shape, bias_shape, kwargs = case
    rng = np.random.default_rng(zlib.crc32(repr((case, transposed)).encode()))
    bias_channels = weight_shape[1] * kwargs.get("groups", 1) if transposed else weight_shape[0]
    bias = random_array(rng, (bias_channels,), dtype) if bias_shape is not None else None
    return random_array(rng, shape, dtype), random_array(rng, weight_shape, dtype), bias


@functools.lru_cache(maxsize=None)
def _reference(index, transposed, complex_data):
    case = (TRANSPOSE_CASES if transposed else FORWARD_CASES)[index]
    data, weight, bias = _data(case, np.complex128 if complex_data else np.float64, transposed)
    function = conv_transpose_reference if transposed else conv_reference
    out = np.stack([function(sample, weight, **case[3]) for sample in data])
    if bias is not None:
        out = out + bias.reshape(-1, *[1] * (out.ndim - 2))
    return out


def _reference_for(index, transposed, dtype):
    # the reference runs on the float64/complex128 version of the same data
    return _reference(index, transposed, np.dtype(dtype).kind == "c")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", FORWARD)
@pytest.mark.parametrize("index", range(len(FORWARD_CASES)))
def test_conv_matches_loop_reference(index, method, dtype):
    case = FORWARD_CASES[index]
    x, weight, bias = _data(case, dtype, False)
    expected = _reference_for(index, False, dtype)
    assert_close(ts.conv(x, weight, bias, method=method, **case[3]), expected, dtype)
    result = ts.conv(x[0], weight, bias, method=method, **case[3])  # unbatched
    assert result.dtype == dtype
    assert_close(result, expected[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", TRANSPOSE)
@pytest.mark.parametrize("index", range(len(TRANSPOSE_CASES)))
def test_conv_transpose_matches_loop_reference(index, method, dtype):
    case = TRANSPOSE_CASES[index]
    y, weight, bias = _data(case, dtype, True)
    expected = _reference_for(index, True, dtype)
    assert_close(ts.conv_transpose(y, weight, bias, method=method, **case[3]), expected, dtype)
    result = ts.conv_transpose(y[0], weight, bias, method=method, **case[3])
    assert result.dtype == dtype
    assert_close(result, expected[0], dtype)


def _forward_kwargs(kwargs):
    return {k: v for k, v in kwargs.items() if k != "output_padding"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(MODE_CASES)))
def test_matrix_identity(index, dtype):
    """conv(x) == C @ x and conv_transpose(y) == C.T @ y, C from conv_matrix, for every method."""
    case = MODE_CASES[index]
    x, weight, _ = _data(case, dtype, False)
    kwargs = case[3]
    matrix = ts.conv_matrix(weight, x.shape[2:], **kwargs)
    y = random_array(np.random.default_rng(index), (x.shape[0], matrix.shape[0]), dtype)
    for method in FORWARD:
        out = ts.conv(x, weight, method=method, **kwargs)
        assert_close(out.reshape(len(x), -1), (matrix @ x.reshape(len(x), -1).T).T, dtype)
    y = y.reshape(out.shape)
    for method in TRANSPOSE:
        back = ts.conv_transpose(y, weight, method=method, output_size=x.shape[2:], **kwargs)
        assert_close(back.reshape(len(x), -1), (matrix.T @ y.reshape(len(y), -1).T).T, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(0, len(MODE_CASES)))
def test_dot_test_every_method_pair(index, dtype):
    """<C u, v> == <u, C^H v>, with C^H v = conj(conv_transpose(conj(v))), for every pair of methods."""
    case = MODE_CASES[index]
    u, weight, _ = _data(case, dtype, False)
    kwargs = case[3]
    v = random_array(np.random.default_rng(index), ts.conv(u, weight, **kwargs).shape, dtype)
    tolerance = 1e-10 if np.dtype(dtype) in (np.float64, np.complex128) else 1e-4
    for forward in FORWARD:
        cu = ts.conv(u, weight, method=forward, **kwargs)
        for transpose in TRANSPOSE:
            chv = np.conj(ts.conv_transpose(np.conj(v), weight, method=transpose, output_size=u.shape[2:],
                                            **kwargs))
            lhs, rhs = np.vdot(cu, v), np.vdot(u, chv)
            assert abs(lhs - rhs) <= tolerance * max(np.linalg.norm(cu) * np.linalg.norm(v), 1.0)
