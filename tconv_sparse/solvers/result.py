"""What :func:`~tconv_sparse.deconvolve` returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DeconvolutionResult", "collect"]


@dataclass(frozen=True, repr=False)
class DeconvolutionResult:
    """What :func:`~tconv_sparse.deconvolve` returns.

    For a batched ``h`` (``N`` samples) ``iterations`` and ``converged`` are
    arrays of ``N`` entries and ``residuals`` a tuple of ``N`` histories.

    Attributes
    ----------
    x : numpy.ndarray
        The estimate, ``(N, C_in, *input_shape)`` or ``(C_in, *input_shape)``
        like ``h``.
    iterations : int or numpy.ndarray
        Iterations run (for ``"direct"``: solves with the factorisation).
    residuals : numpy.ndarray or tuple of numpy.ndarray
        ``sqrt(||C x_k - h||^2 + damp^2 R(x_k))`` for ``k = 0 .. iterations``
        (``x_0`` is the initial guess); for ``"richardson_lucy"``
        ``||C x_k - h||``. LSQR and LSMR report their own recurrences for
        this norm.
    converged : bool or numpy.ndarray
        Whether the solver's stopping test at ``tol`` was met within ``maxiter``.
    solver : str
    damp : float or numpy.ndarray
        The ``damp`` used (per sample for a batched ``h``): the given one, or
        the one ``damp="auto"`` chose.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.solvers.result import DeconvolutionResult
    >>> DeconvolutionResult(np.zeros((1, 4)), 3, np.ones(4), True, "cg")
    DeconvolutionResult(solver='cg', x.shape=(1, 4), iterations=3, converged=True)
    """

    x: np.ndarray
    iterations: int | np.ndarray
    residuals: np.ndarray | tuple
    converged: bool | np.ndarray
    solver: str
    damp: float | np.ndarray = 0.0

    def __repr__(self) -> str:
        return (f"DeconvolutionResult(solver={self.solver!r}, x.shape={self.x.shape}, "
                f"iterations={self.iterations}, converged={self.converged})")


def collect(samples: list, batched: bool, solver: str, damps: list) -> DeconvolutionResult:
    """One result from per-sample ``(x, iterations, residuals, converged)`` tuples and ``damp`` values.

    A batched ``h`` gives stacked ``x`` and arrays of iterations, flags and
    damps; an unbatched one the single sample's values.
    """
    estimates, iterations, histories, converged = zip(*samples)
    if batched:
        return DeconvolutionResult(np.stack(estimates), np.array(iterations), tuple(histories),
                                   np.array(converged), solver, np.array(damps, dtype=float))
    return DeconvolutionResult(estimates[0], iterations[0], histories[0], converged[0], solver, float(damps[0]))
