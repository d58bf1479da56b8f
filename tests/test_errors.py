"""Bad input: a ValueError (TypeError for wrong types) naming the parameter and value, before any work."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import tconv_sparse as ts

X = np.ones((1, 2, 6, 6))
W = np.ones((4, 2, 3, 3))
Y = np.ones((1, 4, 4, 4))

FORWARD_ERRORS = [
    (dict(x=np.ones((6, 6))), r"x must have 3 .* or 4 .*got shape \(6, 6\)"),
    (dict(x=np.ones((1, 3, 6, 6))), r"x has 3 channels .* C_in = .* = 2"),
    (dict(groups=3), r"groups=3 must divide .* = 4"),
    (dict(groups=0), r"groups must be an int >= 1, got 0"),
    (dict(stride=0), r"stride must be >= 1 .*got 0"),
    (dict(stride=(1, -2)), r"stride must be >= 1 .*\(1, -2\)"),
    (dict(stride=(1, 2, 3)), r"stride must be an int or a tuple of 2 ints .*\(1, 2, 3\)"),
    (dict(dilation=0), r"dilation must be >= 1 .*got 0"),
    (dict(padding=-1), r"padding must be >= 0 .*got -1"),
    (dict(padding="half"), r"padding must be .*'valid', 'same', 'full'.*got 'half'"),
    (dict(padding=(1, 2, 3)), r"padding must have one entry per spatial axis \(2\).*\(1, 2, 3\)"),
    (dict(padding=((1, 2, 3), 0)), r"padding pairs must be \(lo, hi\), got \(1, 2, 3\)"),
    (dict(padding_mode="mirror"), r"padding_mode must be one of .*got 'mirror'"),
    (dict(method="scatter"), r"method must be one of .*got 'scatter'"),
    (dict(dilation=4), r"kernel size 3 with dilation 4 \(effective size 9\) is larger than the padded input"),
    (dict(padding=6, padding_mode="reflect"), r"reflect padding must be smaller .*input size 6 .*0 <= padding <= 5"),
    (dict(padding=7, padding_mode="circular"), r"circular padding must not exceed .*0 <= padding <= 6"),
    (dict(bias=np.ones(3)), r"bias must have shape \(4,\).*got \(3,\)"),
    (dict(weight=np.ones((4, 2))), r"weight must have shape .*got shape \(4, 2\)"),
    (dict(weight=np.ones((4, 0, 3, 3))), r"weight must have no empty axis"),
]

TYPE_ERRORS = [
    dict(stride="2"), dict(stride=1.5), dict(stride=True), dict(groups=2.0), dict(padding_mode=0),
    dict(x="abc"), dict(x=np.array([["a"]], dtype=object)), dict(method=None), dict(padding=(1.5, 1)),
]


def _conv(**overrides):
    args = dict(x=X, weight=W, bias=None)
    args.update(overrides)
    return ts.conv(args.pop("x"), args.pop("weight"), args.pop("bias"), **args)


@pytest.mark.parametrize("overrides,message", FORWARD_ERRORS)
def test_conv_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        _conv(**overrides)


@pytest.mark.parametrize("overrides", TYPE_ERRORS)
def test_type_errors_are_type_and_value_errors(overrides):
    with pytest.raises(TypeError):
        _conv(**overrides)
    with pytest.raises(ValueError):
        _conv(**overrides)


TRANSPOSE_ERRORS = [
    (dict(y=np.ones((1, 2, 4, 4))), r"y has 2 channels .* weight.shape\[0\] = 4"),
    (dict(output_padding=2, stride=2), r"output_padding must satisfy 0 <= output_padding < max\(stride, dilation\) = 2"),
    (dict(output_padding=-1), r"output_padding must be >= 0"),
    (dict(output_size=(11, 11), stride=2), r"output_size\[0\] = 11 is not reachable: the valid range .* \[9, 10\]"),
    (dict(output_size=(6,)), r"output_size must be an int or a tuple of 2 ints"),
    (dict(output_size=(6, 6), output_padding=0), r"not both"),
    (dict(padding=3), r"output would be empty .*size 0"),
    (dict(padding=2, padding_mode="reflect", stride=1), r"reflect padding must be smaller .*input size 2"),
    (dict(method="direct"), r"method must be one of .*got 'direct'"),
]


@pytest.mark.parametrize("overrides,message", TRANSPOSE_ERRORS)
def test_conv_transpose_errors(overrides, message):
    args = dict(y=Y, weight=W)
    args.update(overrides)
    with pytest.raises(ValueError, match=message):
        ts.conv_transpose(args.pop("y"), args.pop("weight"), **args)


def test_unsupported_dtype():
    with pytest.raises(ValueError, match="float32, float64, complex64 or complex128"):
        ts.conv(X.astype(np.longdouble), W)
    with pytest.raises(ValueError, match="dtype must be float32"):
        ts.conv_matrix(W, (6, 6), dtype=np.int32)
    with pytest.raises(ValueError, match="real but the weight is complex"):
        ts.conv_matrix(W + 1j, (6, 6), dtype=np.float64)


def test_huge_matrix_is_refused_with_its_size_before_allocating():
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"sparse matrix .* would need an estimated .*TiB .*memory limit"):
        ts.conv_matrix(np.ones((64, 64, 3, 3, 3)), (512, 512, 512))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20


def test_max_bytes_override_and_global_limit():
    with pytest.raises(ValueError, match="memory limit of 1.0 KiB"):
        ts.conv_matrix(W, (6, 6), max_bytes=1024)
    previous = ts.set_max_bytes(2**12)
    try:
        with pytest.raises(ValueError, match="output would need"):
            ts.conv(np.ones((1, 2, 64, 64)), W, padding=1)
    finally:
        ts.set_max_bytes(previous)
    with pytest.raises(ValueError, match="max_bytes must be a positive int"):
        ts.set_max_bytes(0)


def test_operator_errors():
    with pytest.raises(ValueError, match="method must be one of"):
        ts.ConvOperator(W, (6, 6), method="fast")
    with pytest.raises(ValueError, match="the transpose method must be one of"):
        ts.ConvOperator(W, (6, 6), method=("direct", "direct"))
    with pytest.raises(ValueError, match="kernel size"):
        ts.ConvOperator(W, (2, 2))


def test_inputs_are_never_modified_and_odd_inputs_work():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 12, 12))[:, :, ::2, ::2]  # non-contiguous
    w = rng.standard_normal((4, 2, 3, 3))
    x_copy, w_copy = x.copy(), w.copy()
    for method in ("sparse", "direct", "im2col"):
        out = ts.conv(x, w, method=method, padding=1, padding_mode="reflect")
        assert out.flags.c_contiguous
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(w, w_copy)
    integer = ts.conv(np.arange(36).reshape(1, 6, 6), np.ones((1, 1, 3, 3), dtype=np.int64))
    assert integer.dtype == np.float64 and integer[0, 0, 0] == 0 + 1 + 2 + 6 + 7 + 8 + 12 + 13 + 14
    y = np.asfortranarray(rng.standard_normal((4, 4, 4)))
    y_copy = y.copy()
    for method in ("sparse", "scatter", "gather", "zero_insert", "im2col"):
        ts.conv_transpose(y, w, method=method)
    np.testing.assert_array_equal(y, y_copy)
    assert ts.conv(np.ones((2, 5, 5), dtype=bool), np.ones((1, 2, 3, 3))).dtype == np.float64
