"""``solver="richardson_lucy"``: the EM algorithm for Poisson data (Shepp & Vardi).

``x <- x * C^T(h / C x) / C^T 1``: dividing by ``C^T 1`` makes ``g`` a fixed
point for every boundary and padding mode; pixels with ``C^T 1 = 0`` (which
no datum sees) are kept at ``x0``.
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.solvers.krylov import norm
from tconv_sparse.solvers.problem import Problem

__all__ = ["setup"]


def setup(problem: Problem):
    """``solve(h, x0, monitor)``: multiplicative updates until the relative change is below ``tol``."""
    C, column_sums = problem.operator, problem.column_sums

    def solve(h, x, monitor):
        Cx = C.matvec(x)
        if monitor(0, x, norm(Cx - h)):
            return x, 0, True
        for iteration in range(1, problem.maxiter + 1):
            ratio = np.divide(h, Cx, out=np.zeros_like(h), where=Cx > 0)
            update = np.divide(C.rmatvec(ratio), column_sums, out=np.ones_like(x), where=column_sums > 0)
            x_new = x * update
            Cx = C.matvec(x_new)
            stop = monitor(iteration, x_new, norm(Cx - h))
            done = stop or norm(x_new - x) <= problem.tol * norm(x_new)
            x = x_new
            if done:
                return x, iteration, True
        return x, problem.maxiter, False

    return solve
