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

from tconv_sparse.core import config
from tconv_sparse.core.index_maps import padding_matrix

__all__ = ["pad", "fold", "pad_bytes", "chunk_budget", "correlate", "correlate_chunks",
           "correlate_chunk_bytes", "correlate_row_bytes"]



def pad_bytes(entries: int, dtype, lengths: int = 0) -> int:
    """Peak bytes of :func:`pad` or :func:`fold` whose largest array (padded or not) has
    ``entries`` entries, besides their input: per axis a copy, the sparse product in float64
    (complex128) and its cast, plus the padding matrices of ``lengths`` padded positions."""
    dtype = np.dtype(dtype)
    return entries * (3 * dtype.itemsize + (16 if dtype.kind == "c" else 8)) + 64 * lengths


def _along_axis(array: np.ndarray, matrix, axis: int) -> np.ndarray:
    """Apply a sparse matrix to one axis of ``array``."""
    moved = np.moveaxis(array, axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    result = np.asarray(matrix @ flat, dtype=array.dtype)
    return np.moveaxis(result.reshape(matrix.shape[0], *moved.shape[1:]), 0, axis)


def _padding_matrices(geometry, axes):
    """``(axis, P)`` for the padded axes among ``axes`` (all when ``None``), built only for those."""
    for axis, (n, (lo, hi)) in enumerate(zip(geometry.input_shape, geometry.padding)):
        if (lo or hi) and (axes is None or axis in axes):
            yield axis, padding_matrix(n, lo, n + lo + hi, geometry.padding_mode)


def pad(x: np.ndarray, geometry, axes=None) -> np.ndarray:
    """Pad the spatial axes of ``(N, C, *input_shape)`` as the geometry's mode says.

    ``axes`` (spatial axis numbers) restricts the padding to those axes.
    """
    for axis, matrix in _padding_matrices(geometry, axes):
        x = _along_axis(x, matrix, axis + 2)
    return np.ascontiguousarray(x)


def fold(xpad: np.ndarray, geometry, axes=None) -> np.ndarray:
    """Adjoint of :func:`pad`: fold a padded-domain array back onto the input."""
    for axis, matrix in _padding_matrices(geometry, axes):
        xpad = _along_axis(xpad, matrix.T, axis + 2)
    return np.ascontiguousarray(xpad)


def chunk_budget(committed: int, chunk_bytes: int) -> int:
    """Bytes a method's chunk buffers may take: ``chunk_bytes``, or what the memory limit
    leaves beside ``committed`` bytes (output and fixed buffers) if that is less."""
    return max(1, min(chunk_bytes, config.get_max_bytes() - committed))


def _chunk_sizes(batch: int, rows: int, row_bytes: int, budget: int) -> tuple[int, int]:
    sample_bytes = row_bytes * rows
    if sample_bytes <= budget:
        return max(1, min(batch, budget // max(sample_bytes, 1))), rows
    return 1, max(1, min(rows, budget // max(row_bytes, 1)))


def correlate_chunks(batch: int, rows: int, row_bytes: int, budget: int):
    """``(start, stop, first_row, end_row)`` chunks of samples, or of the first output axis of
    one sample, whose buffers (``row_bytes`` per output row of a sample) fit ``budget``
    where one row does."""
    samples, size = _chunk_sizes(batch, rows, row_bytes, budget)
    for start in range(0, batch, samples):
        for first in range(0, rows, size):
            yield start, min(start + samples, batch), first, min(first + size, rows)


def correlate_chunk_bytes(batch: int, rows: int, row_bytes: int, budget: int) -> int:
    """Bytes of the largest chunk of :func:`correlate_chunks`."""
    samples, size = _chunk_sizes(batch, rows, row_bytes, budget)
    return samples * size * row_bytes


def correlate_row_bytes(in_channels, out_channels, taps, out_shape, itemsize) -> int:
    """Bytes of :func:`correlate`'s column block and product per output row of one sample."""
    return (in_channels * taps + out_channels) * math.prod(out_shape[1:]) * itemsize


def correlate(xpad: np.ndarray, weight: np.ndarray, stride, dilation, groups, out_shape,
              budget: int) -> np.ndarray:
    """Valid cross-correlation of ``xpad`` ``(N, C_in, *L)`` with ``weight`` ``(C_out, C_in/G, *k)``.

    Produces ``(N, C_out, *out_shape)``; samples (or rows of the first output
    axis of one sample) are processed in chunks so that the im2col buffer and
    its product stay under ``budget`` bytes.
    """
    ndim = len(out_shape)
    batch, in_channels = xpad.shape[:2]
    out_channels, cin_g, *kernel = weight.shape
    taps = math.prod(kernel)
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    spatial = tuple(range(2, 2 + ndim))
    windows = sliding_window_view(xpad, k_eff, axis=spatial)
    windows = windows[(slice(None), slice(None))
                      + tuple(slice(0, o * s, s) for o, s in zip(out_shape, stride))
                      + tuple(slice(None, None, d) for d in dilation)]
    # (G, C_out/G, C_in/G * taps): one GEMM per group, written in the output's layout
    w = weight.reshape(groups, out_channels // groups, cin_g * taps)
    out = np.empty((batch, out_channels, *out_shape), dtype=xpad.dtype)
    row_bytes = correlate_row_bytes(in_channels, out_channels, taps, out_shape, xpad.itemsize)
    order = (0, 1, 2, *range(3 + ndim, 3 + 2 * ndim), *range(3, 3 + ndim))
    for start, stop, first, end in correlate_chunks(batch, out_shape[0], row_bytes, budget):
        n, block_shape = stop - start, (end - first, *out_shape[1:])
        # (n, G, C_in/G, *out, *k) -> (n, G, C_in/G, *k, *out) -> (n, G, C_in/G * taps, positions)
        block = windows[start:stop, :, first:end].reshape(n, groups, cin_g, *block_shape, *kernel)
        cols = np.ascontiguousarray(block.transpose(order)).reshape(n, groups, cin_g * taps, -1)
        product = np.matmul(w, cols)
        del cols  # before the next chunk's columns exist
        out[start:stop, :, first:end] = product.reshape(n, out_channels, *block_shape)
        del product
    return out
