"""The convolution as an explicit sparse matrix ``C``, and its transpose built directly.

``conv_matrix`` writes the CSR arrays of ``C`` directly from the index maps of
:mod:`tconv_sparse.core.index_maps`: row pointers by vectorised counting, column
indices and values by one parallel Numba pass over the rows (each row is
written by exactly one thread, so nothing races). No dense intermediate, no
Python loop over pixels, no convolution of identity columns, no temporary
larger than one integer per row: the peak memory is the final matrix.

The CSR arrays of ``C.T`` come from the same pass run on the transposed axis
maps (:func:`~tconv_sparse.core.index_maps.transpose_map`) with the channel-swapped
kernel: the rows of ``C.T`` are the columns of ``C``, already sorted, so
``C.T @ y`` is a row-parallel product like ``C @ x``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from tconv_sparse.core import validation as v
from tconv_sparse.core.config import chunk_count, jit, run_chunks
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.index_maps import product_map, transpose_map

__all__ = ["conv_matrix", "matrix_bytes", "build_bytes", "build_matrix", "canonical_weight"]

_INT32_MAX = np.iinfo(np.int32).max


def canonical_weight(weight: np.ndarray, geometry: Geometry) -> np.ndarray:
    """View the weight as ``(C_out, C_in // groups, prod(k[:-1]), k[-1])``."""
    lead = math.prod(geometry.kernel_shape[:-1])
    return weight.reshape(geometry.out_channels, geometry.in_channels_per_group, lead,
                          geometry.kernel_shape[-1])


def _index_dtype(geometry: Geometry):
    fits = max(geometry.nnz, geometry.input_size, geometry.output_size) <= _INT32_MAX
    return np.dtype(np.int32 if fits else np.int64)


def build_bytes(geometry: Geometry, transpose: bool = False) -> int:
    """Bytes :func:`build_matrix` needs besides the matrix: the index maps it builds them from
    (twice for ``C.T``: the maps and their transposes)."""
    return geometry.index_map_bytes * (2 if transpose else 1)


def matrix_bytes(geometry: Geometry, dtype, transpose: bool = False) -> int:
    """Bytes of the CSR matrix ``C`` (or ``C.T``) of ``geometry``: data, indices, row pointers."""
    index_size = _index_dtype(geometry).itemsize
    rows = geometry.input_size if transpose else geometry.output_size
    return geometry.nnz * (np.dtype(dtype).itemsize + index_size) + (rows + 1) * index_size


@jit
def _fill_rows(w, groups, a_ptr, a_col, a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr, b_tap,
               b_inputs, channel_stride, most_pairs, most_taps, indptr, indices, data, chunk, chunks):
    """Row ``(c_out, o_a, o_b)``: for each input channel of its group, the lead pairs of
    ``o_a`` times the last-axis pairs of ``o_b`` (sorted columns), each value the sum of
    the taps of its pair.

    The row's pattern (column offsets and taps within one channel, at most
    ``most_pairs`` and ``most_taps`` of them) is built once; each channel then
    writes its block with a plain gather loop.
    """
    out_channels, cin_g, k_lead, k_last = w.shape
    kernels = w.reshape(out_channels, cin_g, k_lead * k_last)
    cout_g = out_channels // groups
    rows_a, rows_b = len(a_ptr) - 1, len(b_ptr) - 1
    rows = out_channels * rows_a * rows_b
    zero = w.dtype.type(0)
    columns = np.empty(most_pairs, dtype=np.int64)
    tap_ptr = np.empty(most_pairs + 1, dtype=np.int64)
    taps = np.empty(most_taps, dtype=np.int64)
    for row in range(chunk * rows // chunks, (chunk + 1) * rows // chunks):
        co = row // (rows_a * rows_b)
        oa = (row // rows_b) % rows_a
        ob = row % rows_b
        count, tap_count = 0, 0
        tap_ptr[0] = 0
        for ua in range(a_ptr[oa], a_ptr[oa + 1]):
            for ub in range(b_ptr[ob], b_ptr[ob + 1]):
                columns[count] = a_col[ua] * b_inputs + b_col[ub]
                for ja in range(a_tap_ptr[ua], a_tap_ptr[ua + 1]):
                    for jb in range(b_tap_ptr[ub], b_tap_ptr[ub + 1]):
                        taps[tap_count] = a_tap[ja] * k_last + b_tap[jb]
                        tap_count += 1
                count += 1
                tap_ptr[count] = tap_count
        pos = np.uint64(indptr[row])
        first_channel = (co // cout_g) * cin_g
        for c in range(cin_g):
            kernel = kernels[co, c]
            base = (first_channel + c) * channel_stride
            if tap_count == count:
                for j in range(np.uint64(count)):
                    indices[pos + j] = base + columns[j]
                    data[pos + j] = kernel[taps[j]]
            else:
                for j in range(np.uint64(count)):
                    value = zero
                    for m in range(tap_ptr[j], tap_ptr[j + 1]):
                        value += kernel[taps[m]]
                    indices[pos + j] = base + columns[j]
                    data[pos + j] = value
            pos += np.uint64(count)


def _row_extent(m) -> tuple[int, int]:
    """Most pairs and most taps in one row of an axis map."""
    return int(np.diff(m.row_ptr).max(initial=0)), int(np.diff(m.tap_ptr[m.row_ptr]).max(initial=0))


def _channel_swapped(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(C_out, C_in/G, *k)`` -> ``(C_in, C_out/G, *k)``: the kernel of ``C.T``'s rows."""
    out_channels, cin_g, *kernel = weight.shape
    swapped = weight.reshape(groups, out_channels // groups, cin_g, *kernel).swapaxes(1, 2)
    return swapped.reshape(groups * cin_g, out_channels // groups, *kernel)


def build_matrix(weight: np.ndarray, geometry: Geometry, dtype, max_bytes=None,
                 transpose: bool = False) -> sp.csr_array:
    """Build ``C`` (or, with ``transpose``, ``C.T`` directly) for a validated geometry.

    This is the work behind :func:`conv_matrix`; ``C.T`` is the CSR matrix of
    shape ``(C_in * prod(input_shape), C_out * prod(output_shape))``, equal to
    ``conv_matrix(...).T`` in canonical CSR form.
    """
    dtype = np.dtype(dtype)
    shape = geometry.matrix_shape[::-1] if transpose else geometry.matrix_shape
    v.check_bytes(f"the sparse matrix of shape {shape} with {geometry.nnz} nonzeros",
                  matrix_bytes(geometry, dtype, transpose) + build_bytes(geometry, transpose), max_bytes)
    index_dtype = _index_dtype(geometry)
    if transpose:
        maps = [transpose_map(m) for m in geometry.axis_maps]
        lead, last = product_map(maps[:-1]), maps[-1]
        weight = _channel_swapped(weight, geometry.groups)
        channels, spatial = geometry.in_channels, geometry.output_shape
    else:
        lead, last = geometry.canonical_maps
        channels, spatial = geometry.out_channels, geometry.input_shape
    w = np.ascontiguousarray(weight, dtype=dtype).reshape(channels, weight.shape[1], lead.kernel_size,
                                                          last.kernel_size)
    row_counts = w.shape[1] * np.multiply.outer(np.diff(lead.row_ptr), np.diff(last.row_ptr)).ravel()
    indptr = np.empty(shape[0] + 1, dtype=index_dtype)
    indptr[0] = 0
    np.cumsum(np.tile(row_counts, channels), out=indptr[1:])
    indices = np.empty(geometry.nnz, dtype=index_dtype)
    data = np.empty(geometry.nnz, dtype=dtype)
    run_chunks(_fill_rows, chunk_count(shape[0]), w, geometry.groups, lead.row_ptr, lead.col, lead.tap_ptr,
               lead.tap, last.row_ptr, last.col, last.tap_ptr, last.tap, last.input_size, math.prod(spatial),
               *np.multiply(_row_extent(lead), _row_extent(last)).tolist(), indptr, indices, data)
    matrix = sp.csr_array((data, indices, indptr), shape=shape, copy=False)
    matrix.has_sorted_indices = True
    matrix.has_canonical_format = True
    return matrix


def conv_matrix(weight, input_shape, *, stride=1, padding=0, dilation=1, groups=1,
                padding_mode="zeros", dtype=None, max_bytes=None) -> sp.csr_array:
    """The convolution as a sparse matrix ``C`` (CSR).

    For one sample ``x`` of shape ``(C_in, *input_shape)``,
    ``conv(x, weight, ...).ravel() == conv_matrix(weight, input_shape, ...) @ x.ravel()``,
    and ``conv_transpose(y, weight, ...)`` is ``C.T @ y.ravel()``.

    Parameters
    ----------
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
        Forward-convolution weight (PyTorch layout).
    input_shape : int or tuple of int
        Spatial shape of the forward convolution's input (no channel axis).
    stride, padding, dilation, groups, padding_mode
        As in :func:`tconv_sparse.conv`. Padding modes other than ``"zeros"``
        fold duplicated inputs into one entry (their taps are summed).
    dtype : dtype, optional
        Value type; default ``weight.dtype`` (integers promoted to float64).
    max_bytes : int or float, optional
        Refuse matrices larger than this many bytes, a number >= 1 (default:
        the library limit, half the physical memory; see
        :func:`tconv_sparse.set_max_bytes`).

    Returns
    -------
    scipy.sparse.csr_array
        Shape ``(C_out * prod(out_spatial), C_in * prod(input_shape))``, sorted
        indices, no duplicates, int32 indices whenever they fit.

    Examples
    --------
    The seed's 1-D example: kernel ``[x, y, z] = [1, 2, 3]``, stride 2, input of 5.

    >>> import numpy as np, tconv_sparse as ts
    >>> C = ts.conv_matrix(np.array([[[1., 2., 3.]]]), (5,), stride=2)
    >>> C.toarray()
    array([[1., 2., 3., 0., 0.],
           [0., 0., 1., 2., 3.]])
    >>> (C.T @ np.array([10., 100.])).tolist()   # [a x, a y, a z + b x, b y, b z]
    [10.0, 20.0, 130.0, 200.0, 300.0]
    """
    weight = v.as_weight(weight)
    dtype = v.parse_dtype(dtype, weight)
    max_bytes = None if max_bytes is None else v.parse_max_bytes(max_bytes)
    geometry = Geometry.forward(weight.shape, input_shape, stride=stride, padding=padding,
                                dilation=dilation, groups=groups, padding_mode=padding_mode)
    return build_matrix(weight, geometry, dtype, max_bytes)
