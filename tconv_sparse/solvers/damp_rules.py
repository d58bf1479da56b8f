"""Automatic choice of the Tikhonov parameter ``damp``: GCV, the discrepancy principle, the L-curve.

For ``min_g ||C g - h||^2 + damp^2 ||g||^2`` with the singular values
``sigma_i`` of ``C`` and the data's coefficients ``beta_i = |u_i^H h|`` in its
left singular basis, the filter factors ``phi_i = sigma_i^2 / (sigma_i^2 + damp^2)``
give every quantity the rules need in closed form (Hansen, *Rank-Deficient and
Discrete Ill-Posed Problems*, SIAM 1998, ch. 7; his Regularization Tools):

* residual ``||C g - h||^2 = sum (1 - phi_i)^2 beta_i^2 + floor``
  (``floor``: the part of ``h`` outside the span of the ``u_i``);
* solution ``||g||^2 = sum phi_i^2 beta_i^2 / sigma_i^2``;
* influence-matrix trace ``t = sum phi_i``, and the GCV function
  ``G = ||C g - h||^2 / (m - t)^2`` (Golub, Heath & Wahba, Technometrics 1979).

The rules: ``"gcv"`` minimises ``G``; ``"discrepancy"`` (Morozov) solves
``||C g - h|| = noise_std * sqrt(m)`` for ``damp`` (``m`` measurements) with
a scalar root finder; ``"lcurve"`` takes the point of maximum curvature of
``(log ||C g - h||, log ||g||)`` (Hansen & O'Leary, SIAM J. Sci. Comput. 1993).
``G`` and the curvature are evaluated on a log grid of ``damp`` and the best
grid point is refined with a bounded scalar minimiser.

Where the spectrum comes from:

* **Exact** for block-circulant ``C`` (circular padding with ``out * stride ==
  n`` on every axis, e.g. ``padding="same"``, any channels, groups and
  dilation): the frequency-domain SVD of
  :mod:`tconv_sparse.analysis.spectra` and the unitary DFT of ``h``.
* **Exact** for GCV and the L-curve on other small ``C`` (at most
  ``DENSE_LIMIT = 2**12`` entries ``m * n``, e.g. a 1-D signal of 64
  samples; :mod:`.damp_spectra`): a dense SVD. There a Hutchinson trace from
  a few probes is too noisy (with 64 measurements it moved GCV's choice by
  13-33 %).
* **Golub-Kahan (hybrid LSQR) otherwise** (zero, reflect and replicate
  padding, other strides and shapes): ``k`` steps of the bidiagonalisation
  that LSQR runs, started at ``h``, give the damped LSQR iterate's residual
  and solution norms for every ``damp`` at once from the small bidiagonal
  ``B_k`` (the projected problem of Chung, Nagy & O'Leary, ETNA 2008). GCV's
  trace is a Hutchinson estimate (Rademacher probes; Hutchinson 1990) whose
  quadratic forms ``z^T f(C C^H) z`` are Gauss quadratures from
  bidiagonalisations started at the probes (Golub & Meurant, *Matrices,
  Moments and Quadrature*, 2010; Bai, Fahey & Golub 1996), run in the same
  block product as ``h``. ``k`` grows until the chosen ``damp`` and the
  rule's quantities at it change by less than ``tol`` (relative) between
  checks; the convergence rate is that of damped LSQR at the chosen
  ``damp``, so the cost is about one damped solve (GCV: with
  ``probes + 1`` columns per product). There is no reorthogonalisation
  (memory stays a few vectors): in floating point the LSQR quantities and the
  Gauss quadratures stay accurate (Golub & Strakos, Numer. Algorithms 1994).

What the rules target, and where they miss the error-optimal ``damp`` (measured
in ``tests/test_damp_rules.py`` against the ``damp`` of best PSNR, the true
image known; each miss is the exact rule's own, on the dense SVD):

* GCV estimates the minimiser of the *predictive* error ``||C (g_damp - g)||``,
  not of ``||g_damp - g||``; on smooth images it picks 0.5-0.7x the
  error-optimal ``damp`` (0.8-1.9 dB below it). The weighted GCV of Chung,
  Nagy & O'Leary (ETNA 2008) replaces ``m - t`` by ``m - omega t``; their
  adaptive ``omega`` is at most 1, which corrects the over-smoothing of GCV on
  the *projected* problem and moves the minimum to smaller ``damp`` still, so
  it is not used here (the trace here is the full problem's).
* The L-curve corner can under-smooth smooth, low-noise problems (Hanke, BIT
  36, 1996; Vogel, Inverse Problems 12, 1996); here by up to 12 dB. A problem
  that is not ill-posed (singular values within a decade) has a GCV function
  decreasing to ``damp -> 0`` and an L-curve without a corner; both rules then
  end at ``sigma_min``, the lower end of their range.
* The discrepancy principle with safety factor 1 over-smooths when the
  error-optimal fit keeps a residual well below ``noise_std * sqrt(m)``
  (few measurements, low noise).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.operator import ConvOperator
from tconv_sparse.solvers.damp_spectra import GolubKahan, Spectrum, exact_coefficients

__all__ = ["choose_damp", "choose_damps", "DampChoice", "DAMP_RULES", "parse_noise_std"]

#: every ``damp_rule`` value
DAMP_RULES = ("gcv", "discrepancy", "lcurve")
_GRID_PER_DECADE = 16


@dataclass(frozen=True)
class DampChoice:
    """The ``damp`` a rule chose, with the curves it was read from (for plotting).

    Attributes
    ----------
    damp : float
        The chosen Tikhonov parameter.
    rule : str
        ``"gcv"``, ``"discrepancy"`` or ``"lcurve"``.
    method : str
        ``"exact spectrum"`` (block-circulant ``C``), ``"dense svd"`` (small
        ``C``) or ``"golub-kahan"``.
    steps : int
        Golub-Kahan steps taken (0 for the exact spectrum and the dense SVD).
    damps : numpy.ndarray
        The log grid of ``damp`` values, ascending.
    residual_norms, solution_norms, gcv : numpy.ndarray
        ``||C g - h||``, ``||g||`` and the GCV function on ``damps``.
    residual_norm, solution_norm : float
        Their values at ``damp``.
    """

    damp: float
    rule: str
    method: str
    steps: int
    damps: np.ndarray
    residual_norms: np.ndarray
    solution_norms: np.ndarray
    gcv: np.ndarray
    residual_norm: float
    solution_norm: float


# ------------------------------------------------------------------ the rules
def _refine(objective, grid, index):
    """Minimise ``objective(log damp)`` between the neighbours of grid point ``index``."""
    from scipy.optimize import minimize_scalar  # imported on use: SciPy's optimize costs 0.3 s at import

    lo, hi = np.log(grid[max(index - 1, 0)]), np.log(grid[min(index + 1, len(grid) - 1)])
    best = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    t = best.x if best.fun <= float(objective(np.log(grid[index]))) else np.log(grid[index])
    return float(np.exp(t))


def _log_norms(spectrum: Spectrum, t):
    damp = np.exp(t)
    return 0.5 * np.log(spectrum.residual2(damp)), 0.5 * np.log(np.maximum(spectrum.solution2(damp), 1e-300))


def _negative_curvature(spectrum: Spectrum, t, step: float = 1e-3):
    """Minus the signed curvature of ``(log ||r||, log ||g||)`` at ``damp = exp(t)`` (``t`` may be an array)."""
    (r0, s0), (r1, s1), (r2, s2) = (_log_norms(spectrum, t + k * step) for k in (-1, 0, 1))
    dr, ds = (r2 - r0) / (2 * step), (s2 - s0) / (2 * step)
    ddr, dds = (r2 - 2 * r1 + r0) / step ** 2, (s2 - 2 * s1 + s0) / step ** 2
    return -(dr * dds - ds * ddr) / np.maximum((dr * dr + ds * ds) ** 1.5, 1e-300)


def _discrepancy(spectrum: Spectrum, grid, noise_std: float, warn: bool) -> float:
    target = noise_std ** 2 * spectrum.m

    def excess(t):
        return float(spectrum.residual2(math.exp(t))) - target

    lo, hi = np.log(grid[0]), np.log(grid[-1])
    if excess(lo) >= 0 or excess(hi) <= 0:
        end = grid[0] if excess(lo) >= 0 else grid[-1]
        if warn:
            reached = np.sqrt(spectrum.residual2(grid[[0, -1]]))
            warnings.warn(f"damp_rule='discrepancy': no damp in [{grid[0]:.3g}, {grid[-1]:.3g}] gives the "
                          f"residual norm noise_std * sqrt(m) = {math.sqrt(target):.4g} (the residual ranges "
                          f"over [{reached[0]:.4g}, {reached[1]:.4g}]); using damp={end:.3g}. Check noise_std.",
                          UserWarning, stacklevel=4)
        return float(end)
    from scipy.optimize import brentq  # imported on use, as in _refine

    return float(math.exp(brentq(excess, lo, hi, xtol=1e-6)))


def _select(spectrum: Spectrum, rule: str, noise_std, warn: bool = True) -> tuple[float, np.ndarray]:
    """``(damp, grid)`` chosen by ``rule`` over a log grid.

    GCV and the L-curve search ``[max(sigma_min, 16 eps sigma_max),
    sigma_max]`` (``sigma_min``: the smallest singular value above ``16 eps
    sigma_max``), the range of Hansen's ``gcv`` and ``l_curve``
    (Regularization Tools): below the smallest singular value the curves only
    flatten. The discrepancy rule brackets ``[16 eps sigma_max, 10 sigma_max]``.
    """
    top, bottom = spectrum.scale(), 16 * np.finfo(np.float64).eps * spectrum.scale()
    if rule == "discrepancy":   # the residual is monotone in damp: search its whole range
        top = 10 * top
    else:
        positive = spectrum.sigma[spectrum.sigma > bottom]
        bottom = float(positive.min()) if positive.size else bottom
    grid = np.geomspace(bottom, top, max(int(_GRID_PER_DECADE * np.log10(top / bottom)), 2 * _GRID_PER_DECADE))
    if rule == "discrepancy":
        return _discrepancy(spectrum, grid, noise_std, warn), grid
    if rule == "gcv":
        def objective(t):
            return np.log(spectrum.gcv(np.exp(t)))
    else:
        def objective(t):
            return _negative_curvature(spectrum, t)
    return _refine(objective, grid, int(np.argmin(objective(np.log(grid))))), grid


def _quantities(spectrum: Spectrum, rule: str, damp: float) -> np.ndarray:
    """The quantities whose convergence ends the Golub-Kahan iteration for ``rule``."""
    names = {"gcv": ("residual2", "free"), "discrepancy": ("residual2",), "lcurve": ("residual2", "solution2")}
    return np.array([getattr(spectrum, name)(damp) for name in names[rule]])


def _golub_kahan_choice(operator, h, rule, noise_std, probes, maxsteps, tol, seed):
    """``(damp, grid, spectrum, steps)`` from a growing bidiagonalisation (see the module notes)."""
    m = operator.shape[0]
    starts = [h.reshape(-1, 1)]
    if rule == "gcv":
        rng = np.random.default_rng(seed)
        starts.append(rng.choice(np.array([-1.0, 1.0]), size=(m, probes)))
    gk = GolubKahan(operator, np.concatenate(starts, axis=1).astype(np.result_type(h, operator.dtype)))
    previous = None
    while True:
        gk.advance(max(5, gk.steps // 4))
        spectrum = gk.spectrum(m, with_trace=rule == "gcv")
        damp, grid = _select(spectrum, rule, noise_std, warn=False)
        done = gk.breakdown or gk.steps >= maxsteps
        if previous is not None and not done:
            before, now = _quantities(previous[1], rule, damp), _quantities(spectrum, rule, damp)
            done = abs(math.log(damp / previous[0])) < tol and np.all(np.abs(now - before) <= tol * np.abs(now))
        if done:
            return (*_select(spectrum, rule, noise_std), spectrum, gk.steps)
        previous = damp, spectrum


# ------------------------------------------------------------------- public
def choose_damp(operator, h, *, rule="gcv", noise_std=None, probes=2, maxsteps=None, tol=1e-3, seed=0):
    """Choose the Tikhonov ``damp`` of ``min_g ||C g - h||^2 + damp^2 ||g||^2`` by a rule.

    Parameters
    ----------
    operator : ConvOperator
        The convolution ``C`` (one sample, flattened).
    h : array_like
        One measured sample, ``C.shape[0]`` values (any shape; flattened in C order).
    rule : {"gcv", "discrepancy", "lcurve"}
        Generalised cross-validation, Morozov's discrepancy principle
        (``||C g - h|| = noise_std * sqrt(m)``) or the L-curve corner.
    noise_std : float, optional
        Standard deviation of the noise in ``h``; required (``> 0``) by ``"discrepancy"``.
    probes : int
        Hutchinson probes of GCV's trace on the Golub-Kahan route (``>= 1``).
    maxsteps : int, optional
        Most Golub-Kahan steps (``>= 1``); default (and at most) ``min(C.shape)``.
    tol : float
        Relative change of ``damp`` and of the rule's quantities at which the
        Golub-Kahan route stops, in ``(0, 1)``.
    seed : int
        Seed of the Rademacher probes.

    Returns
    -------
    DampChoice

    Notes
    -----
    See the module notes: exact closed forms over the frequency-domain
    spectrum for block-circulant ``C``; otherwise the projected problem of
    Golub-Kahan bidiagonalisation (hybrid LSQR, Chung, Nagy & O'Leary 2008)
    with a Hutchinson/Gauss-quadrature estimate of GCV's trace. The returned
    curves are those of the spectrum used (for the Golub-Kahan route, of the
    projected problem after ``steps`` steps).

    Examples
    --------
    The discrepancy rule hits its target residual norm:

    >>> import numpy as np, tconv_sparse as ts
    >>> from tconv_sparse.solvers.damp_rules import choose_damp
    >>> rng = np.random.default_rng(0)
    >>> w = np.array([[[1.0, 2.0, 1.0]]]) / 4
    >>> g = np.sin(np.linspace(0, 3, 64))[None]
    >>> op = ts.ConvOperator(w, 64, padding="same", padding_mode="circular")
    >>> h = ts.conv(g, w, padding="same", padding_mode="circular") + 0.01 * rng.standard_normal((1, 64))
    >>> choice = choose_damp(op, h, rule="discrepancy", noise_std=0.01)
    >>> choice.method, round(choice.residual_norm / (0.01 * 8), 6)
    ('exact spectrum', 1.0)
    >>> choose_damp(ts.ConvOperator(w, 64, padding=1), h, rule="gcv").method
    'dense svd'
    >>> choose_damp(ts.ConvOperator(w, 256, padding=1), np.tile(h, 4), rule="gcv").method
    'golub-kahan'
    """
    if not isinstance(operator, ConvOperator):
        raise v.ParameterTypeError(f"operator must be a ConvOperator, got {type(operator).__name__}")
    rule = v.parse_choice("rule", rule, DAMP_RULES)
    noise_std = parse_noise_std(noise_std, rule)
    probes = v.parse_optional_int("probes", probes, 1) or 2
    maxsteps = min(v.parse_optional_int("maxsteps", maxsteps, 1) or math.inf, min(operator.shape))
    tol = v.parse_real("tol", tol, math.ulp(0.0), 1.0, "in the range 0 < tol < 1")
    h = np.asarray(h).ravel()
    if h.size != operator.shape[0]:
        raise ValueError(f"h must have C.shape[0] = {operator.shape[0]} values, got {h.size}")
    exact, method = exact_coefficients(operator, h, rule)
    if exact is not None:
        sigma, beta, floor = exact
        floor = floor if floor > 1e-10 * np.vdot(h, h).real else 0.0   # else rounding error
        spectrum = Spectrum(sigma, beta, floor, sigma, np.ones_like(sigma), h.size)
        damp, grid = _select(spectrum, rule, noise_std)
        steps = 0
    else:
        damp, grid, spectrum, steps = _golub_kahan_choice(operator, h, rule, noise_std, probes, maxsteps,
                                                          tol, seed)
    return DampChoice(damp, rule, method, steps, grid, np.sqrt(spectrum.residual2(grid)),
                      np.sqrt(spectrum.solution2(grid)), spectrum.gcv(grid),
                      math.sqrt(spectrum.residual2(damp)), math.sqrt(spectrum.solution2(damp)))


def choose_damps(problem) -> list:
    """Each sample's ``damp`` for a validated deconvolution problem: the given one, or the rule's choice."""
    if problem.damp_rule is None:
        return [problem.damp] * len(problem.h)
    return [choose_damp(problem.operator, h, rule=problem.damp_rule, noise_std=problem.noise_std).damp
            for h in problem.h]


def parse_noise_std(noise_std, rule):
    """Check ``noise_std``: ``None`` or a finite number ``> 0``; ``rule="discrepancy"`` needs one.

    ``rule`` is the ``damp_rule`` in force (``None`` when ``damp`` is a number).
    """
    if noise_std is None:
        if rule == "discrepancy":
            raise ValueError("damp_rule='discrepancy' needs noise_std, the standard deviation of the noise "
                             "in h (a number > 0), got noise_std=None")
        return None
    return v.parse_real("noise_std", noise_std, math.ulp(0.0), math.inf, "> 0 and finite (or None)")
