"""conv_matrix: structure, dtypes, duplicate folding, and agreement with column-by-column application."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import tconv_sparse as ts
from cases import MODE_CASES
from conftest import DTYPES, random_array
from reference import conv_reference


@pytest.mark.parametrize("index", range(len(MODE_CASES)))
def test_matrix_columns_are_the_reference_conv_of_unit_inputs(index):
    """Column j of C is the (loop reference) convolution of the j-th unit input."""
    x_shape, w_shape, _, kwargs = MODE_CASES[index]
    weight = np.random.default_rng(index).standard_normal(w_shape)
    C = ts.conv_matrix(weight, x_shape[2:], **kwargs)
    assert isinstance(C, sp.csr_array)
    n_in = C.shape[1]
    columns = []
    for j in range(0, n_in, max(1, n_in // 12)):  # a spread of columns keeps the loops short
        unit = np.zeros(n_in)
        unit[j] = 1.0
        columns.append((j, conv_reference(unit.reshape(x_shape[1:]), weight, **kwargs).ravel()))
    dense = C.toarray()
    for j, column in columns:
        np.testing.assert_allclose(dense[:, j], column, atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_structure_and_dtypes(dtype):
    weight = random_array(np.random.default_rng(0), (4, 2, 3, 3), dtype)
    C = ts.conv_matrix(weight, (7, 6), stride=2, padding=1, groups=1)
    assert C.dtype == dtype
    assert C.indices.dtype == np.int32 and C.indptr.dtype == np.int32
    assert C.has_canonical_format and C.has_sorted_indices
    copy = C.copy()
    copy.sum_duplicates()
    copy.sort_indices()
    assert np.array_equal(copy.indices, C.indices) and np.array_equal(copy.indptr, C.indptr)
    assert C.nnz == ts.Geometry.forward(weight.shape, (7, 6), stride=2, padding=1).nnz
    assert ts.conv_matrix(weight.real, (7, 6), dtype=np.complex64).dtype == np.complex64


def test_padding_duplicates_are_summed():
    """Replicate padding on a 2-sample input: the edge sample is read by several taps of one row."""
    w = np.array([[[1.0, 10.0, 100.0]]])
    C = ts.conv_matrix(w, (2,), padding=2, padding_mode="replicate")
    # padded input [x0 x0 x0 x1 x1 x1]; outputs read windows of three
    np.testing.assert_array_equal(C.toarray(), [[111, 0], [11, 100], [1, 110], [0, 111]])
    assert C.nnz == 6  # duplicates folded, explicit zeros never stored
    reflect = ts.conv_matrix(w, (3,), padding=2, padding_mode="reflect")
    # padded [x2 x1 x0 x1 x2 x1 x0]
    np.testing.assert_array_equal(reflect.toarray(), [[100, 10, 1], [10, 101, 0], [1, 10, 100],
                                                      [0, 101, 10], [100, 10, 1]])


def test_integer_weight_gives_float64_and_any_rank_works():
    assert ts.conv_matrix(np.ones((1, 1, 2), dtype=np.int8), (4,)).dtype == np.float64
    w = np.random.default_rng(0).standard_normal((1, 1, 2, 1, 2, 2))
    C = ts.conv_matrix(w, (3, 2, 3, 3), stride=(1, 2, 1, 2), padding=1)  # a 4-D convolution
    x = np.random.default_rng(1).standard_normal((1, 3, 2, 3, 3))
    np.testing.assert_allclose(C @ x.ravel(), conv_reference(x, w, stride=(1, 2, 1, 2), padding=1).ravel(),
                               atol=1e-12)
    np.testing.assert_allclose(ts.conv(x, w, stride=(1, 2, 1, 2), padding=1, method="sparse"),
                               conv_reference(x, w, stride=(1, 2, 1, 2), padding=1), atol=1e-12)


def test_int64_indices_when_int32_does_not_fit(monkeypatch):
    import tconv_sparse.core.matrix as matrix

    weight = np.random.default_rng(0).standard_normal((2, 1, 3, 3))
    small = ts.conv_matrix(weight, (10, 10), padding=1)
    monkeypatch.setattr(matrix, "_INT32_MAX", 100)
    large = ts.conv_matrix(weight, (10, 10), padding=1)
    assert small.indices.dtype == np.int32 and large.indices.dtype == np.int64
    assert large.indptr.dtype == np.int64
    np.testing.assert_array_equal(large.toarray(), small.toarray())
