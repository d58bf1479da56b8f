"""The fractionally-strided textbook method (Dumoulin & Visin, section 4).

Insert ``stride - 1`` zeros between the inputs, pad by ``k_eff - 1 - lo`` and
``k_eff - 1 - hi`` (cropping where that is negative), and cross-correlate with
the spatially flipped, channel-swapped kernel at stride 1. For padding modes
other than zeros the result is computed on the whole padded domain and folded
back (the transpose of the padding).
"""

from __future__ import annotations

import math

import numpy as np

from tconv_sparse.core.config import WORK_CHUNK_BYTES
from tconv_sparse.backends._numpy_ops import (
    chunk_budget, correlate, correlate_chunk_bytes, correlate_row_bytes, fold, pad_bytes,
)

__all__ = ["conv_transpose", "flipped_kernel", "work_bytes"]


def flipped_kernel(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(C_out, C_in/G, *k)`` -> ``(C_in, C_out/G, *k)`` with every spatial axis reversed."""
    out_channels, cin_g, *kernel = weight.shape
    swapped = weight.reshape(groups, out_channels // groups, cin_g, *kernel).swapaxes(1, 2)
    flipped = swapped[(Ellipsis, *[slice(None, None, -1)] * len(kernel))]
    return flipped.reshape(groups * cin_g, out_channels // groups, *kernel)


def _placement(geometry):
    """Spatial shape of the zero-inserted, padded input, and per axis the slices that place
    the transposed input ``y`` in it (``y`` entry ``q`` at ``q * stride + offset``)."""
    zeros = geometry.padding_mode == "zeros"
    target = geometry.input_shape if zeros else geometry.padded_shape
    shape, placed, taken = [], [], []
    for k_eff, (lo, _), length, i, s in zip(geometry.effective_kernel_shape, geometry.padding,
                                             target, geometry.output_shape, geometry.stride):
        size, offset = length + k_eff - 1, k_eff - 1 - (lo if zeros else 0)
        first, end = max(0, -(offset // s)), min(i, (size - 1 - offset) // s + 1)
        end = max(end, first)
        shape.append(size)
        placed.append(slice(first * s + offset, (end - 1) * s + offset + 1 if end > first else 0, s))
        taken.append(slice(first, end))
    return tuple(target), tuple(shape), tuple(placed), tuple(taken)


#: a chunk's column buffer (rows of the output, or samples) is WORK_CHUNK_BYTES, unless the
#: output is smaller (then the output's size, at least this) or the memory limit leaves less:
#: the textbook method stays within a few times its output
_MIN_CHUNK_BYTES = 2**20


def _budget(output: int, fixed: int) -> int:
    return chunk_budget(output + fixed, min(WORK_CHUNK_BYTES, max(output, _MIN_CHUNK_BYTES)))


def work_bytes(geometry, batch: int, dtype) -> int:
    """Bytes :func:`conv_transpose` allocates besides its output: the padded zero-inserted input
    (and, for padding modes other than zeros, the result on the padded domain and its fold),
    and its largest correlation chunk."""
    dtype = np.dtype(dtype)
    fixed, target, row = _fixed_bytes(geometry, batch, dtype)
    output = batch * geometry.in_channels * math.prod(geometry.input_shape) * dtype.itemsize
    return fixed + correlate_chunk_bytes(batch, target[0], row, _budget(output, fixed))


def _fixed_bytes(geometry, batch, dtype):
    target, shape, _, _ = _placement(geometry)
    fixed = batch * geometry.out_channels * math.prod(shape) * dtype.itemsize
    if geometry.padding_mode != "zeros":
        domain = batch * geometry.in_channels * math.prod(target)
        fixed += domain * dtype.itemsize + pad_bytes(domain, dtype, sum(target))
    row = correlate_row_bytes(geometry.out_channels, geometry.in_channels,
                              math.prod(geometry.kernel_shape), target, dtype.itemsize)
    return fixed, target, row


def conv_transpose(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Zero insertion, padding, and a stride-1 correlation with the flipped kernel.

    Only the part of the zero-inserted, padded input that the outputs read is
    built (one allocation, ``output + k_eff - 1`` per axis), so a padding that
    crops the result costs nothing; the correlation works in chunks of about the
    output's size (at most :data:`~tconv_sparse.core.config.WORK_CHUNK_BYTES`, less if the
    memory limit leaves less).
    """
    target, shape, placed, taken = _placement(geometry)
    fixed, _, _ = _fixed_bytes(geometry, y.shape[0], y.dtype)
    output = y.shape[0] * geometry.in_channels * math.prod(geometry.input_shape) * y.itemsize
    padded = np.zeros((y.shape[0], y.shape[1], *shape), dtype=y.dtype)
    if all(t.stop > t.start for t in taken):
        padded[(slice(None), slice(None), *placed)] = y[(slice(None), slice(None), *taken)]
    result = correlate(padded, flipped_kernel(weight, geometry.groups), (1,) * geometry.ndim,
                       geometry.dilation, geometry.groups, target, _budget(output, fixed))
    del padded
    return result if geometry.padding_mode == "zeros" else fold(result, geometry)
