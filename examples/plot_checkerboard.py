"""
Overlap maps and checkerboard artefacts
=======================================

A transposed convolution with stride ``s`` adds each input times the kernel
into the output, ``s`` cells apart. When the kernel size is not a multiple of
the stride, neighbouring output pixels receive different numbers of products,
and an upsampling layer paints a checkerboard (Odena, Dumoulin & Olah,
*Deconvolution and Checkerboard Artifacts*, Distill 2016).
:func:`tconv_sparse.overlap_map` counts the products per pixel, and
:func:`tconv_sparse.overlap_summary` gives the periodic interior tile that
predicts the artefact from the geometry alone.
"""

import matplotlib.pyplot as plt
import numpy as np

import tconv_sparse as ts
from tconv_sparse.analysis.plotting import plot_overlap_map

# %%
# Counting products
# -----------------
# Kernel sizes 3, 4 and 5 with stride 2 upsample a 6x6 input; padding
# ``(k - 1) // 2`` crops the border. Kernels 3 and 5 leave an uneven
# interior tile; kernel 4, a multiple of the stride, covers it evenly.
kernels = (3, 4, 5)
figure, axes = plt.subplots(1, 3, figsize=(14, 5), layout="constrained")
for axis, k in zip(axes, kernels):
    params = {"stride": 2, "padding": (k - 1) // 2}
    summary = ts.overlap_summary((k, k), (6, 6), **params)
    plot_overlap_map(summary.counts, ax=axis,
                     title=f"kernel {k}x{k}, stride 2: tile max/min {summary.tile_ratio:g}")
    print(f"kernel {k}: interior tile {summary.tile.tolist()}, checkerboard: {summary.checkerboard}")

# %%
# Dilation can cause it too: with dilation 2 and stride 2 all taps of a
# 3-tap kernel land on even pixels, and odd pixels get nothing.
summary = ts.overlap_summary(3, 8, stride=2, dilation=2)
print(f"dilation 2, stride 2: tile {summary.tile.tolist()}, checkerboard: {summary.checkerboard}")

# %%
# The artefact on an image
# ------------------------
# Upsampling a smooth image by 2 with a flat (averaging) kernel: the output
# is the image blurred, multiplied by the overlap counts. Normalising by the
# map (the output of an all-ones image) removes the pattern exactly, which
# is what a layer trained for upsampling has to learn.
size = 24
rows, cols = np.mgrid[0:size, 0:size] / size
image = (0.5 + 0.5 * np.sin(3 * rows + 2 * cols))[None]          # (C, H, W)
figure, axes = plt.subplots(2, 3, figsize=(12, 8.2), layout="constrained")
for column, k in enumerate(kernels):
    params = {"stride": 2, "padding": (k - 1) // 2, "output_size": (2 * size, 2 * size)}
    flat = np.full((1, 1, k, k), 1.0 / k**2)
    upsampled = ts.conv_transpose(image, flat, **params)[0]
    counts = ts.overlap_map((k, k), (size, size), **params)
    axes[0, column].imshow(upsampled, cmap="gray")
    axes[0, column].set_title(f"conv_transpose, kernel {k}x{k}, stride 2")
    axes[1, column].imshow(upsampled / counts, cmap="gray")
    axes[1, column].set_title("divided by the overlap map")
for axis in axes.flat:
    axis.axis("off")

# %%
# The overlap map is the column count of ``C``
# --------------------------------------------
# Each output pixel is a column of the forward convolution's matrix; the
# number of products landing on it is the number of nonzeros in that column.
C = ts.conv_matrix(np.ones((1, 1, 3, 3)), (12, 12), stride=2, padding=1)
column_counts = np.diff(C.tocsc().indptr).reshape(12, 12)
assert np.array_equal(column_counts, ts.overlap_map((3, 3), (6, 6), stride=2, padding=1, output_padding=1))
print(column_counts)
