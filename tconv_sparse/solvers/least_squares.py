"""The damped least-squares problem ``min ||C g - h||^2 + damp^2 ||R g||^2`` for the Krylov solvers.

LSQR, LSMR and CGLS (:mod:`tconv_sparse.solvers.krylov`) iterate on the
stacked system ``[C; damp R] g = [h; 0]``. :class:`Stacked` applies it with
one output buffer per direction, reused at every iteration, ``damp * g``
itself for ``R = I``, and the operator's plan directly (its method chosen
once, no per-product checks). LSQR with ``R = I`` damps inside its own
recurrences instead (Paige and Saunders), on vectors the size of ``h``.
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.solvers.krylov import KRYLOV
from tconv_sparse.solvers.problem import Problem
from tconv_sparse.solvers.regularizers import regularizer_matrix

__all__ = ["Stacked", "setup"]


class Stacked:
    """``A = [C; damp R]`` and ``A^H``, each writing into its own buffer.

    Parameters
    ----------
    operator : ConvOperator
        ``C``.
    regularizer : scipy.sparse.csr_array or None
        ``R``; ``None`` means the identity (Tikhonov).
    damp : float
        ``0`` drops the regulariser rows.

    Examples
    --------
    >>> import numpy as np, tconv_sparse as ts
    >>> from tconv_sparse.solvers.least_squares import Stacked
    >>> A = Stacked(ts.ConvOperator(np.array([[[1.0, 1.0]]]), (3,)), None, 0.5)
    >>> A.forward(np.array([1.0, 2.0, 4.0])).tolist()
    [3.0, 6.0, 0.5, 1.0, 2.0]
    >>> A.adjoint(np.ones(5)).tolist()
    [1.5, 2.5, 1.5]
    """

    def __init__(self, operator, regularizer, damp: float):
        rows, n = operator.shape
        extra = 0 if damp == 0 else (n if regularizer is None else regularizer.shape[0])
        self.rows, self.damp = rows, damp
        self.dims, self.dimsd = (1, *operator.dims), (1, *operator.dimsd)
        self.regularizer = regularizer
        self.regularizer_t = None if regularizer is None else regularizer.T.tocsr()
        self._data = np.empty(rows + extra, dtype=operator.dtype)
        self._model = np.empty(n, dtype=operator.dtype)
        self._scratch = np.empty(n, dtype=operator.dtype)
        self._forward = operator.plan.runner(operator.dtype, 1, False, False)
        self._adjoint = operator.plan.runner(operator.dtype, 1, True, True)

    @property
    def shape(self) -> tuple[int, int]:
        return self._data.shape[0], self._model.shape[0]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x`` (the returned buffer is overwritten by the next call)."""
        product = self._forward(x.reshape(self.dims)).reshape(-1)
        out = self._data
        if len(out) == self.rows:
            return product
        out[:self.rows] = product
        if self.regularizer is None:
            np.multiply(x, self.damp, out=out[self.rows:])
        else:
            out[self.rows:] = self.damp * (self.regularizer @ x)
        return out

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``A^H y`` (the returned buffer is overwritten by the next call)."""
        product = self._adjoint(y[:self.rows].reshape(self.dimsd)).reshape(-1)
        if len(y) == self.rows:
            return product
        out = self._model
        out[:] = product
        tail = y[self.rows:] if self.regularizer is None else self.regularizer_t @ y[self.rows:]
        np.multiply(tail, self.damp, out=self._scratch)
        out += self._scratch
        return out


def setup(problem: Problem):
    """LSQR, LSMR or CGLS on ``[C; damp R] g = [h; 0]``: ``solve(h, x0, monitor)`` for one sample.

    LSQR with ``R = I`` from ``x0 = 0`` damps inside its recurrences
    (:func:`~tconv_sparse.solvers.krylov.lsqr` with ``damp``) and never forms
    the stacked vectors; every other case iterates on the stacked system.
    """
    R = None if problem.regularizer is None else regularizer_matrix(
        problem.geometry, problem.regularizer, problem.damp, problem.dtype)
    A = Stacked(problem.operator, R, problem.damp)
    iterate = KRYLOV[problem.solver]
    zeros = np.zeros(A.shape[0] - A.rows, dtype=problem.dtype)
    native = problem.solver == "lsqr" and R is None and problem.damp > 0
    plain = Stacked(problem.operator, None, 0.0) if native else None

    def solve(h, x0, monitor):
        if native and not x0.any():
            return iterate(plain.forward, plain.adjoint, h, x0, problem.maxiter, problem.tol, monitor,
                           damp=problem.damp)
        return iterate(A.forward, A.adjoint, np.concatenate([h, zeros]), x0, problem.maxiter, problem.tol,
                       monitor)

    return solve
