"""
Convolution arithmetic, frame by frame
======================================

The cases of Dumoulin & Visin's *A guide to convolution arithmetic for deep
learning* (and of its animations, `vdumoulin/conv_arithmetic
<https://github.com/vdumoulin/conv_arithmetic>`_), drawn by
:func:`tconv_sparse.analysis.plotting.plot_conv_arithmetic` from the library's own
geometry.

Each figure serves both directions. Read as a **convolution**, the dashed
green window is the input, the cells around it are its padding, and frame
``j`` outlines in red the window that output ``j`` reads. Read as the
**transposed convolution** of that convolution, frame ``j`` is where input
``j`` times the kernel lands, the shading counts the products accumulated so
far, and the dashed window is the part of the canvas that is kept. The top
row shows the transposed convolution's input, the kernel, and the final
counts. At most four frames are drawn per case.
"""

import tconv_sparse as ts
from tconv_sparse.analysis.plotting import plot_conv_arithmetic


def draw(input_size, kernel, **params):
    """Print both directions' sizes for a square case and draw its frames."""
    out = ts.conv_output_shape((input_size,) * 2, (kernel,) * 2, **params)
    back = ts.conv_transpose_output_shape(out, (kernel,) * 2, output_size=(input_size,) * 2, **params)
    print(f"convolution {input_size}x{input_size} -> {out[0]}x{out[1]};  "
          f"transposed {out[0]}x{out[1]} -> {back[0]}x{back[1]}")
    plot_conv_arithmetic((kernel,) * 2, out, output_size=(input_size,) * 2, max_frames=4, **params)


# %%
# No padding, unit strides
# ------------------------
# Relationship 1: ``o = (i - k) + 1``. Its transpose is a *full*
# convolution of the 2x2 input (relationship 8).
draw(4, 3)

# %%
# Arbitrary padding, unit strides
# -------------------------------
# Relationship 2: ``o = (i - k) + 2p + 1``; here ``5 - 4 + 4 + 1 = 6``.
draw(5, 4, padding=2)

# %%
# Half padding
# ------------
# Relationship 3: ``p = floor(k/2)`` keeps the size (``padding="same"``).
draw(5, 3, padding=1)

# %%
# Full padding
# ------------
# Relationship 4: ``p = k - 1`` gives every partial overlap
# (``padding="full"``); its transpose has no padding (relationship 11).
draw(5, 3, padding=2)

# %%
# No padding, strides
# -------------------
# Relationship 5: ``o = floor((i - k)/s) + 1``. The transposed convolution
# spreads its inputs ``s`` cells apart (relationship 12).
draw(5, 3, stride=2)

# %%
# Padding and strides
# -------------------
# Relationship 6: ``o = floor((i + 2p - k)/s) + 1``.
draw(5, 3, stride=2, padding=1)

# %%
# Padding and strides, odd
# ------------------------
# A 6x6 input gives the same 3x3 as the 5x5 above: the floor discards one
# cell. The transposed convolution needs ``a = (i + 2p - k) mod s = 1`` more
# cell at the end (relationship 14, PyTorch's ``output_padding``) to return
# 6x6.
draw(6, 3, stride=2, padding=1)

# %%
# Dilation
# --------
# Relationship 15: the taps are ``d`` cells apart, so the kernel covers
# ``k + (k - 1)(d - 1)`` cells.
draw(7, 3, dilation=2)
