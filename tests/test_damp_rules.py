"""damp="auto": GCV, the discrepancy principle and the L-curve (issue 15 items 1 and 5).

Two oracles: the rules' own definitions evaluated on a dense SVD of
``ts.conv_matrix`` (the chosen ``damp`` must match), and the true image (the
chosen ``damp`` must give a PSNR within 0.5 dB of the best of a sweep of plain
``deconvolve`` calls over a log grid of ``damp``).
"""

import numpy as np
import pytest
from scipy.optimize import brentq

import tconv_sparse as ts
from tconv_sparse.cli.demo import synthetic_image
from tconv_sparse.solvers.damp_rules import choose_damp

NOISE_LEVELS = (0.01, 0.03, 0.1)
SWEEP = np.logspace(-2.5, 0.5, 13)


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


@pytest.mark.parametrize("rule", ["gcv", "discrepancy", "lcurve"])
@pytest.mark.parametrize("name, d, size, kwargs", ORACLE_MODELS, ids=[m[0] for m in ORACLE_MODELS])
def test_rule_matches_dense_svd(name, d, size, kwargs, rule):
    g, w, h = _problem(d, size, kwargs, 0.03)
    if d == 2:
        g, h = g[:, :12, :12], ts.conv(g[:, :12, :12], w, **kwargs)
        h = h + 0.03 * np.random.default_rng(1).standard_normal(h.shape)
    operator = ts.ConvOperator(w, g.shape[1:], **kwargs)
    choice = choose_damp(operator, h, rule=rule, noise_std=0.03)
    dense = _dense(w, g.shape[1:], kwargs, h)
    grid = np.geomspace(choice.damps[0], choice.damps[-1], 2000)
    exact = choice.method == "exact spectrum"
    if rule == "gcv":   # GCV is flat near its minimum: compare its values (Hutchinson: a few per cent)
        values = _oracle(rule, dense, 0.03, np.append(grid, choice.damp))
        assert values[-1] <= min(values[:-1]) * (1.001 if exact else 1.05), (choice.damp, choice.method)
    else:
        expected = _oracle(rule, dense, 0.03, grid)
        tolerance = 0.02 if exact else 0.1
        assert abs(np.log(choice.damp) - expected) < tolerance, (choice.damp, np.exp(expected), choice.method)


# ------------------------------------------------------- the true-image oracle
def _auto(h, w, shape, kwargs, rule, noise):
    choice = choose_damp(ts.ConvOperator(w, shape, **kwargs), h, rule=rule, noise_std=noise)
    return ts.deconvolve(h, w, shape, damp=choice.damp, **kwargs), choice.damp


def _sweep_best(g, w, h, kwargs):
    return max(_psnr(ts.deconvolve(h, w, g.shape[1:], damp=damp, **kwargs).x, g) for damp in SWEEP)


@pytest.mark.parametrize("noise", NOISE_LEVELS)
@pytest.mark.parametrize("name, d, size, kwargs", MODELS, ids=[m[0] for m in MODELS])
def test_auto_damp_psnr_near_best_of_sweep(name, d, size, kwargs, noise):
    g, w, h = _problem(d, size, kwargs, noise)
    best = _sweep_best(g, w, h, kwargs)
    gaps = {}
    for rule in ("gcv", "discrepancy", "lcurve"):
        result, damp = _auto(h, w, g.shape[1:], kwargs, rule, noise)
        gaps[rule] = round(_psnr(result.x, g) - best, 2)
        if rule == "discrepancy":   # Morozov: ||C x - h|| = noise_std * sqrt(m)
            residual = np.linalg.norm(ts.conv(result.x, w, **kwargs) - h)
            assert residual == pytest.approx(noise * np.sqrt(h.size), rel=0.05)
    print(name, noise, gaps)
    assert all(gap >= -0.5 for gap in gaps.values()), gaps
