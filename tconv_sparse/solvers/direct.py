"""``solver="direct"``: factorise ``C^H C + damp^2 R^H R`` once, then refine iteratively.

The normal matrix is assembled from the operator's sparse matrix
(:attr:`~tconv_sparse.ConvOperator.matrix`); its size and that of its LU
factors are estimated and checked against the memory limit before either is
built.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scipy.sparse.linalg import splu

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.solvers.krylov import norm
from tconv_sparse.solvers.problem import Problem
from tconv_sparse.solvers.regularizers import regularizer_matrix

__all__ = ["setup", "factor_bytes", "normal_nnz_bound"]


def factor_bytes(normal: sp.csc_array) -> float:
    """Estimated bytes of the LU factors: twice the envelope of the RCM-ordered lower triangle.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from tconv_sparse.solvers.direct import factor_bytes
    >>> factor_bytes(sp.eye_array(4, format="csc"))   # 4 diagonal entries of 8 + 4 bytes, twice
    96.0
    """
    order = reverse_cuthill_mckee(normal.tocsr(), symmetric_mode=True)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    coo = normal.tocoo()
    rows, cols = inverse[coo.row], inverse[coo.col]
    first = np.arange(normal.shape[0])
    np.minimum.at(first, rows, cols)
    envelope = float(np.sum(np.arange(normal.shape[0]) - first + 1))
    return 2 * envelope * (normal.dtype.itemsize + 4)


def normal_nnz_bound(geometry: Geometry) -> int:
    """Bound on the nonzeros of ``C^H C + damp^2 R^H R``.

    Two inputs are coupled only if one output reads both: same group, and
    (padding maps never increase distances) less than ``k_eff`` apart on
    every axis; ``R^H R`` adds at most the ``2 d + 1`` point Laplacian stencil.

    Examples
    --------
    >>> import tconv_sparse as ts
    >>> from tconv_sparse.solvers.direct import normal_nnz_bound
    >>> normal_nnz_bound(ts.Geometry.forward((1, 1, 3), (10,), padding=1))   # 10 * (5 + 3)
    80
    """
    partners = geometry.in_channels_per_group * math.prod(
        min(n, 2 * k - 1) for n, k in zip(geometry.input_shape, geometry.effective_kernel_shape))
    return geometry.input_size * (partners + 2 * geometry.ndim + 1)


def _factorise(problem: Problem, R):
    """SuperLU (symmetric mode) of ``C^H C + damp^2 R^H R``, behind the memory guard."""
    n = problem.geometry.input_size
    bound = normal_nnz_bound(problem.geometry)
    v.check_bytes(f"C^H C + damp^2 R^H R ({n} x {n}, at most {bound} nonzeros, two copies while summed)",
                  2 * bound * (problem.dtype.itemsize + 4))
    C = problem.operator.matrix
    normal = (C.conj().T @ C + problem.damp ** 2 * (R.T @ R)).tocsc()
    v.check_bytes(f"the sparse LU factorisation of C^H C + damp^2 R^H R ({n} x {n}, {normal.nnz} "
                  "nonzeros; size estimated from its envelope in reverse Cuthill-McKee order)",
                  factor_bytes(normal))
    try:
        return splu(normal, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    except RuntimeError as error:
        raise np.linalg.LinAlgError(
            f"solver='direct': C^H C + damp^2 R^H R is singular ({error}); the convolution does not "
            f"determine every input, so use damp > 0 (got damp={problem.damp}) or an iterative solver"
        ) from None


def setup(problem: Problem):
    """Factorise once; ``solve(h, x0, monitor)`` refines one sample until the gradient is below ``tol``."""
    operator, damp2 = problem.operator, problem.damp ** 2
    R = regularizer_matrix(problem.geometry, problem.regularizer, problem.damp, problem.dtype)
    lu = _factorise(problem, R)

    def solve(h, x, monitor):
        target = problem.tol * norm(operator.rmatvec(h))
        for iteration in range(problem.maxiter + 1):
            r, Rx = h - operator.matvec(x), R @ x
            gradient = operator.rmatvec(r) - damp2 * (R.T @ Rx)
            stop = monitor(iteration, x, math.sqrt(norm(r) ** 2 + damp2 * norm(Rx) ** 2))
            if stop or norm(gradient) <= target:
                return x, iteration, True
            if iteration < problem.maxiter:
                x = x + lu.solve(gradient)
        return x, problem.maxiter, False

    return solve
