"""
CS231n's 4x4 and Keras' 5x5
===========================

A 2x2 input, a 3x3 kernel, stride 2: CS231n's lecture gets a 4x4 output
(padding 1), Keras' ``Conv2DTranspose`` gets 5x5 (``padding="valid"``), and
the scatter picture draws a 5x5 canvas. All of them are ``C.T`` of a
convolution with this kernel and stride; they differ in which window of the
canvas they keep. This example computes each one, draws the windows on the
canvas, and checks each against ``C.T @ y``.
"""

import numpy as np

import tconv_sparse as ts
from tconv_sparse.analysis.explain import explain_transposed_conv
from tconv_sparse.analysis.canvas_figures import plot_canvas_windows, plot_scatter_vs_zero_insertion
from tconv_sparse.analysis.plotting import plot_conv_arithmetic

y = np.array([[[1.0, 2.0], [3.0, 4.0]]])       # (C, H, W): the 2x2 input
w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)   # (C_in, C_out, 3, 3): the kernel 1..9

# %%
# Four conventions, four outputs
# ------------------------------
# PyTorch's numeric padding crops the canvas (``padding=1``: 3x3), and
# ``output_padding=1`` keeps one more row and column at the end (CS231n's
# 4x4). Keras' ``"valid"`` keeps the whole canvas (5x5); ``"same"`` keeps
# ``i * stride = 4`` cells from the start, a different 4x4. Each result is
# checked against the matrix of the forward convolution whose input has the
# output's size.
conventions = {
    "padding=1 (PyTorch)": {"padding": 1},
    "padding=1, output_padding=1 (CS231n)": {"padding": 1, "output_padding": 1},
    'padding="valid" (Keras)': {"padding": "valid"},
    'padding="same" (Keras)': {"padding": "same"},
}
for label, params in conventions.items():
    x = ts.conv_transpose(y, w, stride=2, **params)
    geometry = ts.Geometry.transposed(w.shape, y.shape[1:], stride=2, **params)
    C = ts.conv_matrix(w, geometry.input_shape, stride=2, padding=geometry.padding)
    assert np.allclose(x.ravel(), C.T @ y.ravel())
    start = geometry.padding[0][0]             # the window starts lo cells into the canvas
    print(f"{label}: {x.shape[-2]}x{x.shape[-1]}, canvas[{start}:{start + x.shape[-1]}] per axis, "
          f"= C.T @ y")
    print(x[0])

# %%
# The windows on the canvas
# -------------------------
# The canvas is the uncropped result, ``(i - 1) * stride + k = 5`` cells per
# axis: every input times the kernel, added in at ``input * stride``.
plot_canvas_windows(y[0], w[0, 0], conventions, stride=2)

# %%
# Scatter the kernel, or insert zeros and convolve
# ------------------------------------------------
# The canvas is built either way: each input times the kernel, added in at
# ``input * stride``, or the input with ``stride - 1`` zeros between its
# values, padded by ``k - 1``, under the flipped kernel sliding with stride 1.
plot_scatter_vs_zero_insertion(y[0], w[0, 0], stride=2)

# %%
# Frame by frame
# --------------
# CS231n's case as conv-arithmetic frames: each input pixel's kernel
# footprint (red) on the canvas, and the kept 4x4 window (dashed).
plot_conv_arithmetic((3, 3), (2, 2), stride=2, padding=1, output_padding=1)

# %%
# Keras ``"valid"`` keeps it all:
plot_conv_arithmetic((3, 3), (2, 2), stride=2, padding="valid")

# %%
# Every question at once
# ----------------------
# ``tconv-sparse explain`` answers the shape questions of one case in text:
# the size formulas filled in, the equivalent PyTorch / Keras / JAX calls, the
# symbolic output and the overlap map.
print(explain_transposed_conv((3, 3), (2, 2), stride=2, padding=1, output_padding=1))
