"""NumPy building blocks shared by the ``im2col`` and ``zero_insert`` backends.

* :func:`pad` / :func:`fold`: padding as a matrix ``P`` per axis
  (``xpad = P x``) and its transpose (``x = P.T xpad``), so every padding mode
  and its adjoint come from the same index map.
* :func:`correlate`: the "valid" cross-correlation of an already padded array,
  as im2col (a strided window view, one copy) and one batched GEMM per group.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["pad", "fold", "correlate", "im2col_batch_chunk"]

_CHUNK_BYTES = 256 * 2**20


def _along_axis(array: np.ndarray, matrix, axis: int) -> np.ndarray:
    """Apply a sparse matrix to one axis of ``array``."""
    moved = np.moveaxis(array, axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    result = np.asarray(matrix @ flat, dtype=array.dtype)
    return np.moveaxis(result.reshape(matrix.shape[0], *moved.shape[1:]), 0, axis)


def pad(x: np.ndarray, geometry, axes=None) -> np.ndarray:
    """Pad the spatial axes of ``(N, C, *input_shape)`` as the geometry's mode says.

    ``axes`` (spatial axis numbers) restricts the padding to those axes.
    """
    for axis, (matrix, (lo, hi)) in enumerate(zip(geometry.padding_matrices, geometry.padding)):
        if (lo or hi) and (axes is None or axis in axes):
            x = _along_axis(x, matrix, axis + 2)
    return np.ascontiguousarray(x)


def fold(xpad: np.ndarray, geometry, axes=None) -> np.ndarray:
    """Adjoint of :func:`pad`: fold a padded-domain array back onto the input."""
    for axis, (matrix, (lo, hi)) in enumerate(zip(geometry.padding_matrices, geometry.padding)):
        if (lo or hi) and (axes is None or axis in axes):
            xpad = _along_axis(xpad, matrix.T, axis + 2)
    return np.ascontiguousarray(xpad)


def im2col_batch_chunk(per_sample_bytes: int) -> int:
    """Samples per chunk so that one im2col buffer stays under 256 MiB."""
    return max(1, _CHUNK_BYTES // max(per_sample_bytes, 1))


def correlate(xpad: np.ndarray, weight: np.ndarray, stride, dilation, groups, out_shape) -> np.ndarray:
    """Valid cross-correlation of ``xpad`` ``(N, C_in, *L)`` with ``weight`` ``(C_out, C_in/G, *k)``.

    Produces ``(N, C_out, *out_shape)``; batches are processed in chunks so the
    im2col buffer stays bounded.
    """
    ndim = len(out_shape)
    batch, in_channels = xpad.shape[:2]
    out_channels, cin_g, *kernel = weight.shape
    taps = math.prod(kernel)
    positions = math.prod(out_shape)
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    spatial = tuple(range(2, 2 + ndim))
    windows = sliding_window_view(xpad, k_eff, axis=spatial)
    windows = windows[(slice(None), slice(None))
                      + tuple(slice(0, o * s, s) for o, s in zip(out_shape, stride))
                      + tuple(slice(None, None, d) for d in dilation)]
    # (G, C_in/G * taps, C_out/G): one GEMM per group
    w = weight.reshape(groups, out_channels // groups, cin_g * taps).transpose(0, 2, 1)
    out = np.empty((batch, groups, positions, out_channels // groups), dtype=xpad.dtype)
    chunk = im2col_batch_chunk(positions * in_channels * taps * xpad.itemsize)
    for start in range(0, batch, chunk):
        block = windows[start:start + chunk]
        n = block.shape[0]
        # (n, G, C_in/G, *out, *k) -> (n, G, *out, C_in/G, *k) -> (n, G, positions, C_in/G * taps)
        block = block.reshape(n, groups, cin_g, *out_shape, *kernel)
        order = (0, 1, *range(3, 3 + ndim), 2, *range(3 + ndim, 3 + 2 * ndim))
        cols = np.ascontiguousarray(block.transpose(order)).reshape(n, groups, positions, cin_g * taps)
        np.matmul(cols, w, out=out[start:start + n])
    return out.transpose(0, 1, 3, 2).reshape(batch, out_channels, *out_shape)
