"""The fractionally-strided textbook method (Dumoulin & Visin, section 4).

Insert ``stride - 1`` zeros between the inputs, pad by ``k_eff - 1 - lo`` and
``k_eff - 1 - hi`` (cropping where that is negative), and cross-correlate with
the spatially flipped, channel-swapped kernel at stride 1. For padding modes
other than zeros the result is computed on the whole padded domain and folded
back (the transpose of the padding).
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.backends._numpy_ops import correlate, fold

__all__ = ["conv_transpose", "flipped_kernel"]


def flipped_kernel(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(C_out, C_in/G, *k)`` -> ``(C_in, C_out/G, *k)`` with every spatial axis reversed."""
    out_channels, cin_g, *kernel = weight.shape
    swapped = weight.reshape(groups, out_channels // groups, cin_g, *kernel).swapaxes(1, 2)
    flipped = swapped[(Ellipsis, *[slice(None, None, -1)] * len(kernel))]
    return flipped.reshape(groups * cin_g, out_channels // groups, *kernel)


def _pad_or_crop(array: np.ndarray, widths) -> np.ndarray:
    crop = tuple(slice(max(-lo, 0), array.shape[axis + 2] - max(-hi, 0))
                 for axis, (lo, hi) in enumerate(widths))
    array = array[(slice(None), slice(None), *crop)]
    return np.pad(array, [(0, 0), (0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in widths])


def conv_transpose(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Zero insertion, padding, and a stride-1 correlation with the flipped kernel."""
    stride = geometry.stride
    dilated_shape = tuple((i - 1) * s + 1 for i, s in zip(geometry.output_shape, stride))
    z = np.zeros((y.shape[0], y.shape[1], *dilated_shape), dtype=y.dtype)
    z[(slice(None), slice(None), *[slice(None, None, s) for s in stride])] = y
    widths = []
    for k_eff, (lo, hi), padded, i, s in zip(geometry.effective_kernel_shape, geometry.padding,
                                             geometry.padded_shape, geometry.output_shape, stride):
        extra = padded - ((i - 1) * s + k_eff)  # padded inputs no output reaches
        widths.append((k_eff - 1 - lo, k_eff - 1 - hi + extra) if geometry.padding_mode == "zeros"
                      else (k_eff - 1, k_eff - 1 + extra))
    result = correlate(_pad_or_crop(z, widths), flipped_kernel(weight, geometry.groups),
                       (1,) * geometry.ndim, geometry.dilation, geometry.groups,
                       geometry.input_shape if geometry.padding_mode == "zeros" else geometry.padded_shape)
    return result if geometry.padding_mode == "zeros" else fold(result, geometry)
