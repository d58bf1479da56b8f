"""
The matrix C: spy plots
=======================

:func:`tconv_sparse.conv_matrix` returns a convolution as a
``scipy.sparse.csr_array``: one row per output value, one column per input
value, flattened in C order over ``(channels, *spatial)``. Its pattern shows
the geometry at a glance: a band per kernel row, steps of ``stride`` columns
per row, gaps of ``dilation``, blocks per channel pair, and wrapped or folded
entries for the padding modes. The transposed convolution is the same matrix
read by columns.
"""

import matplotlib.pyplot as plt
import numpy as np

import tconv_sparse as ts
from tconv_sparse.analysis.plotting import plot_symbolic_matrix

rng = np.random.default_rng(0)


def spy(axis, weight, input_shape, title, **params):
    """Spy plot of ``conv_matrix(weight, input_shape, **params)``, with its shape and nonzeros."""
    C = ts.conv_matrix(weight, input_shape, **params)
    axis.spy(C, markersize=1.5, color="tab:blue")
    axis.set_title(f"{title}\n{C.shape[0]}x{C.shape[1]}, {C.nnz} nonzeros", fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])
    print(f"{title:34s} C {C.shape[0]:3d} x {C.shape[1]:3d}, nnz {C.nnz:4d}")


# %%
# Named entries
# -------------
# For small geometries :func:`~tconv_sparse.symbolic_conv_transpose` writes
# ``C`` with the kernel's tap names; here a 2x2 kernel on a 3x3 input (the
# transposed convolution maps 2x2 to 3x3). Each row is one sliding window,
# each colour one tap.
plot_symbolic_matrix(ts.symbolic_conv_transpose((2, 2), (2, 2)))

# %%
# Stride, padding, dilation
# -------------------------
# A single-channel 3x3 kernel on an 8x8 input: nine diagonals (one per tap)
# with stride 1, rows skipping ahead with stride 2, taps spread apart with
# dilation 2, and zero padding removing the taps that fall outside.
w = rng.standard_normal((1, 1, 3, 3))
figure, axes = plt.subplots(1, 4, figsize=(14, 4.2), layout="constrained")
spy(axes[0], w, (8, 8), "stride 1, no padding")
spy(axes[1], w, (8, 8), "stride 1, padding 1", padding=1)
spy(axes[2], w, (8, 8), "stride 2, padding 1", stride=2, padding=1)
spy(axes[3], w, (8, 8), "dilation 2, padding 2", dilation=2, padding=2)

# %%
# Channels and groups
# -------------------
# With channels ``C`` is a grid of blocks, one per (output channel, input
# channel) pair; ``groups`` keeps only the blocks on the block diagonal.
figure, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained")
spy(axes[0], rng.standard_normal((4, 4, 3, 3)), (6, 6), "4 -> 4 channels", padding=1)
spy(axes[1], rng.standard_normal((4, 1, 3, 3)), (6, 6), "4 -> 4 channels, groups 4", padding=1, groups=4)

# %%
# Padding modes
# -------------
# Padded cells are copies of inputs. Circular padding wraps the taps of the
# border rows around to the far side; reflect and replicate padding fold
# them back onto the inputs they copy, so some entries of ``C`` are sums of
# taps (the pattern has the same shape as with zeros, but the border rows
# hold more taps).
figure, axes = plt.subplots(1, 4, figsize=(14, 4.2), layout="constrained")
for axis, mode in zip(axes, ("zeros", "circular", "reflect", "replicate")):
    spy(axis, w, (6, 6), f'padding 1, "{mode}"', padding=1, padding_mode=mode)

# %%
# The transposed convolution reads ``C`` by columns: with stride 2, each
# input of the transposed convolution (a row of ``C``) scatters its kernel
# into the output pixels of its nonzero columns.
print(ts.symbolic_conv_transpose(3, 4, stride=2, padding=1, output_padding=1))
