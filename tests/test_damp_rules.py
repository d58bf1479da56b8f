"""damp="auto": GCV, the discrepancy principle and the L-curve (issue 15 items 1 and 5).

Two oracles: the rules' own definitions evaluated on a dense SVD of
``ts.conv_matrix`` (the chosen ``damp`` must match), and the true image (the
chosen ``damp`` must give a PSNR within 0.5 dB of the best of a sweep of plain
``deconvolve`` calls over a log grid of ``damp``).
"""

import functools

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

import tconv_sparse as ts
from tconv_sparse.cli.demo import synthetic_image
from tconv_sparse.solvers import damp_spectra
from tconv_sparse.solvers.damp_rules import choose_damp

NOISE_LEVELS = (0.01, 0.03, 0.1)
SWEEP = np.logspace(-2.0, 0.5, 31)   # 12 per decade; the best damp of every case lies well inside


def _gaussian(size, d):
    taps = np.exp(-0.5 * (np.arange(size) - (size - 1) / 2) ** 2)
    kernel = taps
    for _ in range(d - 1):
        kernel = np.multiply.outer(kernel, taps)
    return (kernel / kernel.sum())[None, None]


def _image(d):
    """Slices of the demo's synthetic image (gradient, disk, square, resolution wedge)."""
    if d == 1:
        return synthetic_image(64)[40][None]
    if d == 2:
        return synthetic_image(24)[None]
    depth = np.cos(np.linspace(0.0, np.pi / 2, 10))
    return depth[:, None, None][None] * synthetic_image(16)[3:13, 3:13][None, None]


#: (name, d, kernel size, geometry)
MODELS = [(f"{d}d-{mode}", d, 5 if d < 3 else 3, dict(padding="same", padding_mode=mode))
          for d in (1, 2, 3) for mode in ("circular", "zeros")]
MODELS.append(("2d-stride2", 2, 4, dict(stride=2, padding=1)))


def _problem(d, size, kwargs, noise):
    g, w = _image(d), _gaussian(size, d)
    clean = ts.conv(g, w, **kwargs)
    h = clean + noise * np.random.default_rng(0).standard_normal(clean.shape)
    return g, w, h


def _psnr(x, g):
    return 10 * np.log10(1.0 / np.mean((x - g) ** 2))


# ------------------------------------------------------- the dense-SVD oracle
def _dense(w, shape, kwargs, h):
    matrix = ts.conv_matrix(w, shape, **kwargs).toarray()
    u, s, _ = np.linalg.svd(matrix, full_matrices=True)
    beta = u.T @ h.ravel()
    return s, beta[:len(s)], float(np.sum(beta[len(s):] ** 2)), len(h.ravel())


def _oracle(rule, dense, noise, grid):
    """``log damp`` of the rule, from the dense SVD, on ``grid`` (for GCV: its values on ``grid``)."""
    s, beta, floor, m = dense

    def residual2(lam):
        return float(np.sum((lam ** 2 / (s ** 2 + lam ** 2) * beta) ** 2) + floor)

    if rule == "discrepancy":
        return brentq(lambda t: residual2(np.exp(t)) - noise ** 2 * m, np.log(grid[0]), np.log(grid[-1]))
    if rule == "gcv":
        return [residual2(lam) / (m - np.sum(s ** 2 / (s ** 2 + lam ** 2))) ** 2 for lam in grid]
    t = np.log(grid)   # the L-curve's signed curvature by finite differences over the fine grid
    x = 0.5 * np.log([residual2(lam) for lam in grid])
    y = 0.5 * np.log([np.sum((s * beta / (s ** 2 + lam ** 2)) ** 2) for lam in grid])
    dx, dy = np.gradient(x, t), np.gradient(y, t)
    curvature = (dx * np.gradient(dy, t) - dy * np.gradient(dx, t)) / (dx ** 2 + dy ** 2) ** 1.5
    return np.log(grid[int(np.argmax(curvature))])


ORACLE_MODELS = [("1d-circular", 1, 5, dict(padding="same", padding_mode="circular")),
                 ("1d-zeros", 1, 5, dict(padding="same")),
                 ("2d-reflect", 2, 3, dict(padding=1, padding_mode="reflect")),
                 ("2d-stride2", 2, 4, dict(stride=2, padding=1))]


@pytest.mark.parametrize("route", ["default", "golub-kahan"])
@pytest.mark.parametrize("rule", ["gcv", "discrepancy", "lcurve"])
@pytest.mark.parametrize("name, d, size, kwargs", ORACLE_MODELS, ids=[m[0] for m in ORACLE_MODELS])
def test_rule_matches_dense_svd(name, d, size, kwargs, rule, route, monkeypatch):
    if route == "golub-kahan":   # small problems go to the dense SVD: force the Golub-Kahan route
        if name.endswith("circular"):
            pytest.skip("block-circulant: always the exact spectrum")
        monkeypatch.setattr(damp_spectra, "DENSE_LIMIT", 0)
    g, w, h = _problem(d, size, kwargs, 0.03)
    if d == 2:
        g, h = g[:, :12, :12], ts.conv(g[:, :12, :12], w, **kwargs)
        h = h + 0.03 * np.random.default_rng(1).standard_normal(h.shape)
    operator = ts.ConvOperator(w, g.shape[1:], **kwargs)
    choice = choose_damp(operator, h, rule=rule, noise_std=0.03)
    small = operator.shape[0] * operator.shape[1] <= damp_spectra.DENSE_LIMIT and rule != "discrepancy"
    expected_method = "exact spectrum" if name.endswith("circular") else "dense svd" if small else "golub-kahan"
    assert choice.method == expected_method
    dense = _dense(w, g.shape[1:], kwargs, h)
    grid = np.geomspace(choice.damps[0], choice.damps[-1], 2000)
    exact = choice.method != "golub-kahan"
    if rule == "gcv":   # GCV is flat near its minimum: compare its values (Hutchinson: a few per cent)
        values = _oracle(rule, dense, 0.03, np.append(grid, choice.damp))
        assert values[-1] <= min(values[:-1]) * (1.001 if exact else 1.05), (choice.damp, choice.method)
    else:
        expected = _oracle(rule, dense, 0.03, grid)
        tolerance = 0.02 if exact else 0.1
        assert abs(np.log(choice.damp) - expected) < tolerance, (choice.damp, np.exp(expected), choice.method)


# ------------------------------------------------------- the true-image oracle
def _auto(h, w, shape, kwargs, rule, noise):
    """``deconvolve(damp="auto")``; ``noise_std`` (which also stops the solver early) only where needed."""
    noise_std = noise if rule == "discrepancy" else None
    result = ts.deconvolve(h, w, shape, damp="auto", damp_rule=rule, noise_std=noise_std, **kwargs)
    return result, result.damp


@functools.lru_cache(maxsize=None)
def _case(name, noise):
    """``(g, w, h, kwargs, best PSNR of the sweep)`` for a model and noise level, computed once."""
    _, d, size, kwargs = next(model for model in MODELS if model[0] == name)
    g, w, h = _problem(d, size, kwargs, noise)
    return g, w, h, kwargs, _best_psnr(g, w, h, kwargs)


def _best_psnr(g, w, h, kwargs):
    """The best PSNR over ``damp``: the best point of ``SWEEP``, refined between its neighbours."""
    def loss(t):
        return -_psnr(ts.deconvolve(h, w, g.shape[1:], damp=float(np.exp(t)), **kwargs).x, g)

    scores = [loss(t) for t in np.log(SWEEP)]
    best = int(np.argmin(scores))
    assert 0 < best < len(SWEEP) - 1, "the sweep must bracket the best damp"
    refined = minimize_scalar(loss, bounds=np.log(SWEEP[[best - 1, best + 1]]), method="bounded",
                              options={"xatol": 1e-3})
    return -min(refined.fun, scores[best])


#: Measured PSNR gaps (dB) to the best of the sweep, beyond -0.5 dB. They are the rules' own: the
#: rule evaluated exactly on the dense SVD lands within 0.1 dB of the same gap
#: (test_known_gaps_are_the_rules_own), so no better approximation can close them.
#: - GCV minimises an estimate of the predictive error ||C (x - g)||, not ||x - g||, and chooses
#:   0.5-0.7x the PSNR-best damp here (-0.8 to -1.9 dB). Chung, Nagy & O'Leary's weighted GCV does
#:   not help: their adaptive weight is <= 1, which moves the minimum to smaller damp still.
#: - The L-curve has one corner, at residuals of 0.4-0.6 x noise_std sqrt(m): it under-smooths these
#:   smooth, low-noise problems (Hanke, BIT 1996; Vogel, Inverse Problems 1996), by up to 12 dB.
#: - The discrepancy principle (tau = 1, as the residual check requires) over-smooths the 1-D signal
#:   at noise 0.01 (damp 0.107 against the best 0.045): 64 measurements, and the best fit keeps
#:   a residual well below noise_std sqrt(m).
#: - The stride-2 model (m = 144 < n = 576, singular values in [0.11, 0.49]) is not ill-posed: its GCV
#:   function decreases all the way to damp -> 0 and its L-curve has no corner, so both rules end at
#:   the lower end of their range, sigma_min = 0.112 (Hansen's range [sigma_min, sigma_max]).
KNOWN_GAPS = {
    ("1d-circular", 0.01, "discrepancy"): -1.36,
    ("1d-circular", 0.03, "gcv"): -0.86,
    ("1d-circular", 0.03, "lcurve"): -1.67,
    ("1d-circular", 0.1, "gcv"): -1.60,
    ("1d-circular", 0.1, "lcurve"): -3.96,
    ("1d-zeros", 0.01, "discrepancy"): -1.42,
    ("1d-zeros", 0.03, "gcv"): -1.36,
    ("1d-zeros", 0.03, "lcurve"): -1.60,
    ("1d-zeros", 0.1, "gcv"): -1.77,
    ("1d-zeros", 0.1, "lcurve"): -3.85,
    ("2d-circular", 0.01, "gcv"): -0.89,
    ("2d-circular", 0.01, "lcurve"): -10.60,
    ("2d-circular", 0.03, "gcv"): -1.40,
    ("2d-circular", 0.03, "lcurve"): -4.83,
    ("2d-circular", 0.1, "gcv"): -1.64,
    ("2d-circular", 0.1, "lcurve"): -2.81,
    ("2d-zeros", 0.01, "gcv"): -0.96,
    ("2d-zeros", 0.01, "lcurve"): -12.11,
    ("2d-zeros", 0.03, "gcv"): -1.49,
    ("2d-zeros", 0.03, "lcurve"): -4.79,
    ("2d-zeros", 0.1, "gcv"): -1.55,
    ("2d-zeros", 0.1, "lcurve"): -2.93,
    ("3d-circular", 0.01, "lcurve"): -2.17,
    ("3d-circular", 0.03, "gcv"): -0.78,
    ("3d-circular", 0.03, "lcurve"): -2.45,
    ("3d-circular", 0.1, "gcv"): -1.11,
    ("3d-circular", 0.1, "lcurve"): -1.14,
    ("3d-zeros", 0.01, "gcv"): -1.23,
    ("3d-zeros", 0.01, "lcurve"): -6.22,
    ("3d-zeros", 0.03, "gcv"): -1.60,
    ("3d-zeros", 0.03, "lcurve"): -3.74,
    ("3d-zeros", 0.1, "gcv"): -1.87,
    ("3d-zeros", 0.1, "lcurve"): -1.18,
    ("2d-stride2", 0.01, "gcv"): -0.61,
    ("2d-stride2", 0.01, "lcurve"): -0.61,
    ("2d-stride2", 0.1, "gcv"): -0.68,
    ("2d-stride2", 0.1, "lcurve"): -0.68,
}


def _cases():
    for name, *_ in MODELS:
        for noise in NOISE_LEVELS:
            for rule in ("gcv", "discrepancy", "lcurve"):
                gap = KNOWN_GAPS.get((name, noise, rule))
                marks = () if gap is None else pytest.mark.xfail(
                    strict=True, reason=f"{rule} lands {gap} dB below the best of the sweep (KNOWN_GAPS)")
                yield pytest.param(name, noise, rule, marks=marks, id=f"{name}-{noise}-{rule}")


@pytest.mark.parametrize("name, noise, rule", list(_cases()))
def test_auto_damp_psnr_near_best_of_sweep(name, noise, rule):
    g, w, h, kwargs, best = _case(name, noise)
    result, _ = _auto(h, w, g.shape[1:], kwargs, rule, noise)
    if rule == "discrepancy":   # Morozov: ||C x - h|| = noise_std * sqrt(m)
        residual = np.linalg.norm(ts.conv(result.x, w, **kwargs) - h)
        assert residual == pytest.approx(noise * np.sqrt(h.size), rel=0.05)
    gap = _psnr(result.x, g) - best
    assert gap >= -0.5, f"{name} noise={noise} {rule}: damp={result.damp:.4g}, {gap:+.2f} dB"


def _exact_rule_damp(rule, name, noise):
    """The ``damp`` of ``rule`` by its definition on the dense SVD, searched as Hansen's Regularization Tools do
    (GCV and the L-curve over ``[max(sigma_min, 16 eps sigma_max), sigma_max]``, here on 4000 points)."""
    g, w, h, kwargs, _ = _case(name, noise)
    dense = _dense(w, g.shape[1:], kwargs, h)
    top = dense[0].max()
    bottom = 16 * np.finfo(float).eps * top
    if rule != "discrepancy":
        bottom = max(dense[0][dense[0] > bottom].min(), bottom)
    grid = np.geomspace(bottom, top if rule != "discrepancy" else 10 * top, 4000)
    if rule == "gcv":
        return float(grid[int(np.argmin(_oracle(rule, dense, noise, grid)))])
    return float(np.exp(_oracle(rule, dense, noise, grid)))


@pytest.mark.parametrize("name, noise, rule", sorted(KNOWN_GAPS), ids=lambda case: case if isinstance(case, str) else None)
def test_known_gaps_are_the_rules_own(name, noise, rule):
    """Every known gap is the rule's, not its approximation's: the rule evaluated exactly on the dense SVD misses too."""
    g, w, h, kwargs, best = _case(name, noise)
    damp = _exact_rule_damp(rule, name, noise)
    gap = _psnr(ts.deconvolve(h, w, g.shape[1:], damp=damp, **kwargs).x, g) - best
    assert gap < -0.5, f"{name} noise={noise} {rule}: the exact rule's damp={damp:.4g} gives {gap:+.2f} dB"


def test_result_damp_reports_the_value_used():
    g, w, h = _problem(1, 5, dict(padding="same"), 0.03)
    assert ts.deconvolve(h, w, padding="same", damp=0.25).damp == 0.25
    batch = np.stack([h, 3 * h])
    auto = ts.deconvolve(batch, w, padding="same", damp="auto")
    one = [choose_damp(ts.ConvOperator(w, 64, padding="same"), sample).damp for sample in batch]
    np.testing.assert_allclose(auto.damp, one)
    np.testing.assert_allclose(auto.x[1], ts.deconvolve(batch[1], w, padding="same", damp=one[1]).x)


@pytest.mark.parametrize("options, names", [
    (dict(damp="autox"), ["damp", "'autox'", "'auto'"]),
    (dict(damp="auto", damp_rule="x"), ["damp_rule", "'x'", "'gcv'"]),
    (dict(damp="auto", damp_rule="discrepancy"), ["noise_std", "None", "discrepancy"]),
    (dict(damp="auto", damp_rule="discrepancy", noise_std=-0.1), ["noise_std", "-0.1", "> 0"]),
    (dict(damp="auto", noise_std=0.0), ["noise_std", "0.0", "> 0"]),
    (dict(damp="auto", regularizer="laplacian"), ["damp='auto'", "regularizer", "'laplacian'"]),
    (dict(damp="auto", solver="richardson_lucy"), ["damp='auto'", "solver", "'richardson_lucy'"]),
])
def test_bad_arguments_name_the_parameter(options, names):
    h = np.ones((1, 16))
    with pytest.raises(ValueError) as error:
        ts.deconvolve(h, np.ones((1, 1, 3)), padding=1, **options)
    for name in names:
        assert name in str(error.value)


def test_dask_deconvolve_chooses_each_sample_damp():
    da = pytest.importorskip("dask.array")
    import dask

    import tconv_sparse.dask as tsd

    g, w, h = _problem(1, 5, dict(padding="same"), 0.03)
    batch = np.stack([h, 2 * h, 0.5 * h])
    lazy = tsd.deconvolve(da.from_array(batch, chunks=(2, 1, 64)), w, padding="same", damp="auto",
                          damp_rule="lcurve")
    x, damps = dask.compute(lazy.x, lazy.damp)
    eager = ts.deconvolve(batch, w, padding="same", damp="auto", damp_rule="lcurve")
    np.testing.assert_allclose(damps, eager.damp)
    np.testing.assert_allclose(x, eager.x)


def test_choose_damp_checks_its_options():
    operator = ts.ConvOperator(np.ones((1, 1, 3)), 16, padding=1)
    for options, name in ((dict(probes=0), "probes"), (dict(maxsteps=0), "maxsteps"), (dict(tol=1.5), "tol"),
                          (dict(rule="gvc"), "rule")):
        with pytest.raises(ValueError, match=name):
            choose_damp(operator, np.ones(16), **options)
    with pytest.raises(ValueError, match="h must have"):
        choose_damp(operator, np.ones(15))
