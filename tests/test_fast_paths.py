"""Fast paths: the polyphase plane kernels (``direct``, ``gather``), the GEMM paths
(``im2col``), the directly built ``C.T`` and the parallel CSR products.

The oracle is SciPy's product with the explicit matrix ``C`` of the geometry
(``C @ x``, ``C.T @ y``, ``C.conj().T @ y``), independent of the kernels under
test. Tile and chunk sizes are shrunk in some tests so that every boundary case
of the tiling (partial tiles, tiles splitting a row, several sample chunks) is
exercised on small arrays.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tconv_sparse as ts
from tconv_sparse.backends.csr import csr_matmul
from tconv_sparse.backends import _polyphase, im2col
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.matrix import build_matrix
from tconv_sparse.backends.chooser import choose_forward, choose_transpose
from conftest import DTYPES, assert_close, random_array

FORWARD_FAST = ("direct", "im2col")
TRANSPOSE_FAST = ("gather", "im2col")
MODES = ("zeros", "circular", "reflect", "replicate")

#: (weight shape, transposed-input spatial shape, keyword arguments): geometries that stress
#: the plane layout (margins, clipped rows, phases without taps, folded padding modes)
GEOMETRIES = [
    ((2, 3, 5), (40,), dict(stride=3, padding=((4, 1),))),
    ((1, 1, 9), (300,), dict(stride=4, padding=4, output_padding=3)),
    ((2, 2, 3), (17,), dict(stride=2, padding=((3, 0),), dilation=2, padding_mode="reflect")),
    ((2, 2, 2), (9,), dict(stride=1, padding=(1,), dilation=3, output_padding=2)),  # op >= stride
    ((3, 2, 3, 3), (6, 7), dict(stride=2, padding="same")),  # Keras "same": negative hi
    ((2, 1, 4, 4), (5, 9), dict(stride=(2, 3), padding="valid", output_padding=(1, 2))),
    ((4, 1, 3, 2), (6, 5), dict(stride=(1, 2), padding=((2, 0), (0, 3)), groups=2)),
    ((2, 3, 3, 3), (7, 6), dict(stride=2, padding=1, dilation=(2, 1), padding_mode="circular")),
    ((1, 2, 5, 1), (4, 11), dict(stride=(3, 1), padding=(2, 0), padding_mode="replicate")),
    ((2, 2, 1, 1), (5, 5), dict(stride=3, output_padding=2)),  # 1x1 kernel: phases without taps
    ((2, 2, 3, 3, 3), (3, 4, 3), dict(stride=(1, 2, 2), padding=1, padding_mode="reflect")),
    ((4, 2, 2, 3, 2), (3, 3, 4), dict(stride=2, dilation=(1, 2, 3), groups=2, padding=(0, 2, 1))),
    ((2, 1, 2, 2, 2, 2), (2, 3, 2, 3), dict(stride=(1, 2, 1, 2), padding=1)),  # rank 4
]


def _apply(matrix, data):
    """``matrix @ sample`` with SciPy for every sample (first axis) of ``data``."""
    return np.stack([matrix @ sample for sample in data.reshape(data.shape[0], -1)])


def _conv_expected(x, weight, kwargs):
    geometry = Geometry.forward(weight.shape, x.shape[2:], **kwargs)
    matrix = build_matrix(weight, geometry, np.result_type(x, weight))
    return _apply(matrix, x).reshape(x.shape[0], geometry.out_channels, *geometry.output_shape)


def _conv_transpose_expected(y, weight, kwargs):
    geometry = Geometry.transposed(weight.shape, y.shape[2:], **kwargs)
    matrix = build_matrix(weight, geometry, np.result_type(y, weight))
    return _apply(matrix.T, y).reshape(y.shape[0], geometry.in_channels, *geometry.input_shape)


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of 37 elements and one sample per GEMM chunk: every tiling boundary is hit."""
    monkeypatch.setattr(_polyphase, "TILE_ELEMENTS", 37)
    monkeypatch.setattr(_polyphase, "_MIN_TILE", 5)
    monkeypatch.setattr(im2col, "WORK_CHUNK_BYTES", 1)


@pytest.mark.parametrize("tiles", ["default", "small"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(GEOMETRIES)))
def test_fast_methods_match_matrix(index, dtype, tiles, request):
    if tiles == "small":
        request.getfixturevalue("small_tiles")
    weight_shape, y_shape, kwargs = GEOMETRIES[index]
    rng = np.random.default_rng(index)
    weight = random_array(rng, weight_shape, dtype)
    geometry = Geometry.transposed(weight_shape, y_shape, **kwargs)
    y = random_array(rng, (2, geometry.out_channels, *y_shape), dtype)
    expected = _conv_transpose_expected(y, weight, kwargs)
    for method in TRANSPOSE_FAST:
        assert_close(ts.conv_transpose(y, weight, method=method, **kwargs), expected, dtype)
    forward = {k: v for k, v in kwargs.items() if k != "output_padding"}
    forward["padding"] = tuple((lo, max(hi, 0)) for lo, hi in geometry.padding)
    x = random_array(rng, (2, geometry.in_channels, *geometry.input_shape), dtype)
    expected = _conv_expected(x, weight, forward)
    for method in FORWARD_FAST:
        assert_close(ts.conv(x, weight, method=method, **forward), expected, dtype)


@st.composite
def plane_problems(draw):
    """A random geometry (every padding mode, groups, dilation, strides), data and a tile size."""
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    axes = lambda low, high: tuple(draw(st.integers(low, high)) for _ in range(ndim))
    kernel, stride, dilation = axes(1, 4), axes(1, 4), axes(1, 3)
    shape = axes(1, 12)
    mode = draw(st.sampled_from(MODES))
    pads = tuple((draw(st.integers(0, 4)), draw(st.integers(0, 4))) for _ in range(ndim))
    for n, (lo, hi), k, d in zip(shape, pads, kernel, dilation):
        assume(n + lo + hi >= d * (k - 1) + 1)
        assume(mode != "reflect" or max(lo, hi) < n)
        assume(mode != "circular" or max(lo, hi) <= n)
    kwargs = dict(stride=stride, padding=pads, dilation=dilation, groups=groups, padding_mode=mode)
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weight = random_array(rng, (groups * cout_g, cin_g, *kernel), dtype)
    x = random_array(rng, (draw(st.integers(1, 3)), groups * cin_g, *shape), dtype)
    return x, weight, kwargs, draw(st.integers(1, 300)), draw(st.integers(1, 4))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(plane_problems())
def test_fast_methods_random_geometry(problem):
    x, weight, kwargs, tile, threads = problem
    dtype = x.dtype
    previous = (_polyphase.TILE_ELEMENTS, _polyphase._MIN_TILE, im2col.WORK_CHUNK_BYTES)
    _polyphase.TILE_ELEMENTS, _polyphase._MIN_TILE, im2col.WORK_CHUNK_BYTES = tile, 1, tile * 64
    previous_threads = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        expected = _conv_expected(x, weight, kwargs)
        for method in FORWARD_FAST:
            assert_close(ts.conv(x, weight, method=method, **kwargs), expected, dtype)
        geometry = Geometry.forward(weight.shape, x.shape[2:], **kwargs)
        y = random_array(np.random.default_rng(tile), (x.shape[0], *expected.shape[1:]), dtype)
        expected_t = _apply(build_matrix(weight, geometry, dtype).T, y).reshape(x.shape)
        for method in TRANSPOSE_FAST:
            result = ts.conv_transpose(y, weight, method=method, output_size=x.shape[2:], **kwargs)
            assert_close(result, expected_t, dtype)
    finally:
        _polyphase.TILE_ELEMENTS, _polyphase._MIN_TILE, im2col.WORK_CHUNK_BYTES = previous
        numba.set_num_threads(previous_threads)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_transposed_matrix_is_c_transpose(mode, dtype):
    rng = np.random.default_rng(7)
    for weight_shape, shape, kwargs in [
        ((4, 2, 3), (11,), dict(stride=2, padding=2, dilation=2, groups=2)),
        ((3, 2, 2, 3), (7, 8), dict(stride=(3, 1), padding=(2, 1))),
        ((2, 2, 3, 1, 2), (4, 5, 5), dict(stride=(1, 2, 3), padding=(1, 0, 1), groups=2)),
        ((1, 1, 3), (2,), dict(padding=2)),  # every input read through several taps (circular)
    ]:
        weight = random_array(rng, weight_shape, dtype)
        try:
            geometry = Geometry.forward(weight.shape, shape, padding_mode=mode, **kwargs)
        except ValueError:  # reflect padding as large as the input
            continue
        expected = sp.csr_array(build_matrix(weight, geometry, dtype).T)
        expected.sort_indices()
        transposed = build_matrix(weight, geometry, dtype, transpose=True)
        assert transposed.shape == expected.shape and transposed.has_canonical_format
        np.testing.assert_array_equal(transposed.indptr, expected.indptr)
        np.testing.assert_array_equal(transposed.indices, expected.indices)
        assert_close(transposed.data, expected.data, dtype)


@pytest.mark.parametrize("columns", [None, 1, 3, 32])
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float32, np.float64),
                                    (np.float64, np.complex64), (np.complex128, np.float64)])
def test_csr_matmul_matches_scipy(dtypes, columns):
    matrix_dtype, x_dtype = dtypes
    rng = np.random.default_rng(3)
    matrix = sp.random_array((40, 30), density=0.2, format="csr", rng=rng, dtype=np.float64)
    matrix = sp.csr_array((random_array(rng, matrix.nnz, matrix_dtype), matrix.indices, matrix.indptr),
                          shape=matrix.shape)
    matrix.indices[:] = matrix.indices[::-1].copy()  # unsorted, possibly duplicated columns
    matrix.has_sorted_indices = False
    shape = (30,) if columns is None else (30, columns)
    x = random_array(rng, shape, x_dtype)
    result = csr_matmul(matrix, np.asfortranarray(x))
    expected = matrix @ x
    assert result.dtype == expected.dtype
    assert_close(result, expected, np.result_type(matrix_dtype, x_dtype))
    empty = sp.csr_array((5, 4), dtype=matrix_dtype)
    assert_close(csr_matmul(empty, random_array(rng, (4,), x_dtype)), np.zeros(5), x_dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_operator_products_match_scipy(dtype):
    rng = np.random.default_rng(11)
    weight = random_array(rng, (4, 1, 3, 2), dtype)
    kwargs = dict(stride=(2, 1), groups=2, padding=((1, 0), 1), padding_mode="reflect")
    op = ts.ConvOperator(weight, (7, 6), method="sparse", **kwargs)
    C = ts.conv_matrix(weight, (7, 6), **kwargs)
    CH = C.conj().T
    x, y = random_array(rng, op.shape[1], dtype), random_array(rng, op.shape[0], dtype)
    X, Y = random_array(rng, (op.shape[1], 5), dtype), random_array(rng, (op.shape[0], 5), dtype)
    assert_close(op.matvec(x), C @ x, dtype)
    assert_close(op.rmatvec(y), CH @ y, dtype)
    assert_close(op.matmat(X), C @ X, dtype)
    assert_close(op.rmatmat(Y), CH @ Y, dtype)
    assert_close(op.T @ y, C.T @ y, dtype)


def test_threads_do_not_change_results():
    rng = np.random.default_rng(5)
    weight = random_array(rng, (3, 2, 5), np.float64)
    y = random_array(rng, (1, 3, 5000), np.float64)
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(threads)
            results.append([ts.conv_transpose(y, weight, stride=3, padding=2, method=m)
                            for m in TRANSPOSE_FAST])
    finally:
        numba.set_num_threads(previous)
    for result in results[1:]:
        for a, b in zip(result, results[0]):
            assert_close(a, b, np.float64)


@pytest.mark.parametrize("name, forward, transpose", [
    ("image:1x1->1x512x512:k3s2", "direct", "gather"),
    ("signal:1x1->1x65536:k9s4", "direct", "gather"),
    ("volume:1x4->4x32x32x32:k3s2", "direct", "gather"),
    ("decoder:8x64->64x32x32:k3s2", "im2col", "im2col"),
    ("decoder:32x128->64x16x16:k3s2", "im2col", "im2col"),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_picks_the_regime_winner(name, forward, transpose, dtype):
    from tconv_sparse.bench.cases import CASES

    case = CASES[name]
    geometry = Geometry.forward(case.weight_shape, case.shape, stride=case.stride, padding=case.padding)
    assert choose_forward(geometry, case.batch, np.dtype(dtype)) == forward
    assert choose_transpose(geometry, case.batch, np.dtype(dtype)) == transpose
