"""
Deconvolution is not transposed convolution
===========================================

A convolution with a known kernel is a sparse matrix ``C``; blurring an image
``g`` gives ``h = C g + noise``. The transposed convolution
(:func:`tconv_sparse.conv_transpose`) computes ``C^T h = C^T C g + ...``: it
blurs the image a second time instead of undoing the first blur.
:func:`tconv_sparse.deconvolve` solves the inverse problem with ``C`` and
``C^T``. This example blurs scikit-image's ``camera`` image (shipped with
scikit-image, so nothing is downloaded) with a Gaussian point-spread
function, then with a strided blur that also halves the resolution, adds
noise, and compares ``conv_transpose``, ``deconvolve`` with every solver and
regulariser, and scikit-image's ``richardson_lucy`` and ``wiener``, by PSNR
and time.

Run it as ``python examples/plot_deconvolution.py [OUTPUT_DIR]``; the figure
goes to ``OUTPUT_DIR`` (default: ``$TCONV_SPARSE_EXAMPLES_OUT`` or the
current directory).
"""

# %%
# The image, the blur and the noise
# ---------------------------------
# The camera image, downsampled to 128 x 128 so that the example runs in
# seconds; a 7 x 7 Gaussian PSF (sigma 1.5 pixels) with reflecting
# boundaries; Gaussian noise of standard deviation 0.01. ``conv`` and
# ``conv_transpose`` run with ``method="sparse"``, their definition ``C @ g``
# and ``C.T @ h`` (the other methods agree to rounding, and would first be
# compiled by Numba).
import os
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
from skimage import data, img_as_float
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import richardson_lucy, wiener
from skimage.transform import rescale, resize

import tconv_sparse as ts
from tconv_sparse.cli.demo_images import gaussian_psf

truth = rescale(img_as_float(data.camera()), 0.25, anti_aliasing=True)
psf = gaussian_psf(7, 1.5)       # unit sum
weight = psf[None, None]          # (C_out, C_in, 7, 7): one channel in, one out
model = {"padding": 3, "padding_mode": "reflect"}   # output size = input size

rng = np.random.default_rng(0)
blurred = ts.conv(truth[None], weight, method="sparse", **model)
h = blurred + 0.01 * rng.standard_normal(blurred.shape)
nonnegative = np.clip(h, 0, None)  # Richardson-Lucy models photon counts

# The first call of a Numba kernel compiles it (then it is cached on disk):
# build one matrix here so that the timings below measure the solvers.
ts.deconvolve(h, weight, truth.shape, maxiter=1, tol=0, damp=0.1, regularizer="laplacian", **model)

rows = []      # (section, method, estimate, seconds, iterations)


def record(section, method, function):
    """Time ``function() -> (estimate, iterations)`` and keep the result."""
    start = time.perf_counter()
    estimate, iterations = function()
    rows.append((section, method, np.asarray(estimate).reshape(truth.shape), time.perf_counter() - start,
                 iterations))


def solve(data_, **options):
    def run():
        result = ts.deconvolve(data_, weight, truth.shape, **model, **options)
        return result.x, result.iterations
    return run


# %%
# Undoing the blur
# ----------------
# ``damp = 0`` leaves LSQR unregularised: a few iterations help, many amplify
# the noise (semi-convergence). ``damp > 0`` (Tikhonov) fixes the solution, so
# every linear solver returns the same image; the gradient penalty
# (``"laplacian"``) and total variation (``"tv"``) are better priors for a
# photograph. Richardson-Lucy is regularised by its iteration count.
blur = "7x7 Gaussian blur"
record(blur, "blurred data h (no processing)", lambda: (h, 0))
record(blur, "conv_transpose: C^T h", lambda: (ts.conv_transpose(h, weight, method="sparse", **model), 0))
record(blur, "lsqr, damp=0, 20 iterations", solve(h, maxiter=20, tol=0))
record(blur, "lsqr, damp=0, 200 iterations", solve(h, maxiter=200, tol=0))
for solver in ("lsqr", "lsmr", "cg", "direct"):
    record(blur, f"{solver}, damp=0.1", solve(h, solver=solver, damp=0.1))
record(blur, "lsqr, laplacian, damp=0.1", solve(h, damp=0.1, regularizer="laplacian"))
record(blur, "pdhg, tv, damp=0.07", solve(h, solver="pdhg", damp=0.07, regularizer="tv", tol=1e-4))
record(blur, "richardson_lucy, 30 iterations", solve(nonnegative, solver="richardson_lucy", maxiter=30, tol=0))
record(blur, "skimage richardson_lucy, 30 iterations",
       lambda: (richardson_lucy(nonnegative[0], psf, num_iter=30, clip=False), 30))
record(blur, "skimage wiener, balance=0.01", lambda: (wiener(h[0], psf, balance=0.01, clip=False), 0))

# %%
# Super-resolution: a strided blur
# --------------------------------
# With ``stride=2`` the same PSF also downsamples: ``h`` is 64 x 64 and the
# unknown 128 x 128, so the problem is underdetermined and the regulariser
# picks the solution. ``4 C^T h`` (scaled to keep the brightness) is the
# transposed convolution as an upsampler; bicubic interpolation is the usual
# baseline.
model = {"stride": 2, "padding": 3, "padding_mode": "reflect"}
blurred = ts.conv(truth[None], weight, method="sparse", **model)
h_small = blurred + 0.01 * rng.standard_normal(blurred.shape)
strided = "stride-2 blur (64x64 -> 128x128)"
record(strided, "bicubic upsampling of h", lambda: (resize(h_small[0], truth.shape, order=3), 0))
record(strided, "conv_transpose: 4 C^T h",
       lambda: (4 * ts.conv_transpose(h_small, weight, output_size=truth.shape, method="sparse",
                                     **model), 0))
record(strided, "lsqr, damp=0.1", solve(h_small, damp=0.1))
record(strided, "lsqr, laplacian, damp=0.05", solve(h_small, damp=0.05, regularizer="laplacian"))
record(strided, "pdhg, tv, damp=0.05", solve(h_small, solver="pdhg", damp=0.05, regularizer="tv", tol=1e-4))
record(strided, "richardson_lucy, 30 iterations",
       solve(np.clip(h_small, 0, None), solver="richardson_lucy", maxiter=30, tol=0))

# %%
# The table
# ---------
# PSNR against the true image (values clipped to [0, 1]) on the whole image
# and on the interior (10 pixels cropped on every side), wall time, and
# iterations (for ``"direct"``: solves with the factorisation). The
# scikit-image methods assume other boundaries than the data's reflection
# (``richardson_lucy``: zeros outside the image, ``wiener``: periodic), so
# their errors concentrate at the border; ``deconvolve`` uses the exact model.


def psnr(estimate, crop=0):
    inside = (slice(crop, truth.shape[0] - crop), slice(crop, truth.shape[1] - crop))
    return peak_signal_noise_ratio(truth[inside], np.clip(estimate, 0, 1)[inside], data_range=1.0)


header = f"{'problem':34s} {'method':40s} {'PSNR dB':>8s} {'interior':>8s} {'time s':>7s} {'iters':>6s}"
print(header)
print("-" * len(header))
for section, method, estimate, seconds, iterations in rows:
    print(f"{section:34s} {method:40s} {psnr(estimate):8.2f} {psnr(estimate, 10):8.2f} {seconds:7.2f} "
          f"{iterations:6d}")

# %%
# The figure
# ----------
results = {(section, method): (estimate, psnr(estimate)) for section, method, estimate, _, _ in rows}
shown = [(blur, "blurred data h (no processing)"), (blur, "conv_transpose: C^T h"),
         (blur, "lsqr, damp=0, 200 iterations"), (blur, "lsqr, laplacian, damp=0.1"),
         (blur, "pdhg, tv, damp=0.07"), (blur, "richardson_lucy, 30 iterations"),
         (blur, "skimage wiener, balance=0.01"), (strided, "bicubic upsampling of h"),
         (strided, "conv_transpose: 4 C^T h"), (strided, "lsqr, laplacian, damp=0.05"),
         (strided, "pdhg, tv, damp=0.05")]
panels = [("true image", truth, None)] + [
    (method if section == blur else f"x2: {method}", *results[section, method]) for section, method in shown]
figure, axes = plt.subplots(2, 6, figsize=(15, 5.6), constrained_layout=True)
for axis, (title, image, value) in zip(axes.flat, panels):
    axis.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
    axis.set_title(title if value is None else f"{title}\n{value:.1f} dB", fontsize=8)
for axis in axes.flat:
    axis.axis("off")
figure.suptitle("Deconvolution with C and C^T vs the transposed convolution C^T h")

output_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TCONV_SPARSE_EXAMPLES_OUT", ".")
os.makedirs(output_dir, exist_ok=True)
path = os.path.join(output_dir, "deconvolution.png")
figure.savefig(path, dpi=100)
print(f"figure saved to {path}")
plt.show()
