"""The spectra the ``damp`` rules read: closed forms over singular values, exact or projected.

See :mod:`tconv_sparse.solvers.damp_rules` for the formulas and the
references. :func:`exact_coefficients` gives the full spectrum where it is
cheap (block-circulant ``C``: the frequency-domain SVD; small ``C``: a dense
SVD); :class:`GolubKahan` gives the projected spectrum of hybrid LSQR
otherwise; :class:`Spectrum` evaluates the residual and solution norms, the
trace and the GCV function over either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh_tridiagonal

from tconv_sparse.analysis.spectra import circulant_coefficients

__all__ = ["Spectrum", "GolubKahan", "exact_coefficients", "DENSE_LIMIT"]

#: non-circulant ``C`` with at most this many entries (``m * n``) use the exact spectrum of its dense SVD
#: for GCV and the L-curve
DENSE_LIMIT = 2 ** 12


@dataclass(frozen=True)
class Spectrum:
    """Singular values, data coefficients and trace weights of one (projected) problem."""

    sigma: np.ndarray
    beta: np.ndarray
    floor: float
    trace_sigma: np.ndarray
    trace_weight: np.ndarray
    m: int

    def _map(self, function, damp):
        """``function(damps[:, None])`` summed over the spectrum, for a scalar or an array of damps.

        Arrays go in chunks of about ``2**22`` products, whatever the size of the spectrum.
        """
        damps = np.asarray(damp, dtype=np.float64)
        flat = damps.reshape(-1, 1)
        step = max(1, 2 ** 22 // max(self.sigma.size, self.trace_sigma.size, 1))
        values = np.concatenate([function(flat[i:i + step]) for i in range(0, len(flat), step)])
        return values.reshape(damps.shape)

    def residual2(self, damp):
        """``||C g - h||^2`` at ``damp`` (a number or an array)."""
        def residual2(d):
            return np.sum((d ** 2 / (self.sigma ** 2 + d ** 2) * self.beta) ** 2, axis=1) + self.floor
        return self._map(residual2, damp)

    def solution2(self, damp):
        """``||g||^2`` at ``damp``."""
        def solution2(d):
            return np.sum((self.sigma * self.beta / (self.sigma ** 2 + d ** 2)) ** 2, axis=1)
        return self._map(solution2, damp)

    def free(self, damp):
        """``m - trace(influence matrix)`` at ``damp``, summed without cancellation."""
        def filtered(d):
            return np.sum(self.trace_weight * d ** 2 / (self.trace_sigma ** 2 + d ** 2), axis=1)
        return self.m - np.sum(self.trace_weight) + self._map(filtered, damp)

    def gcv(self, damp):
        """The GCV function ``||C g - h||^2 / (m - trace)^2`` at ``damp`` (``inf`` where the trace is ``m``)."""
        free = self.free(damp)
        with np.errstate(divide="ignore"):
            return np.where(free > 1e-150, self.residual2(damp) / np.maximum(free, 1e-150) ** 2, np.inf)

    def scale(self) -> float:
        return float(max(np.max(self.sigma, initial=0.0), np.max(self.trace_sigma, initial=0.0)))


def exact_coefficients(operator, h, rule):
    """``((sigma, |u_i^H h|, floor), method)`` where the full spectrum is cheap, else ``(None, "golub-kahan")``.

    Block-circulant ``C``: the frequency-domain SVD. Other ``C`` with at most
    ``DENSE_LIMIT`` entries, for GCV and the L-curve: the dense SVD (its cost,
    ``O(m n min(m, n))``, about that of one damped LSQR solve there). The
    discrepancy rule needs only the residual norm, which Golub-Kahan gets
    accurately in a few steps: it keeps that cheaper route.
    """
    exact = circulant_coefficients(operator.weight, operator.geometry, h)
    if exact is not None:
        return exact, "exact spectrum"
    if operator.shape[0] * operator.shape[1] > DENSE_LIMIT or rule == "discrepancy":
        return None, "golub-kahan"
    u, sigma, _ = np.linalg.svd(operator.matrix.toarray(), full_matrices=True)
    coefficients = u.conj().T @ h
    floor = float(np.sum(np.abs(coefficients[sigma.size:]) ** 2))
    return (sigma, np.abs(coefficients[:sigma.size]), floor), "dense svd"


class GolubKahan:
    """Golub-Kahan bidiagonalisation of ``A`` started at the columns of ``starts`` (one block product per step)."""

    def __init__(self, operator, starts: np.ndarray):
        self.operator = operator
        self.betas = [np.linalg.norm(starts, axis=0)]
        self.u = starts / self.betas[0]
        self.v = operator.rmatmat(self.u)
        self.alphas = [np.linalg.norm(self.v, axis=0)]
        self.v = self.v / self.alphas[0]
        self.breakdown = not np.all(self.alphas[0] > 0)

    @property
    def steps(self) -> int:
        return len(self.betas) - 1

    def advance(self, steps: int) -> None:
        for _ in range(steps):
            if self.breakdown:
                return
            self.u = self.operator.matmat(self.v) - self.alphas[-1] * self.u
            beta = np.linalg.norm(self.u, axis=0)
            self.betas.append(beta)
            if not np.all(beta > 1e-12 * self.alphas[0]):   # an invariant subspace: exact from here
                self.breakdown = True
                return
            self.u = self.u / beta
            self.v = self.operator.rmatmat(self.u) - beta * self.v
            alpha = np.linalg.norm(self.v, axis=0)
            self.alphas.append(alpha)
            self.breakdown = not np.all(alpha > 1e-12 * self.alphas[0])
            self.v = self.v / np.where(alpha > 0, alpha, 1.0)

    def nodes(self, column: int, square: bool):
        """Singular values of ``B_k`` and the first row of its left singular vectors.

        ``B_k`` is the ``k+1 x k`` projected LSQR matrix (``square=False``) or
        its leading ``k x k`` block; both come from the eigenpairs of the
        tridiagonal ``B_k B_k^T``, the Lanczos matrix of ``A A^H`` started at
        this column (its Gauss quadrature nodes and weights).
        """
        k = self.steps
        alphas = np.array([a[column] for a in self.alphas[:k]])
        betas = np.array([b[column] for b in self.betas[1:k + 1]])
        diagonal = alphas ** 2 + np.concatenate([[0.0], betas[:k - 1] ** 2])
        off = alphas[:k - 1] * betas[:k - 1] if square else alphas * betas
        if not square:
            diagonal = np.concatenate([diagonal, [betas[k - 1] ** 2]])
        values, vectors = eigh_tridiagonal(diagonal, off)
        return np.sqrt(np.maximum(values, 0.0)), vectors[0]   # ascending; B_k B_k^T has rank k

    def spectrum(self, m: int, with_trace: bool) -> Spectrum:
        sigma, first = self.nodes(0, square=False)
        beta1 = float(self.betas[0][0])
        coefficients = beta1 * np.abs(first[1:])   # the null direction of B_k^H is the residual floor
        sigma, floor = sigma[1:], (beta1 * first[0]) ** 2
        trace_sigma, trace_weight = sigma, np.ones_like(sigma)
        if with_trace:   # Hutchinson over the probe columns, each a Gauss quadrature of z^T f(A A^H) z
            parts = [self.nodes(j, square=True) for j in range(1, self.u.shape[1])]
            trace_sigma = np.concatenate([s for s, _ in parts])
            trace_weight = np.concatenate([(self.betas[0][j + 1] * u) ** 2 for j, (_, u) in enumerate(parts)])
            trace_weight = trace_weight / len(parts)
        return Spectrum(sigma, coefficients, floor, trace_sigma, trace_weight, m)
