"""Honest convergence: the bounded default ``maxiter`` and :class:`ConvergenceWarning`.

:func:`~tconv_sparse.deconvolve` never runs past ``maxiter``, and warns when a
solver stops without meeting its stopping test or when a residual history
diverges, naming the argument to change. With ``tol=0`` (run exactly
``maxiter`` iterations, e.g. Richardson-Lucy or LSQR regularised by their
iteration count) reaching ``maxiter`` is what was asked for and does not warn;
an early stop on the condition estimate and a diverging history still do.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["ConvergenceWarning", "KRYLOV_MAXITER", "default_maxiter", "check"]

#: the Krylov solvers' default ``maxiter`` is ``min(2 * n, KRYLOV_MAXITER)``
KRYLOV_MAXITER = 1000
#: default ``maxiter`` of the other solvers
_DEFAULT_MAXITER = {"direct": 5, "richardson_lucy": 50, "pdhg": 1000}
#: a history diverges when its last residual exceeds this multiple of its smallest one
_GROWTH = 2.0
_REGULARISE = "regularise with damp > 0 (or damp='auto'), or give noise_std= to stop at the noise level"
_RICHARDSON_LUCY = ("or give noise_std= to stop at the noise level, or tol=0 to run exactly maxiter iterations "
                    "(Richardson-Lucy is regularised by its iteration count)")


class ConvergenceWarning(UserWarning):
    """A solver of :func:`~tconv_sparse.deconvolve` stopped without converging, or diverged.

    The message says why and which argument to change (``damp``,
    ``damp="auto"``, ``noise_std``, ``maxiter``). Silence it with
    ``warnings.simplefilter("ignore", ts.ConvergenceWarning)``.

    Examples
    --------
    >>> import tconv_sparse as ts
    >>> issubclass(ts.ConvergenceWarning, UserWarning)
    True
    """


def default_maxiter(solver: str, unknowns: int) -> int:
    """The default ``maxiter``: ``min(2 n, 1000)`` for ``n`` unknowns with ``"lsqr"``, ``"lsmr"``, ``"cg"``.

    SciPy's ``lsqr`` and ``lsmr`` default to ``2 n`` (exact arithmetic
    converges within ``n``); the cap of :data:`KRYLOV_MAXITER` keeps a large
    ill-posed problem from running for minutes (its iterates fit the noise
    long before). ``"direct"``: 5 refinement solves; ``"richardson_lucy"``:
    50; ``"pdhg"``: 1000.

    Examples
    --------
    >>> from tconv_sparse.solvers.convergence import default_maxiter
    >>> default_maxiter("lsqr", 64), default_maxiter("lsqr", 128 * 128), default_maxiter("pdhg", 10)
    (128, 1000, 1000)
    """
    return _DEFAULT_MAXITER.get(solver, min(2 * unknowns, KRYLOV_MAXITER))


def _diverges(residuals: np.ndarray) -> bool:
    last = residuals[-1]
    return not math.isfinite(last) or last > _GROWTH * np.min(residuals) + math.sqrt(np.finfo(float).eps) * residuals[0]


def _message(solver: str, maxiter: int, tol: float, iterations: int, residuals: np.ndarray,
             converged: bool) -> str | None:
    """Why one sample's solve deserves a warning, or ``None``."""
    call = f"deconvolve(solver={solver!r})"
    if _diverges(residuals):
        return (f"the residual of {call} grew from {np.min(residuals):.3e} to {residuals[-1]:.3e} in "
                f"{iterations} iterations: lower maxiter, or {_REGULARISE}")
    if converged:
        return None
    if iterations < maxiter:
        return (f"{call} stopped after {iterations} iterations without converging: its estimate of the "
                f"condition number exceeded 1e8, the problem is ill-posed; {_REGULARISE}")
    if tol == 0:
        return None
    advice = (_RICHARDSON_LUCY if solver == "richardson_lucy" else
              f"or, if the problem is ill-posed (a blur without damping never converges, its iterates fit "
              f"the noise), {_REGULARISE}")
    return (f"{call} reached maxiter={maxiter} without meeting tol={tol:.2g} (residual {residuals[-1]:.3e}, "
            f"from {residuals[0]:.3e}): raise maxiter, {advice}")


def check(solver: str, maxiter: int, tol: float, samples: list, stacklevel: int = 3) -> None:
    """Warn (once) about the first sample of ``samples`` that stopped badly.

    ``samples`` holds ``(x, iterations, residuals, converged)`` per sample.

    Examples
    --------
    >>> import warnings, numpy as np
    >>> from tconv_sparse.solvers.convergence import check
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check("lsqr", 3, 1e-8, [(None, 3, np.array([4.0, 2.0, 1.5, 1.2]), False)])
    >>> str(caught[0].message).startswith("deconvolve(solver='lsqr') reached maxiter=3")
    True
    """
    for index, (_, iterations, residuals, converged) in enumerate(samples):
        message = _message(solver, maxiter, tol, iterations, residuals, converged)
        if message is not None:
            where = f" (sample {index + 1} of {len(samples)})" if len(samples) > 1 else ""
            warnings.warn(message + where, ConvergenceWarning, stacklevel=stacklevel)
            return
