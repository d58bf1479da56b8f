"""``solver="pdhg"``: adaptive Chambolle-Pock (primal-dual hybrid gradient, theta = 1).

Solves ``min_g F(K g)`` with ``K = [C; R]`` and
``F(y, z) = ||y - h||^2 + damp^2 ||z||^2`` (quadratic regularisers) or
``||y - h||^2 + damp^2 sum |z|`` (isotropic TV). The steps start at
``tau = sigma = 0.99 / L``, ``L^2`` Schur's bound on ``||C||^2 + ||R||^2``,
and are rebalanced with ``tau * sigma`` fixed whenever the relative primal and
dual residuals differ by more than 1.5x, by a factor that shrinks
geometrically (Goldstein, Li, Yuan, Esser & Baraniuk 2015), which keeps the
convergence guarantee. When ``K = 0`` (an all-zero weight and no penalty)
every ``g`` is a minimiser: ``x0`` is returned, converged, after no iteration
(as LSQR and CG do).
"""

from __future__ import annotations

import math

import numpy as np

from tconv_sparse.operator import ConvOperator
from tconv_sparse.solvers.krylov import norm
from tconv_sparse.solvers.problem import Problem
from tconv_sparse.solvers.regularizers import regularizer_matrix, schur_norm2

__all__ = ["setup"]


def _norm2_bound(problem: Problem, R) -> float:
    """Schur's bound on ``||C||^2 + ||R||^2``, from the products of ``|C|`` with ones."""
    C = problem.operator
    magnitude = ConvOperator(np.abs(C.weight), problem.geometry.input_shape, **problem.conv_kwargs)
    norm2 = schur_norm2(magnitude.matvec(np.ones(C.shape[1])), magnitude.rmatvec(np.ones(C.shape[0])))
    R_abs = abs(R)
    return norm2 + schur_norm2(R_abs.sum(axis=1), R_abs.sum(axis=0))


def setup(problem: Problem):
    """``solve(h, x0, monitor)``: PDHG until the relative primal and dual residuals are below ``tol``."""
    C = problem.operator
    R = regularizer_matrix(problem.geometry, problem.regularizer, problem.damp, problem.dtype)
    damp2, d = problem.damp ** 2, problem.geometry.ndim
    norm2 = _norm2_bound(problem, R)
    tv = problem.regularizer == "tv"

    def pixel_norms(z):
        return np.sqrt(np.sum(np.abs(z.reshape(d, -1)) ** 2, axis=0))

    def prox_dual_regularizer(z, sigma):
        if tv:
            return (z.reshape(d, -1) / np.maximum(1.0, pixel_norms(z) / damp2)).ravel()
        return z / (1.0 + sigma / (2.0 * damp2))

    def residual(Cg, Rg, h):
        penalty = np.sum(pixel_norms(Rg)) if tv else norm(Rg) ** 2
        return math.sqrt(norm(Cg - h) ** 2 + damp2 * penalty)

    def solve(h, g, monitor):
        Cg, Rg = C.matvec(g), R @ g
        if monitor(0, g, residual(Cg, Rg, h)) or norm2 == 0:
            return g, 0, True
        tau = sigma = 0.99 / math.sqrt(norm2)
        adapt = 0.5
        # KKT residuals are measured against the gradient 2 C^H h and the data h at g = 0
        primal_scale, dual_scale = 2 * norm(C.rmatvec(h)), norm(h)
        C_bar, R_bar = Cg, Rg
        p, q = np.zeros_like(h), np.zeros_like(Rg)
        for iteration in range(1, problem.maxiter + 1):
            p_new = (p + sigma * (C_bar - h)) / (1.0 + sigma / 2.0)
            q_new = prox_dual_regularizer(q + sigma * R_bar, sigma) if R.shape[0] else q
            gradient = C.rmatvec(p_new) + R.T @ q_new
            g_new = g - tau * gradient
            Cg_new, Rg_new = C.matvec(g_new), R @ g_new
            primal = norm(gradient)
            dual = math.hypot(norm((p - p_new) / sigma + C_bar - Cg_new),
                              norm((q - q_new) / sigma + R_bar - Rg_new))
            C_bar, R_bar = 2 * Cg_new - Cg, 2 * Rg_new - Rg
            g, Cg, Rg, p, q = g_new, Cg_new, Rg_new, p_new, q_new
            stop = monitor(iteration, g, residual(Cg, Rg, h))
            if stop or primal <= problem.tol * primal_scale and dual <= problem.tol * dual_scale:
                return g, iteration, True
            if primal * dual_scale > 1.5 * dual * primal_scale:
                tau, sigma, adapt = tau / (1 - adapt), sigma * (1 - adapt), adapt * 0.95
            elif dual * primal_scale > 1.5 * primal * dual_scale:
                tau, sigma, adapt = tau * (1 - adapt), sigma / (1 - adapt), adapt * 0.95
        return g, problem.maxiter, False

    return solve
