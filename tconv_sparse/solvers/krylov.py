"""LSQR, LSMR and CGLS on ``min ||A x - b||`` given only ``A x`` and ``A^H y``.

The published recurrences, written out (and tested against
:func:`scipy.sparse.linalg.lsqr` and :func:`~scipy.sparse.linalg.lsmr`)
because SciPy's versions expose neither the iterates nor a residual history,
both of which ``callback``, ``progress`` and
:attr:`~tconv_sparse.DeconvolutionResult.residuals` need.

Each solver takes ``forward(x) = A x`` and ``adjoint(y) = A^H y``, which may
return a buffer they overwrite at their next call (the solvers consume the
result before calling again), updates its vectors in place, calls
``monitor(iteration, x, ||A x - b||)`` once for the start and after every
iteration, stops (converged) as soon as ``monitor`` returns true (the
discrepancy level is reached), and returns ``(x, iterations, converged)``. ``x`` is a new array:
the initial guess passed in is not modified.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas

__all__ = ["norm", "lsqr", "lsmr", "cgls", "KRYLOV", "CONLIM"]

#: LSQR/LSMR stop when their estimate of the condition number exceeds this (SciPy's default)
CONLIM = 1e8
#: OpenBLAS runs a dot product on one thread up to this many entries (its ``dot`` threshold)
_SERIAL_DOT = 10000


def norm(x: np.ndarray) -> float:
    """Euclidean norm of a 1-D array, never through a multi-threaded BLAS call.

    ``np.linalg.norm``'s dot product is multi-threaded for long vectors and
    stalls by orders of magnitude on an oversubscribed machine; up to
    10000 entries it runs on one thread and is several times faster than
    ``np.einsum``, which takes the longer vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.solvers.krylov import norm
    >>> norm(np.array([3.0, 4.0])), norm(np.array([3j, 4.0]))
    (5.0, 5.0)
    """
    if x.dtype.kind == "c":
        x = x.view(x.real.dtype) if x.flags.c_contiguous else np.abs(x)
    return math.sqrt(np.dot(x, x) if x.size <= _SERIAL_DOT else np.einsum("i,i->", x, x))


def _axpy(y: np.ndarray, a, x: np.ndarray) -> None:
    """``y += a * x`` in place, in one BLAS ``axpy`` pass where BLAS takes the arrays."""
    if y.dtype.char in _BLAS_TYPES and x.dtype == y.dtype and y.flags.c_contiguous and x.flags.c_contiguous:
        _AXPY[y.dtype.char](x, y, a=a)
    else:
        y += a * x


#: dtypes of SciPy's BLAS level-1 routines (single and double, real and complex)
_BLAS_TYPES = "fdFD"
#: BLAS ``?axpy`` and ``?scal`` per dtype character (looked up once: ``get_blas_funcs`` costs
#: microseconds, as much as the operation on a 4096-vector)
_AXPY = {char: blas.get_blas_funcs("axpy", dtype=np.dtype(char)) for char in _BLAS_TYPES}
_SCAL = {char: blas.get_blas_funcs("scal", dtype=np.dtype(char)) for char in _BLAS_TYPES}


def _scale(x: np.ndarray, a) -> None:
    """``x *= a`` in place."""
    if x.dtype.char in _BLAS_TYPES and x.flags.c_contiguous:
        _SCAL[x.dtype.char](a, x)
    else:
        x *= a


def _golub_kahan_start(forward, adjoint, b, x, monitor):
    """First Golub-Kahan bidiagonalisation step of LSQR and LSMR.

    Returns ``(||b||, u, beta, v, alpha)`` with ``beta u = b - A x`` and
    ``alpha v = A^H u``, or ``None`` when ``x`` already solves the problem
    (``beta == 0`` or ``alpha == 0``) or ``monitor`` stops at the start.
    """
    bnorm = norm(b)
    u = b - forward(x)
    beta = norm(u)
    if monitor(0, x, beta) or beta == 0:
        return None
    u /= beta
    v = adjoint(u).copy()
    alpha = norm(v)
    if alpha == 0:
        return None
    v /= alpha
    return bnorm, u, beta, v, alpha


def _bidiagonalise(forward, adjoint, u, v, alpha):
    """One Golub-Kahan step in place: ``beta u = A v - alpha u``, ``alpha v = A^H u - beta v``."""
    _scale(u, -alpha)
    _axpy(u, 1.0, forward(v))
    beta = norm(u)
    if beta > 0:
        _scale(u, 1.0 / beta)
    _scale(v, -beta)
    _axpy(v, 1.0, adjoint(u))
    alpha = norm(v)
    if alpha > 0:
        _scale(v, 1.0 / alpha)
    return beta, alpha


def lsqr(forward, adjoint, b, x, maxiter, tol, monitor, damp=0.0):
    """LSQR (Paige & Saunders 1982), SciPy's stopping tests with ``atol = btol = tol``.

    With ``damp > 0`` it solves ``min ||A x - b||^2 + damp^2 ||x||^2`` through
    Paige and Saunders' extra plane rotation per iteration, on vectors of the
    size of ``b`` (not of the stacked ``[b; 0]``); ``monitor`` receives the
    norm of the stacked residual ``[A x - b; damp x]``, as on the stacked
    system. The damped form regularises the step from ``x``, so it needs
    ``x = 0`` (the stacked system takes any start).
    """
    x = x.copy()
    start = _golub_kahan_start(forward, adjoint, b, x, monitor)
    if start is None:
        return x, 0, True
    bnorm, u, beta, v, alpha = start
    w = v.copy()
    rhobar, phibar = alpha, beta
    anorm2 = ddnorm = res2 = 0.0
    damp2 = damp * damp
    for iteration in range(1, maxiter + 1):
        anorm2 += alpha ** 2 + damp2
        beta, alpha = _bidiagonalise(forward, adjoint, u, v, alpha)
        anorm2 += beta ** 2
        if damp > 0:  # rotate the damping row out: [rhobar; damp] -> [rhobar1; 0]
            rhobar1 = math.hypot(rhobar, damp)
            res2 += (damp / rhobar1 * phibar) ** 2
            phibar *= rhobar / rhobar1
            rhobar = rhobar1
        rho = math.hypot(rhobar, beta)
        c, s = rhobar / rho, beta / rho
        theta, rhobar = s * alpha, -c * alpha
        phi, phibar = c * phibar, s * phibar
        _axpy(x, phi / rho, w)
        ddnorm += (norm(w) / rho) ** 2
        _scale(w, -theta / rho)
        _axpy(w, 1.0, v)
        anorm = math.sqrt(anorm2)
        rnorm = math.sqrt(phibar ** 2 + res2)
        stop = monitor(iteration, x, rnorm)
        converged = stop or alpha * abs(c * phibar) <= tol * anorm * rnorm
        if converged or rnorm <= (tol * (bnorm + anorm * norm(x)) if tol else 0.0):
            return x, iteration, True
        if anorm * math.sqrt(ddnorm) >= CONLIM:
            return x, iteration, False
    return x, maxiter, False


def lsmr(forward, adjoint, b, x, maxiter, tol, monitor):
    """LSMR (Fong & Saunders 2011), SciPy's stopping tests with ``atol = btol = tol``."""
    x = x.copy()
    start = _golub_kahan_start(forward, adjoint, b, x, monitor)
    if start is None:
        return x, 0, True
    bnorm, u, beta, v, alpha = start
    zetabar, alphabar = alpha * beta, alpha
    rho = rhobar = cbar = 1.0
    sbar = 0.0
    h, hbar = v.copy(), np.zeros_like(v)
    # recurrences for ||r||
    betadd, betad, rhodold, tautildeold, thetatilde, zeta = beta, 0.0, 1.0, 0.0, 0.0, 0.0
    # recurrences for ||A|| and cond(A)
    norm_a2, maxrbar, minrbar = alpha ** 2, 0.0, math.inf
    for iteration in range(1, maxiter + 1):
        beta, alpha = _bidiagonalise(forward, adjoint, u, v, alpha)
        rhoold, rho = rho, math.hypot(alphabar, beta)
        c, s = alphabar / rho, beta / rho
        thetanew, alphabar = s * alpha, c * alpha
        rhobarold, zetaold = rhobar, zeta
        thetabar, rhotemp = sbar * rho, cbar * rho
        rhobar = math.hypot(cbar * rho, thetanew)
        cbar, sbar = cbar * rho / rhobar, thetanew / rhobar
        zeta, zetabar = cbar * zetabar, -sbar * zetabar
        hbar *= -thetabar * rho / (rhoold * rhobarold)
        hbar += h
        _axpy(x, zeta / (rho * rhobar), hbar)
        h *= -thetanew / rho
        h += v
        betahat, betadd = c * betadd, -s * betadd
        thetatildeold = thetatilde
        rhotildeold = math.hypot(rhodold, thetabar)
        ctildeold, stildeold = rhodold / rhotildeold, thetabar / rhotildeold
        thetatilde, rhodold = stildeold * rhobar, ctildeold * rhobar
        betad = -stildeold * betad + ctildeold * betahat
        tautildeold = (zetaold - thetatildeold * tautildeold) / rhotildeold
        taud = (zeta - thetatilde * tautildeold) / rhodold
        normr = math.sqrt((betad - taud) ** 2 + betadd ** 2)
        norm_a = math.sqrt(norm_a2 + beta ** 2)
        norm_a2 += beta ** 2 + alpha ** 2
        maxrbar = max(maxrbar, rhobarold)
        if iteration > 1:
            minrbar = min(minrbar, rhobarold)
        cond_a = max(maxrbar, rhotemp) / min(minrbar, rhotemp)
        stop = monitor(iteration, x, normr)
        if stop or normr <= tol * (bnorm + norm_a * norm(x)) or abs(zetabar) <= tol * norm_a * normr:
            return x, iteration, True
        if cond_a >= CONLIM:
            return x, iteration, False
    return x, maxiter, False


def cgls(forward, adjoint, b, x, maxiter, tol, monitor):
    """CG on the normal equations ``A^H A x = A^H b`` in the CGLS form (Hestenes & Stiefel; Bjorck).

    Stops when ``||A^H (b - A x)|| <= tol ||A^H b||``.
    """
    x = x.copy()
    target = tol * norm(adjoint(b))
    r = b - forward(x)
    s = adjoint(r)
    p = s.copy()
    gamma = norm(s) ** 2
    if monitor(0, x, norm(r)) or math.sqrt(gamma) <= target:
        return x, 0, True
    for iteration in range(1, maxiter + 1):
        q = forward(p)
        step = gamma / norm(q) ** 2
        _axpy(x, step, p)
        r -= step * q
        s = adjoint(r)
        gamma_new = norm(s) ** 2
        if monitor(iteration, x, norm(r)) or math.sqrt(gamma_new) <= target:
            return x, iteration, True
        p *= gamma_new / gamma
        p += s
        gamma = gamma_new
    return x, maxiter, False


#: solver name -> algorithm
KRYLOV = {"lsqr": lsqr, "lsmr": lsmr, "cg": cgls}
