"""The GEMM paths (``im2col``) on many channels: shift-and-GEMM over channels-last planes.

The oracle is the ``"sparse"`` method (the explicit matrix ``C``). The
channel counts are chosen so that the channel blocks of the layout passes
end in a partial block and groups slice the channels of every window; the
chunk budget is shrunk so that one sample is split into chunks of rows.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tconv_sparse as ts
from tconv_sparse.backends import gemm as blas, im2col, memory
from tconv_sparse.core.geometry import Geometry
from conftest import assert_close, random_array

DTYPES = ("float32", "float64", "complex64", "complex128")


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_on_strided_views_matches_matmul(dtype, beta):
    """Windows with offsets and row strides (a group of channels of channels-last planes)
    are multiplied in place, accumulating with ``beta = 1``."""
    rng = np.random.default_rng(0)
    planes = random_array(rng, (40, 12), dtype)
    weight = random_array(rng, (5, 3), dtype)
    out = random_array(rng, (30, 7), dtype)
    before = out.copy()
    window, target = planes[4:34, 2:7], out[:, 1:4]
    blas.gemm(window, weight, target, beta)
    expected = window @ weight + beta * before[:, 1:4]
    assert_close(out[:, 1:4], expected, np.dtype(dtype))
    np.testing.assert_array_equal(out[:, [0, 4, 5, 6]], before[:, [0, 4, 5, 6]])


def test_gemm_falls_back_on_views_blas_cannot_address():
    """A view without unit column stride, or an integer dtype, goes through NumPy."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((6, 8)), rng.standard_normal((4, 3))
    c = np.ones((6, 3))
    blas.gemm(a[:, ::2], b, c, 1.0)
    np.testing.assert_allclose(c, a[:, ::2] @ b + 1.0)
    ints = np.zeros((2, 2), dtype=np.int64)
    blas.gemm(np.eye(2, dtype=np.int64), np.arange(4).reshape(2, 2), ints, 0.0)
    np.testing.assert_array_equal(ints, [[0, 1], [2, 3]])


def test_gemm_refuses_operands_that_do_not_match():
    with pytest.raises(ValueError, match="gemm operands"):
        blas.gemm(np.ones((3, 2)), np.ones((2, 2)), np.ones((4, 2)), 0.0)


#: (weight shape, input spatial shape, forward keyword arguments)
MANY_CHANNEL_CASES = [
    ((21, 19, 3), (23,), dict(stride=2, padding=1)),
    ((18, 7, 4), (30,), dict(stride=3, padding=2, dilation=2, groups=3)),
    ((21, 19, 3, 3), (9, 11), dict(stride=2, padding=1)),
    ((20, 13, 4, 4), (12, 10), dict(stride=2, padding=1, padding_mode="reflect")),
    ((18, 6, 3, 2), (9, 8), dict(stride=(2, 3), padding=(1, 2), dilation=(2, 1), groups=3)),
    ((17, 9, 3, 3), (8, 9), dict(stride=1, padding=1, padding_mode="circular")),
    ((16, 11, 3, 3), (10, 10), dict(stride=2, padding=1, padding_mode="replicate")),
    ((12, 10, 3, 3, 3), (5, 6, 7), dict(stride=2, padding=1)),
    ((12, 5, 2, 3, 3), (4, 6, 5), dict(stride=(1, 2, 2), padding=(0, 1, 1), groups=2, padding_mode="circular")),
]


@pytest.mark.parametrize("dtype", ["float32", "complex128"])
@pytest.mark.parametrize("index", range(len(MANY_CHANNEL_CASES)))
def test_im2col_many_channels_matches_sparse(index, dtype):
    weight_shape, shape, kwargs = MANY_CHANNEL_CASES[index]
    rng = np.random.default_rng(index)
    weight = random_array(rng, weight_shape, dtype)
    x = random_array(rng, (3, weight_shape[1] * kwargs.get("groups", 1), *shape), dtype)
    expected = ts.conv(x, weight, method="sparse", **kwargs)
    assert_close(ts.conv(x, weight, method="im2col", **kwargs), expected, np.dtype(dtype))
    y = random_array(rng, expected.shape, dtype)
    expected_t = ts.conv_transpose(y, weight, method="sparse", output_size=shape, **kwargs)
    assert_close(ts.conv_transpose(y, weight, method="im2col", output_size=shape, **kwargs), expected_t,
                 np.dtype(dtype))


def _measured_peak(function, *args, **kwargs):
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
def test_one_sample_is_split_into_chunks_of_rows(monkeypatch, transposed):
    """With a chunk budget below one sample's planes, a sample runs as chunks of rows of results;
    the work estimate stays below one sample's planes and bounds what the call allocates."""
    weight_shape, shape, kwargs = (24, 20, 3, 3), (20, 18), dict(stride=2, padding=1)
    geometry = Geometry.forward(weight_shape, shape, **kwargs)
    if transposed:
        geometry = Geometry.transposed(weight_shape, geometry.output_shape, output_size=shape, **kwargs)
    plan, per_row = im2col.layout(geometry, transposed), im2col.row_bytes(geometry, transposed, 8)
    budget = (plan.top + plan.below + 4) * per_row
    monkeypatch.setattr(im2col, "WORK_CHUNK_BYTES", budget)
    assert im2col.chunk_sizes(geometry, transposed, 2, 8, budget) == (1, 4)
    work = memory.work_bytes("im2col", geometry, 2, np.float64, transposed)
    assert work < plan.rows(plan.result_rows) * per_row
    rng = np.random.default_rng(3)
    weight = rng.standard_normal(weight_shape)
    if transposed:
        data = rng.standard_normal((2, 24, *geometry.output_shape))
        call = lambda method: ts.conv_transpose(data, weight, method=method, output_size=shape, **kwargs)
    else:
        data = rng.standard_normal((2, 20, *shape))
        call = lambda method: ts.conv(data, weight, method=method, **kwargs)
    call("im2col")
    result, peak = _measured_peak(call, "im2col")
    assert peak <= 1.05 * (result.nbytes + work) + 2**16, (peak, result.nbytes + work)
    assert_close(result, call("sparse"), np.dtype("float64"))


@st.composite
def geometries(draw):
    ndim = draw(st.integers(1, 3))
    axes = lambda low, high: tuple(draw(st.integers(low, high)) for _ in range(ndim))
    kernel, stride, dilation, shape = axes(1, 5), axes(1, 4), axes(1, 3), axes(1, 14)
    pads = tuple((draw(st.integers(0, 5)), draw(st.integers(0, 5))) for _ in range(ndim))
    for n, (lo, hi), k, d in zip(shape, pads, kernel, dilation):
        assume(n + lo + hi >= d * (k - 1) + 1)
    geometry = Geometry.forward((2, 1, *kernel), shape, stride=stride, padding=pads, dilation=dilation)
    return geometry.canonical.geometry, draw(st.integers(1, 3)), draw(st.booleans())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(geometries())
def test_every_term_reads_inside_the_planes(problem):
    """The invariant the BLAS windows rely on (BLAS does not check bounds): over the span of a
    chunk, every shifted window stays inside the chunk's planes, for every chunk height."""
    geometry, samples, transposed = problem
    assume(geometry is not None)
    plan = im2col.layout(geometry, transposed)
    for results in {1, plan.result_rows, max(1, plan.result_rows // 2)}:
        length = samples * plan.rows(results) * plan.width
        first, last = plan.span(samples, results)
        assert 0 <= first < last <= length
        for block in plan.terms:
            for _, _, shift in block:
                assert 0 <= first + shift and last + shift <= length, (results, shift)
