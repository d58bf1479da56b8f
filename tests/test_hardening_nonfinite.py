"""Issue 14, item 8: non-finite values propagate exactly as the stored entries of ``C`` do.

``conv`` is ``C @ x`` and ``conv_transpose`` is ``C.T @ y``, where ``C`` stores one
entry per (output, input, tap) that reads a real input (padding is never stored).
A NaN or infinite weight therefore reaches exactly the outputs whose row (forward)
or column (transposed) of ``C`` holds it, and a NaN input exactly the outputs
that read it, whatever the method (see docs/performance.md, "Non-finite values").
"""

from __future__ import annotations

import numpy as np
import pytest

import tconv_sparse as ts

FORWARD = ("direct", "im2col")
TRANSPOSE = ("scatter", "gather", "zero_insert", "im2col")

#: (data shape of conv, weight shape, keyword arguments, tap made non-finite)
CASES = [
    ((1, 1, 4, 4), (1, 1, 3, 3), dict(padding=1), (0, 0, 0, 0)),  # the issue's 4x4 example
    ((2, 2, 9, 8), (3, 2, 3, 3), dict(stride=2, padding=1), (1, 1, 2, 0)),
    ((1, 2, 11, 10), (2, 2, 3, 2), dict(stride=(2, 3), dilation=(2, 1), padding=(3, 2)), (0, 1, 1, 1)),
    ((1, 4, 8, 8), (4, 2, 3, 3), dict(padding="same", groups=2, stride=2), (3, 0, 2, 2)),
    ((1, 2, 7, 6), (2, 2, 3, 3), dict(padding=2, padding_mode="reflect"), (1, 0, 0, 2)),
    ((1, 2, 7, 6), (2, 2, 3, 3), dict(padding=1, stride=2, padding_mode="circular"), (0, 0, 1, 0)),
    ((1, 2, 7, 6), (2, 2, 3, 3), dict(padding=(3, 1), padding_mode="replicate"), (1, 1, 0, 0)),
    ((1, 2, 20), (2, 2, 5), dict(stride=3, padding=4, dilation=2), (0, 1, 4)),
    ((1, 2, 5, 6, 4), (2, 2, 3, 3, 3), dict(stride=2, padding=1), (1, 0, 2, 0, 1)),
    ((1, 1, 6, 6), (1, 1, 3, 3), dict(stride=5, padding=1), (0, 0, 2, 2)),  # one output: stride 1
]


def _masks(result):
    return np.isnan(result), np.isposinf(result), np.isneginf(result)


def _assert_same_nonfinite(result, expected, what):
    for name, got, want in zip(("nan", "+inf", "-inf"), _masks(result), _masks(expected)):
        assert np.array_equal(got, want), (
            f"{what}: {name} at {int(got.sum())} outputs, C has it at {int(want.sum())}")
    finite = np.isfinite(expected)
    np.testing.assert_allclose(result[finite], expected[finite], atol=1e-10)


def _data(shape, weight_shape, kwargs, transposed, rng):
    if not transposed:
        return rng.standard_normal(shape)
    out = ts.conv_output_shape(shape[2:], weight_shape[2:], stride=kwargs.get("stride", 1),
                               padding=kwargs.get("padding", 0), dilation=kwargs.get("dilation", 1))
    return rng.standard_normal((shape[0], weight_shape[0], *out))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
@pytest.mark.parametrize("index", range(len(CASES)))
def test_a_non_finite_weight_reaches_exactly_the_entries_of_C(index, transposed, value):
    shape, weight_shape, kwargs, tap = CASES[index]
    rng = np.random.default_rng(index)
    weight = rng.standard_normal(weight_shape)
    weight[tap] = value
    data = _data(shape, weight_shape, kwargs, transposed, rng)
    function, methods = (ts.conv_transpose, TRANSPOSE) if transposed else (ts.conv, FORWARD)
    with np.errstate(invalid="ignore"):
        expected = function(data, weight, method="sparse", **kwargs)
        assert np.isnan(expected).any() or np.isinf(expected).any()
        for method in (*methods, "auto"):
            _assert_same_nonfinite(function(data, weight, method=method, **kwargs), expected, method)


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
@pytest.mark.parametrize("index", range(len(CASES)))
def test_a_nan_input_reaches_exactly_the_outputs_that_read_it(index, transposed):
    shape, weight_shape, kwargs, _ = CASES[index]
    rng = np.random.default_rng(index + 100)
    weight = rng.standard_normal(weight_shape)
    data = _data(shape, weight_shape, kwargs, transposed, rng)
    data[(0, 0, *[n // 2 for n in data.shape[2:]])] = np.nan
    data.reshape(-1)[-1] = np.inf
    data.reshape(-1)[0] = -np.inf
    function, methods = (ts.conv_transpose, TRANSPOSE) if transposed else (ts.conv, FORWARD)
    folds = kwargs.get("padding_mode", "zeros") != "zeros"
    with np.errstate(invalid="ignore"):
        expected = function(data, weight, method="sparse", **kwargs)
        for method in methods:
            result = function(data, weight, method=method, **kwargs)
            if not folds:
                _assert_same_nonfinite(result, expected, method)
                continue
            # documented: an infinite input that one output reads through two taps (a padding
            # duplicate) meets C's summed entry once, but the methods' taps one by one, so
            # +inf and -inf products can give NaN where C gives an infinity; the non-finite
            # positions are the same, and NaN inputs propagate exactly
            assert np.array_equal(np.isfinite(result), np.isfinite(expected)), method
            assert not (np.isnan(expected) & ~np.isnan(result)).any(), method
            finite = np.isfinite(expected)
            np.testing.assert_allclose(result[finite], expected[finite], atol=1e-10)
            data_nan = np.where(np.isinf(data), 0.0, data)
            _assert_same_nonfinite(function(data_nan, weight, method=method, **kwargs),
                                   function(data_nan, weight, method="sparse", **kwargs), method)


def test_the_issue_example_counts():
    """A 4x4 input, a 3x3 kernel with padding 1 and one NaN tap: 16 NaN entries in ``C``, and
    ``C.T @ y`` is NaN at the 9 outputs tap (0, 0) reaches from the 16 inputs, for every method."""
    weight = np.ones((1, 1, 3, 3))
    weight[0, 0, 0, 0] = np.nan
    assert int(np.isnan(ts.conv_matrix(weight, (4, 4), padding=1).data).sum()) == 9
    y = np.ones((1, 1, 4, 4))
    with np.errstate(invalid="ignore"):
        for method in ("sparse", *TRANSPOSE):
            assert int(np.isnan(ts.conv_transpose(y, weight, padding=1, method=method)).sum()) == 9
