"""ConvOperator: a SciPy LinearOperator whose products equal the explicit matrix."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator, aslinearoperator, cg, lsqr

import tconv_sparse as ts
from conftest import DTYPES, assert_close, random_array

GEOMETRIES = [
    ((3, 2, 3), (9,), dict(stride=2, padding=1)),
    ((4, 1, 3, 2), (6, 5), dict(groups=2, padding=((1, 0), 1), padding_mode="reflect", dilation=(1, 2))),
    ((2, 2, 2, 3, 2), (4, 5, 4), dict(stride=(1, 2, 1), padding="same", padding_mode="circular")),
]
METHODS = ["auto", "sparse", "im2col", "direct", "gather", ("direct", "scatter"), ("im2col", "zero_insert")]


@pytest.mark.parametrize("method", METHODS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(GEOMETRIES)))
def test_products_match_matrix(index, dtype, method):
    weight_shape, input_shape, kwargs = GEOMETRIES[index]
    rng = np.random.default_rng(index)
    weight = random_array(rng, weight_shape, dtype)
    op = ts.ConvOperator(weight, input_shape, method=method, **kwargs)
    C = ts.conv_matrix(weight, input_shape, **kwargs)
    assert isinstance(op, LinearOperator) and op.shape == C.shape and op.dtype == dtype
    x = random_array(rng, op.shape[1], dtype)
    y = random_array(rng, op.shape[0], dtype)
    X = random_array(rng, (op.shape[1], 3), dtype)
    Y = random_array(rng, (op.shape[0], 3), dtype)
    CH = C.conj().T
    assert_close(op.matvec(x), C @ x, dtype)
    assert_close(op.rmatvec(y), CH @ y, dtype)
    assert_close(op.matmat(X), C @ X, dtype)
    assert_close(op.rmatmat(Y), CH @ Y, dtype)
    assert_close(op @ X, C @ X, dtype)
    assert_close(op.T @ y, C.T @ y, dtype)
    assert_close(op.H @ y, CH @ y, dtype)
    assert_close(op.H.H @ x, C @ x, dtype)
    assert_close(op.T.matmat(Y), C.T @ Y, dtype)
    assert (op.matrix != C).nnz == 0


def test_matrix_is_built_once():
    op = ts.ConvOperator(np.ones((1, 1, 3)), (8,))
    assert op.matrix is op.matrix


def test_lsqr_and_cg_out_of_the_box():
    rng = np.random.default_rng(1)
    kernel = np.array([[[0.2, 1.0, 0.3]]])
    op = ts.ConvOperator(kernel, (40,), padding=1)
    truth = rng.standard_normal(40)
    data = op @ truth
    solution = lsqr(op, data, atol=1e-14, btol=1e-14, iter_lim=500)[0]
    np.testing.assert_allclose(solution, truth, atol=1e-8)
    normal = aslinearoperator(op.H) @ aslinearoperator(op)
    x, info = cg(normal, op.H @ data, rtol=1e-13, maxiter=500)
    assert info == 0
    np.testing.assert_allclose(x, truth, atol=1e-7)


def test_complex_adjoint_is_conjugate_transpose():
    rng = np.random.default_rng(2)
    weight = random_array(rng, (2, 2, 3, 3), np.complex128)
    op = ts.ConvOperator(weight, (5, 5), padding=1)
    u, v = random_array(rng, op.shape[1], np.complex128), random_array(rng, op.shape[0], np.complex128)
    assert abs(np.vdot(op @ u, v) - np.vdot(u, op.H @ v)) < 1e-10 * np.linalg.norm(u) * np.linalg.norm(v) * 10
    # conv_transpose is C.T (no conjugation); rmatvec is C^H
    y = v.reshape(2, *op.geometry.output_shape)
    np.testing.assert_allclose(op.T @ v, ts.conv_transpose(y, weight, padding=1).ravel(), atol=1e-12)


def test_repr_names_the_geometry():
    text = repr(ts.ConvOperator(np.ones((2, 1, 3, 3)), (8, 8), groups=1, stride=2))
    assert "ConvOperator" in text and "stride=(2, 2)" in text and "input_shape=(8, 8)" in text
