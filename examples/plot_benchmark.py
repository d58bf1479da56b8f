"""
Benchmark: every method against PyTorch
=======================================

A small part of the benchmark grid of ``tconv-sparse bench``, run through
the same harness (:mod:`tconv_sparse.bench`) while this page is built: every
``method`` of :func:`~tconv_sparse.conv_transpose` and
:func:`~tconv_sparse.conv`, and PyTorch when it is installed, on the same
arrays. Each result is checked against ``C.T @ y`` / ``C @ x`` before it is
timed. The numbers are those of the machine that built the page, and they
are in float64 (the quick default of ``tconv-sparse bench`` is float32); run
``tconv-sparse bench`` for the whole quick grid and ``--full`` for all of it.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from tconv_sparse.bench import report, runners
from tconv_sparse.bench.cases import DIRECTIONS, find_cases

# %%
# Two cases: one image, and a batch of small images
# -------------------------------------------------
# ``1x1->1x512x512:k3s2``: one single-channel image, a transposed
# convolution from 256x256 to 512x512 with a 3x3 kernel and stride 2;
# ``8x16->16x32x32:k3s2``: 8 samples of 16 channels, from 16x16 to 32x32, as
# a decoder layer upsamples. The convolution with the same weight goes back
# down.
cases = find_cases(["image:1x1->1x512x512:k3s2", "batch:8x16->16x32x32:k3s2"])
plan = [(direction, case, "float64") for direction in DIRECTIONS for case in cases]
results = runners.run_benchmarks(plan, runners.QUICK_TIMING)

# %%
# The table
# ---------
# Median time per call; in parentheses the ratio to PyTorch (below 1 is
# faster); in bold the fastest tconv_sparse method of the row.
print("\n".join(report.format_machine(report.machine_info())))
print()
print(report.format_table(results))

# %%
# The plot
# --------
# The harness's own plot: time per call on a log scale, one marker per method.
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "bench.png"
    report.plot(path, results)
    image = plt.imread(path)
height, width = image.shape[:2]
figure = plt.figure(figsize=(width / 100, height / 100))
axis = figure.add_axes((0, 0, 1, 1))
axis.imshow(image)
axis.axis("off")
