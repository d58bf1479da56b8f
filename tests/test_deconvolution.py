"""``deconvolve``: recovery, agreement between solvers, optimality, scikit-image parity, errors.

Oracles: the true signal (exact recovery), SciPy's ``lsqr``/``lsmr`` iterates,
the damped normal equations assembled from :func:`conv_matrix` and a NumPy
Neumann Laplacian, scikit-image's ``richardson_lucy`` and
``denoise_tv_chambolle``, and agreement of the solvers with each other.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from scipy.signal import convolve

import tconv_sparse as ts
import tconv_sparse.solvers.monitor as monitor
import tconv_sparse.solvers.problem as problem

skimage_restoration = pytest.importorskip("skimage.restoration")

SOLVERS = ("lsqr", "lsmr", "cg", "direct", "pdhg", "richardson_lucy")
LINEAR_SOLVERS = ("lsqr", "lsmr", "cg", "direct", "pdhg")
MODES = ("zeros", "circular", "reflect", "replicate")
SHAPES = {1: (12,), 2: (6, 6), 3: (4, 4, 4)}


def dominant_kernel(rng, out_channels, in_per_group, kernel_shape):
    """Non-negative weight whose matrix is strictly diagonally dominant by rows (well conditioned).

    Each output channel has one centre tap of 1 on one of its inputs and off-centre taps
    summing to 0.5, so ``|c_ii| >= 1 > 0.5 >= sum_{j != i} |c_ij|`` for every padding mode.
    """
    weight = rng.uniform(0, 1, (out_channels, in_per_group, *kernel_shape))
    centre = (slice(None), slice(None), *(k // 2 for k in kernel_shape))
    weight[centre] = 0
    weight *= 0.5 / weight.sum(axis=tuple(range(1, weight.ndim)), keepdims=True)
    for o in range(out_channels):
        weight[(o, o % in_per_group, *(k // 2 for k in kernel_shape))] = 1.0
    return weight


def gaussian(size, sigma, d=2):
    t = np.arange(size) - size // 2
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    kernel = g
    for _ in range(d - 1):
        kernel = np.multiply.outer(kernel, g)
    return kernel / kernel.sum()


def neumann_laplacian(x):
    """``grad^T grad x = -Laplacian x`` on every spatial axis of ``(C, *spatial)``, Neumann boundary."""
    result = np.zeros_like(x)
    for axis in range(1, x.ndim):
        difference = np.diff(x, axis=axis, append=np.take(x, [-1], axis=axis))
        result -= np.diff(difference, axis=axis, prepend=0)
    return result


def relative_error(estimate, truth):
    return np.linalg.norm(estimate - truth) / np.linalg.norm(truth)


# ------------------------------------------------------------ exact recovery
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("padding_mode", MODES)
@pytest.mark.parametrize("d", (1, 2, 3))
def test_exact_recovery(rng, d, padding_mode, solver):
    weight = dominant_kernel(rng, 1, 1, (3,) * d)
    g = rng.uniform(0.5, 1.5, (1, *SHAPES[d]))
    h = ts.conv(g, weight, padding=1, padding_mode=padding_mode)
    result = ts.deconvolve(h, weight, padding=1, padding_mode=padding_mode, solver=solver, tol=1e-10,
                           maxiter=2000)
    assert result.converged and result.solver == solver
    np.testing.assert_allclose(result.x, g, atol=1e-7)


@pytest.mark.parametrize("solver", SOLVERS)
def test_exact_recovery_multichannel_grouped_dilated(rng, solver):
    kwargs = {"padding": 2, "dilation": 2, "groups": 2, "padding_mode": "reflect"}
    weight = dominant_kernel(rng, 4, 2, (3, 3))
    g = rng.uniform(0.5, 1.5, (2, 4, 7, 6))
    h = ts.conv(g, weight, **kwargs)
    result = ts.deconvolve(h, weight, solver=solver, tol=1e-10, maxiter=2000, **kwargs)
    assert result.x.shape == g.shape and result.converged.all()
    np.testing.assert_allclose(result.x, g, atol=1e-7)


@pytest.mark.parametrize("solver", LINEAR_SOLVERS)
def test_exact_recovery_complex(rng, solver):
    weight = dominant_kernel(rng, 1, 1, (3, 3)) * np.exp(1j * rng.uniform(0, 0.3, (1, 1, 3, 3)))
    g = rng.standard_normal((1, 5, 6)) + 1j * rng.standard_normal((1, 5, 6))
    h = ts.conv(g, weight, padding=1, padding_mode="circular")
    result = ts.deconvolve(h, weight, padding=1, padding_mode="circular", solver=solver, tol=1e-10)
    assert result.x.dtype == np.complex128 and result.converged
    np.testing.assert_allclose(result.x, g, atol=1e-7)


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_stays_float32(rng, solver):
    weight = dominant_kernel(rng, 1, 1, (3,)).astype(np.float32)
    g = rng.uniform(0.5, 1.5, (1, 10)).astype(np.float32)
    # Richardson-Lucy's relative change does not reach 10 eps within its default 50 iterations
    with pytest.warns(ts.ConvergenceWarning) if solver == "richardson_lucy" else contextlib.nullcontext():
        result = ts.deconvolve(ts.conv(g, weight, padding=1), weight, padding=1, solver=solver)
    assert result.x.dtype == np.float32
    np.testing.assert_allclose(result.x, g, atol=1e-3)


# ---------------------------------------------------- against SciPy's iterates
@pytest.mark.parametrize("damp", (0.0, 0.4))
@pytest.mark.parametrize("iterations", (1, 4, 9))
def test_lsqr_and_lsmr_iterates_equal_scipy(rng, damp, iterations):
    weight = rng.standard_normal((2, 1, 3, 3))
    h = rng.standard_normal((2, 4, 4))
    C = ts.conv_matrix(weight, (6, 6))
    ours = ts.deconvolve(h, weight, (6, 6), damp=damp, maxiter=iterations, tol=0)
    theirs = spla.lsqr(C, h.ravel(), damp=damp, atol=0, btol=0, iter_lim=iterations)[0]
    np.testing.assert_allclose(ours.x.ravel(), theirs, atol=1e-12)
    ours = ts.deconvolve(h, weight, (6, 6), damp=damp, maxiter=iterations, tol=0, solver="lsmr")
    theirs = spla.lsmr(C, h.ravel(), damp=damp, atol=0, btol=0, maxiter=iterations)[0]
    np.testing.assert_allclose(ours.x.ravel(), theirs, atol=1e-12)


# ------------------------------------------------------- damped problems
STRIDED = {"stride": 2, "padding": 2, "dilation": 2, "groups": 2, "padding_mode": "reflect"}


def strided_problem(rng):
    weight = rng.uniform(-1, 1, (4, 1, 3, 3))
    g = rng.standard_normal((2, 9, 9))
    h = ts.conv(g, weight, **STRIDED)
    return weight, h + 0.01 * rng.standard_normal(h.shape)


@pytest.mark.parametrize("regularizer", (None, "laplacian"))
def test_solvers_agree_on_a_damped_problem(rng, regularizer):
    weight, h = strided_problem(rng)
    results = {solver: ts.deconvolve(h, weight, (9, 9), solver=solver, damp=0.3, regularizer=regularizer,
                                     tol=1e-10, maxiter=5000, **STRIDED)
               for solver in LINEAR_SOLVERS}
    assert all(result.converged for result in results.values())
    for solver, result in results.items():
        np.testing.assert_allclose(result.x, results["direct"].x, atol=1e-7, err_msg=solver)


@pytest.mark.parametrize("regularizer", (None, "laplacian"))
@pytest.mark.parametrize("solver", LINEAR_SOLVERS)
def test_damped_normal_equations_hold(rng, solver, regularizer):
    """``C^H (C g - h) + damp^2 R^H R g = 0`` with ``C`` from conv_matrix and a NumPy Laplacian."""
    weight, h = strided_problem(rng)
    damp = 0.3
    result = ts.deconvolve(h, weight, (9, 9), solver=solver, damp=damp, regularizer=regularizer, tol=1e-10,
                           maxiter=5000, **STRIDED)
    C = ts.conv_matrix(weight, (9, 9), **STRIDED)
    g = result.x
    penalty = g if regularizer is None else neumann_laplacian(g)
    gradient = C.T @ (C @ g.ravel() - h.ravel()) + damp ** 2 * penalty.ravel()
    assert np.linalg.norm(gradient) <= 1e-7 * np.linalg.norm(C.T @ h.ravel())


def test_residual_history(rng):
    weight, h = strided_problem(rng)
    C = ts.conv_matrix(weight, (9, 9), **STRIDED)
    for solver in LINEAR_SOLVERS:
        result = ts.deconvolve(h, weight, (9, 9), solver=solver, damp=0.3, tol=1e-10, maxiter=5000, **STRIDED)
        x = result.x.ravel()
        assert len(result.residuals) == result.iterations + 1
        assert result.residuals[0] == pytest.approx(np.linalg.norm(h))
        expected = math.sqrt(np.linalg.norm(C @ x - h.ravel()) ** 2 + 0.09 * np.linalg.norm(x) ** 2)
        assert result.residuals[-1] == pytest.approx(expected, rel=1e-6), solver


# --------------------------------------------------------- Richardson-Lucy
RL_CASES = {1: ((40,), 5, 1.0), 2: ((24, 24), 5, 1.0), 3: ((12, 12, 12), 3, 0.7)}


@pytest.mark.parametrize("num_iter", (1, 7, 25))
@pytest.mark.parametrize("d", (1, 2, 3))
def test_richardson_lucy_equals_scikit_image(rng, d, num_iter):
    shape, size, sigma = RL_CASES[d]
    margin = 3 * (size - 1) // 2
    image = np.zeros(shape)
    image[(slice(margin, -margin),) * d] = rng.uniform(0.1, 1.0, tuple(n - 2 * margin for n in shape))
    psf = gaussian(size, sigma, d)
    blurred = convolve(image, psf, mode="same", method="direct")   # FFT would leave -1e-16 values
    expected = skimage_restoration.richardson_lucy(blurred, psf, num_iter=num_iter, clip=False)
    result = ts.deconvolve(blurred[None], np.flip(psf)[None, None], padding=(size - 1) // 2,
                           solver="richardson_lucy", x0=np.full((1, *shape), 0.5), maxiter=num_iter, tol=0)
    assert result.iterations == num_iter
    np.testing.assert_allclose(result.x[0], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("padding_mode", MODES)
def test_richardson_lucy_keeps_the_truth_fixed_for_every_boundary(rng, padding_mode):
    weight = rng.uniform(0, 1, (1, 1, 3, 3))
    g = rng.uniform(0.5, 1.5, (1, 6, 7))
    h = ts.conv(g, weight, padding=1, padding_mode=padding_mode)
    result = ts.deconvolve(h, weight, padding=1, padding_mode=padding_mode, solver="richardson_lucy", x0=g,
                           maxiter=1)
    np.testing.assert_allclose(result.x, g, rtol=1e-12)
    assert result.converged


def test_richardson_lucy_stays_nonnegative_on_noisy_data(rng):
    weight = gaussian(5, 1.5)[None, None]
    h = np.abs(ts.conv(rng.uniform(0, 1, (1, 12, 12)), weight, padding=2) + 0.05 * rng.standard_normal((1, 12, 12)))
    minima = []
    result = ts.deconvolve(h, weight, padding=2, solver="richardson_lucy", maxiter=30, tol=0,
                           callback=lambda k, x: minima.append(x.min()))
    assert min(minima) >= 0 and result.x.min() >= 0 and len(minima) == 30


def test_richardson_lucy_reads_round_off_negatives_as_zeros(rng):
    """FFT round-off (-3.6e-16 on data of order 1) is accepted and read as 0, in h and in the weight."""
    weight = gaussian(5, 1.0)[None, None]
    h = ts.conv(rng.uniform(0, 1, (1, 12, 12)), weight, padding=2)
    h[0, 0, :3] = -3.6e-16
    noisy_weight = weight.copy()
    noisy_weight[0, 0, 0, 0] = -1e-18
    result = ts.deconvolve(h, noisy_weight, padding=2, solver="richardson_lucy", maxiter=5, tol=0)
    expected = ts.deconvolve(np.maximum(h, 0), np.maximum(noisy_weight, 0), padding=2, solver="richardson_lucy",
                             maxiter=5, tol=0)
    np.testing.assert_array_equal(result.x, expected.x)


def test_richardson_lucy_clip_sets_negative_data_to_zero(rng):
    weight = gaussian(5, 1.0)[None, None]
    h = ts.conv(rng.uniform(0, 0.1, (1, 12, 12)), weight, padding=2) + 0.05 * rng.standard_normal((1, 12, 12))
    assert h.min() < -0.01   # dim, noisy counts after background subtraction
    with pytest.raises(ValueError, match="needs h real and >= 0.*clip=True"):
        ts.deconvolve(h, weight, padding=2, solver="richardson_lucy")
    clipped = ts.deconvolve(h, weight, padding=2, solver="richardson_lucy", maxiter=5, tol=0, clip=True)
    expected = ts.deconvolve(np.maximum(h, 0), weight, padding=2, solver="richardson_lucy", maxiter=5, tol=0)
    np.testing.assert_array_equal(clipped.x, expected.x)
    assert clipped.x.min() >= 0


# ----------------------------------------------------------------- TV
def test_tv_equals_scikit_image_denoising(rng):
    """With ``C = I``, ``||g - f||^2 + damp^2 TV(g)`` is Chambolle's ROF problem with weight ``damp^2 / 2``."""
    f = np.zeros((16, 16))
    f[4:12, 4:12] = 1
    f += 0.1 * rng.standard_normal(f.shape)
    expected = skimage_restoration.denoise_tv_chambolle(f, weight=0.1, eps=1e-12, max_num_iter=20000)
    result = ts.deconvolve(f[None], np.ones((1, 1, 1, 1)), solver="pdhg", regularizer="tv",
                           damp=math.sqrt(0.2), tol=1e-6, maxiter=5000)
    assert result.converged
    np.testing.assert_allclose(result.x[0], expected, atol=1e-4)


def test_tv_deconvolution_minimises_its_objective(rng):
    weight = gaussian(5, 1.0, 1)[None, None]
    g = np.repeat(rng.uniform(0, 1, 6), 6)[None]
    h = ts.conv(g, weight, padding=2) + 0.02 * rng.standard_normal(g.shape)
    damp2 = 0.05
    result = ts.deconvolve(h, weight, padding=2, solver="pdhg", regularizer="tv", damp=math.sqrt(damp2),
                           tol=1e-9, maxiter=20000)
    C = ts.conv_matrix(weight, g.shape[1:], padding=2)

    def objective(x):
        return np.sum((C @ x - h.ravel()) ** 2) + damp2 * np.sum(np.abs(np.diff(x)))

    x = result.x.ravel()
    assert result.converged
    assert result.residuals[-1] ** 2 == pytest.approx(objective(x))
    for _ in range(20):
        assert objective(x + 1e-4 * rng.standard_normal(x.shape)) >= objective(x) - 1e-10
    tikhonov = ts.deconvolve(h, weight, padding=2, damp=math.sqrt(damp2), regularizer="laplacian").x
    assert relative_error(result.x, g) < relative_error(tikhonov, g)


# ------------------------------------------- strided model, not the transpose
@pytest.mark.parametrize(("padding_mode", "regularizer", "bound"),
                         [("circular", None, 0.02), ("zeros", "laplacian", 0.03)])
def test_strided_model_recovers_band_limited_signal(rng, padding_mode, regularizer, bound):
    n = 64
    t = np.arange(n) / n
    g = (np.sin(2 * np.pi * 2 * t) + 0.5 * np.cos(2 * np.pi * 5 * t + 0.3))[None]
    weight = gaussian(7, math.sqrt(2), 1)[None, None]
    kwargs = {"stride": 2, "padding": 3, "padding_mode": padding_mode}
    h = ts.conv(g, weight, **kwargs)
    assert h.shape == (1, 32)
    noisy = h + 1e-3 * rng.standard_normal(h.shape)
    result = ts.deconvolve(noisy, weight, n, damp=1e-2, regularizer=regularizer, **kwargs)
    assert result.converged and relative_error(result.x, g) < bound
    assert relative_error(ts.conv_transpose(h, weight, output_size=(n,), **kwargs), g) > 0.5


@pytest.mark.parametrize("padding_mode", ("zeros", "reflect"))
def test_deconvolve_is_not_conv_transpose(padding_mode):
    """The figures quoted in ``deconvolve``'s Notes: about 30 % error for C^T h, 1e-10 for the solve."""
    y, x = np.mgrid[0:32, 0:32] / 32
    g = (np.sin(2 * np.pi * x) * np.cos(3 * np.pi * y) + 0.5 * np.sin(5 * np.pi * (x + y)))[None]
    weight = gaussian(5, 1.0)[None, None]
    h = ts.conv(g, weight, padding=2, padding_mode=padding_mode)
    transposed = ts.conv_transpose(h, weight, padding=2, padding_mode=padding_mode)
    solved = ts.deconvolve(h, weight, padding=2, padding_mode=padding_mode, solver="direct").x
    assert 0.25 < relative_error(transposed, g) < 0.31
    assert relative_error(solved, g) < 1e-9


# --------------------------------------------------------- batches, options
def test_batch_shares_the_operator_and_matches_single_solves(rng):
    weight = dominant_kernel(rng, 2, 1, (3, 3))
    h = rng.standard_normal((3, 2, 5, 5))
    for solver in ("direct", "lsqr"):
        batch = ts.deconvolve(h, weight, padding=1, groups=2, solver=solver, damp=0.1)
        assert batch.iterations.shape == batch.converged.shape == (3,)
        assert len(batch.residuals) == 3
        for n in range(3):
            single = ts.deconvolve(h[n], weight, padding=1, groups=2, solver=solver, damp=0.1)
            np.testing.assert_allclose(batch.x[n], single.x, atol=1e-12)
            assert single.iterations == batch.iterations[n]


def test_x0_shared_by_the_batch_and_used(rng):
    weight = dominant_kernel(rng, 1, 1, (3,))
    g = rng.standard_normal((2, 1, 10))
    h = ts.conv(g, weight, padding=1)
    exact = ts.deconvolve(h, weight, padding=1, x0=g, tol=1e-10)
    assert exact.iterations.max() <= 1 and exact.converged.all()
    assert max(history[0] for history in exact.residuals) < 1e-12
    shared = ts.deconvolve(h, weight, padding=1, x0=g[0], solver="cg", tol=1e-10)
    assert shared.iterations[0] <= 1 < shared.iterations[1]
    np.testing.assert_allclose(shared.x, g, atol=1e-8)


def test_input_shape_default_is_conv_transposes_output_shape(rng):
    weight = rng.uniform(0, 1, (1, 1, 4))
    h = rng.uniform(0, 1, (1, 5))
    for padding in (1, "same", "valid", "full"):
        result = ts.deconvolve(h, weight, stride=2, padding=padding, damp=0.1)
        assert result.x.shape == ts.conv_transpose(h, weight, stride=2, padding=padding).shape
        assert ts.conv(result.x, weight, stride=2, padding=padding).shape == h.shape
    explicit = ts.deconvolve(h, weight, 11, stride=2, padding=1, damp=0.1)
    assert explicit.x.shape == (1, 11)


def test_callback_and_progress(rng, capsys):
    weight = dominant_kernel(rng, 1, 1, (3, 3))
    h = rng.standard_normal((2, 1, 5, 5))
    seen = []
    result = ts.deconvolve(h, weight, padding=1, callback=lambda k, x: seen.append((k, x.shape)), progress=True)
    assert seen == [(k, (1, 5, 5)) for count in result.iterations for k in range(1, count + 1)]
    err = capsys.readouterr().err
    assert "deconvolve[lsqr] sample 2/2" in err and "residual" in err and err.endswith("\n")


def test_progress_through_tqdm(rng, capsys):
    pytest.importorskip("tqdm")
    weight = dominant_kernel(rng, 1, 1, (3, 3))
    ts.deconvolve(rng.standard_normal((2, 1, 5, 5)), weight, padding=1, progress=True)
    err = capsys.readouterr().err
    assert "deconvolve[lsqr] sample 2/2" in err and "it/s" in err and "residual " in err


def test_progress_bar_draws_residual(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the plain bar, drawn when tqdm is not installed
    stream = io.StringIO()
    bar = monitor.Progress("cg", 1, 10, stream)
    bar.update(0, 5, 0.125, force=True)
    bar.close()
    assert stream.getvalue() == "\rdeconvolve[cg] sample 1/1 |##########..........| 5/10 residual 1.250e-01\n"


# ------------------------------------------------------------- ill-posed
@pytest.mark.parametrize("solver", ("lsqr", "lsmr", "cg", "pdhg", "richardson_lucy"))
def test_ill_posed_without_damping_returns_within_maxiter(rng, solver):
    weight = gaussian(19, 3.0, 1)[None, None]
    h = np.abs(ts.conv(rng.uniform(0, 1, (1, 64)), weight, padding=9) + 1e-3 * rng.standard_normal((1, 64)))
    advice = "tol=0 to run exactly maxiter" if solver == "richardson_lucy" else "damp > 0"
    with pytest.warns(ts.ConvergenceWarning, match=f"deconvolve\\(solver='{solver}'\\) reached maxiter=40.*{advice}"):
        result = ts.deconvolve(h, weight, padding=9, solver=solver, maxiter=40)
    assert result.iterations == 40 and not result.converged
    assert np.all(np.isfinite(result.x)) and len(result.residuals) == 41


@pytest.mark.parametrize("solver", ("lsqr", "lsmr", "cg", "pdhg", "richardson_lucy"))
def test_noise_std_stops_at_the_discrepancy_level(rng, solver):
    """Early stopping (Morozov): the first iterate whose data misfit is within ``noise_std * sqrt(m)``."""
    weight = gaussian(9, 2.0, 1)[None, None]
    noise_std = 0.01
    h = ts.conv(rng.uniform(0.5, 1, (1, 64)), weight, padding=4) + noise_std * rng.standard_normal((1, 64))
    result = ts.deconvolve(h, weight, padding=4, solver=solver, noise_std=noise_std, maxiter=500)
    level = noise_std * math.sqrt(64)
    assert result.converged and 0 < result.iterations < 500
    assert result.residuals[-1] <= level < result.residuals[-2]
    misfit = np.linalg.norm(ts.conv_matrix(weight, (64,), padding=4) @ result.x.ravel() - h.ravel())
    assert misfit == pytest.approx(result.residuals[-1], rel=1e-6)


def test_defaults_on_a_blurred_noisy_image_warn_within_the_bounded_maxiter(rng):
    """Issue 15's trap: ``damp=0`` on a blur with noise stops at the capped default maxiter and says
    which argument to change."""
    weight = gaussian(7, 1.5)[None, None]
    h = ts.conv(rng.uniform(0, 1, (1, 24, 24)), weight, padding="same") + 0.01 * rng.standard_normal((1, 24, 24))
    with pytest.warns(ts.ConvergenceWarning, match="damp > 0.*damp='auto'") as caught:
        result = ts.deconvolve(h, weight, padding="same")
    assert len(caught) == 1 and not result.converged
    assert result.iterations <= ts.solvers.convergence.default_maxiter("lsqr", 24 * 24) == 1000
    assert len(result.residuals) == result.iterations + 1


@pytest.mark.parametrize("solver", SOLVERS)
def test_nothing_runs_past_maxiter(rng, solver):
    weight = gaussian(5, 1.0, 1)[None, None]
    h = np.abs(ts.conv(rng.uniform(0, 1, (1, 30)), weight, padding=2) + 1e-3 * rng.standard_normal((1, 30)))
    seen = []
    result = ts.deconvolve(h, weight, padding=2, solver=solver, maxiter=3, tol=0, damp=0.0,
                           callback=lambda k, x: seen.append(k))
    assert result.iterations <= 3 and max(seen, default=0) <= 3 and len(result.residuals) == result.iterations + 1


def test_a_diverging_history_warns():
    with pytest.warns(ts.ConvergenceWarning, match="grew from 1.000e\\+00 to 3.000e\\+00.*lower maxiter"):
        ts.solvers.convergence.check("pdhg", 10, 0.0, [(None, 2, np.array([2.0, 1.0, 3.0]), True)])


@pytest.mark.parametrize("solver", ("lsqr", "lsmr"))
def test_lsqr_and_lsmr_stop_when_the_condition_estimate_exceeds_1e8(rng, solver):
    weight = gaussian(31, 5.0, 1)[None, None]   # on 40 samples: cond(C) = 1.3e11
    with pytest.warns(ts.ConvergenceWarning, match="condition number exceeded 1e8.*damp > 0"):
        result = ts.deconvolve(rng.standard_normal((1, 40)), weight, padding=15, solver=solver, maxiter=2000,
                               tol=1e-14)
    assert not result.converged and result.iterations < 1000


def test_direct_refuses_a_singular_matrix():
    with pytest.raises(np.linalg.LinAlgError, match="singular.*damp > 0"):
        ts.deconvolve(np.ones((1, 7)), np.array([[[1.0, -1.0]]]), solver="direct")


@pytest.mark.parametrize("solver", ("lsqr", "cg", "pdhg"))
def test_zero_weight_returns_x0_converged(solver):
    """``C = 0``: every ``g`` minimises ``||C g - h||``, so the solvers return ``x0`` (issue 14 item 5)."""
    h = np.array([[1.0, -2.0, 3.0]])
    result = ts.deconvolve(h, np.zeros((1, 1, 3)), padding=1, solver=solver, x0=np.full((1, 3), 0.5))
    assert result.converged and result.iterations == 0
    np.testing.assert_array_equal(result.x, np.full((1, 3), 0.5))
    assert result.residuals[0] == pytest.approx(np.linalg.norm(h))


@pytest.fixture
def memory_limit():
    previous = ts.get_max_bytes()
    yield ts.set_max_bytes
    ts.set_max_bytes(previous)


@pytest.mark.parametrize(("limit", "what"), [(2 ** 22, "C\\^H C \\+ damp\\^2 R\\^H R \\(4096 x 4096"),
                                             (2 ** 24, "LU factorisation")])
def test_direct_refuses_what_would_not_fit(memory_limit, limit, what):
    """64x64 with a 5x5 kernel: C takes 1.2 MiB, C^H C at most 8 MiB, its factors an estimated 30 MiB."""
    memory_limit(limit)
    with pytest.raises(ValueError, match=f"{what}.*would need an estimated"):
        ts.deconvolve(np.zeros((1, 64, 64)), gaussian(5, 1.0)[None, None], padding=2, solver="direct", damp=0.1)


# ---------------------------------------------------------------- errors
W2 = np.ones((1, 1, 3, 3)) / 9
H2 = np.ones((1, 4, 4))
BAD_INPUTS = [
    ({"damp": -0.1}, "damp must be >= 0 and finite, got -0.1"),
    ({"damp": math.nan}, "damp must be >= 0"),
    ({"damp": "0.1"}, "damp must be a real number"),
    ({"noise_std": 0.0}, "noise_std must be > 0 and finite"),
    ({"noise_std": math.inf}, "noise_std must be > 0 and finite"),
    ({"solver": "gmres"}, "solver must be one of .*'lsqr'.*got 'gmres'"),
    ({"regularizer": "l1"}, "regularizer must be one of .*'tv'.*got 'l1'"),
    ({"maxiter": 0}, "maxiter must be an int >= 1 or None, got 0"),
    ({"maxiter": 2.5}, "maxiter must be an int >= 1"),
    ({"tol": 1.0}, "tol must be in the range 0 <= tol < 1, got 1.0"),
    ({"tol": -1e-3}, "tol must be in the range"),
    ({"regularizer": "tv"}, "regularizer='tv' .* needs solver='pdhg'.*got solver='lsqr'"),
    ({"solver": "richardson_lucy", "damp": 0.1}, "richardson_lucy.*damp=0"),
    ({"solver": "richardson_lucy", "regularizer": "laplacian"}, "richardson_lucy.*regularizer=None"),
    ({"h": -H2, "solver": "richardson_lucy"}, "needs h real and >= 0"),
    ({"weight": -W2, "solver": "richardson_lucy"}, "needs weight real and >= 0"),
    ({"weight": 0 * W2, "solver": "richardson_lucy"}, "positive entry"),
    ({"x0": -np.ones((1, 6, 6)), "solver": "richardson_lucy"}, "needs x0 real and >= 0"),
    ({"h": -1e-3 * H2, "solver": "richardson_lucy"}, "needs h real and >= 0.*16 entries below.*clip=True"),
    ({"h": H2, "clip": True}, "clip=True .*richardson_lucy.* only, got solver='lsqr'"),
    ({"h": H2, "clip": 1, "solver": "richardson_lucy"}, "clip must be True or False"),
    ({"h": H2 + 0j, "solver": "richardson_lucy"}, "needs h real"),
    ({"h": np.ones((4, 4))}, "h must have 3 .* or 4 .* dimensions"),
    ({"h": np.ones((2, 4, 4))}, "h has 2 channels but the weight .* produces C_out = .* 1"),
    ({"input_shape": (7, 6)}, "input_shape=\\(7, 6\\) .* produces \\(5, 4\\)"),
    ({"input_shape": (2, 2)}, "kernel size 3"),
    ({"x0": np.ones((1, 5, 6))}, "x0 must have the shape of x, .*\\(1, 6, 6\\).*got \\(1, 5, 6\\)"),
    ({"x0": np.ones((1, 6, 6)) * 1j}, "x0 is complex"),
    ({"h": H2 * np.nan}, "h must be finite"),
    ({"stride": 0}, "stride must be >= 1"),
    ({"padding_mode": "mirror"}, "padding_mode must be one of"),
    ({"callback": 3}, "callback must be callable"),
    ({"progress": "yes"}, "progress must be True or False"),
]


@pytest.mark.parametrize(("change", "message"), BAD_INPUTS)
def test_bad_input_raises_before_any_work(monkeypatch, change, message):
    def no_work(*args, **kwargs):
        raise AssertionError("an operator was built before the input was validated")

    monkeypatch.setattr(problem, "ConvOperator", no_work)
    arguments = {"h": H2, "weight": W2, "padding": 0, **change}
    if "input_shape" not in arguments:
        arguments["input_shape"] = None
    with pytest.raises(ValueError, match=message):
        ts.deconvolve(arguments.pop("h"), arguments.pop("weight"), arguments.pop("input_shape"), **arguments)


def test_result_repr_is_short(rng):
    result = ts.deconvolve(np.ones((1, 6)), np.array([[[0.25, 0.5, 0.25]]]), padding=1)
    assert repr(result) == (f"DeconvolutionResult(solver='lsqr', x.shape=(1, 6), "
                            f"iterations={result.iterations}, converged=True)")
