"""The convolution as an explicit sparse matrix ``C``.

``conv_matrix`` writes the CSR arrays of ``C`` directly from the index maps of
:mod:`tconv_sparse.index_maps`: row pointers by vectorised counting, column
indices and values by one parallel Numba pass over the rows (each row is
written by exactly one thread, so nothing races). No dense intermediate, no
Python loop over pixels, no convolution of identity columns.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from numba import prange

from . import _validation as v
from ._config import jit_parallel
from .geometry import Geometry

__all__ = ["conv_matrix", "matrix_bytes", "build_matrix", "canonical_weight"]

_INT32_MAX = np.iinfo(np.int32).max


def canonical_weight(weight: np.ndarray, geometry: Geometry) -> np.ndarray:
    """View the weight as ``(C_out, C_in // groups, prod(k[:-1]), k[-1])``."""
    lead = math.prod(geometry.kernel_shape[:-1])
    return weight.reshape(geometry.out_channels, geometry.in_channels_per_group, lead,
                          geometry.kernel_shape[-1])


def _index_dtype(geometry: Geometry):
    fits = max(geometry.nnz, geometry.input_size, geometry.output_size) <= _INT32_MAX
    return np.dtype(np.int32 if fits else np.int64)


def matrix_bytes(geometry: Geometry, dtype) -> int:
    """Bytes of the CSR matrix of ``geometry`` (data, indices and row pointers)."""
    index_size = _index_dtype(geometry).itemsize
    return geometry.nnz * (np.dtype(dtype).itemsize + index_size) + (geometry.output_size + 1) * index_size


@jit_parallel
def _fill_rows(w, groups, a_ptr, a_col, a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr, b_tap,
               b_inputs, channel_stride, indptr, indices, data):
    out_channels, cin_g = w.shape[0], w.shape[1]
    cout_g = out_channels // groups
    rows_a = len(a_ptr) - 1
    rows_b = len(b_ptr) - 1
    for task in prange(out_channels * rows_a):
        co = task // rows_a
        oa = task % rows_a
        first_channel = (co // cout_g) * cin_g
        for ob in range(rows_b):
            pos = indptr[task * rows_b + ob]
            for c in range(cin_g):
                base = (first_channel + c) * channel_stride
                for ua in range(a_ptr[oa], a_ptr[oa + 1]):
                    base_a = base + a_col[ua] * b_inputs
                    for ub in range(b_ptr[ob], b_ptr[ob + 1]):
                        indices[pos] = base_a + b_col[ub]
                        data[pos] = 0
                        for ja in range(a_tap_ptr[ua], a_tap_ptr[ua + 1]):
                            for jb in range(b_tap_ptr[ub], b_tap_ptr[ub + 1]):
                                data[pos] += w[co, c, a_tap[ja], b_tap[jb]]
                        pos += 1


def build_matrix(weight: np.ndarray, geometry: Geometry, dtype, max_bytes=None) -> sp.csr_array:
    """Build ``C`` for a validated geometry (the work behind :func:`conv_matrix`)."""
    dtype = np.dtype(dtype)
    v.check_bytes(f"the sparse matrix of shape {geometry.matrix_shape} with {geometry.nnz} nonzeros",
                  matrix_bytes(geometry, dtype), max_bytes)
    index_dtype = _index_dtype(geometry)
    lead, last = geometry.canonical_maps
    row_counts = geometry.in_channels_per_group * np.multiply.outer(
        np.diff(lead.row_ptr), np.diff(last.row_ptr)
    ).ravel()
    indptr = np.empty(geometry.output_size + 1, dtype=index_dtype)
    indptr[0] = 0
    np.cumsum(np.tile(row_counts, geometry.out_channels), out=indptr[1:])
    indices = np.empty(geometry.nnz, dtype=index_dtype)
    data = np.empty(geometry.nnz, dtype=dtype)
    w = np.ascontiguousarray(canonical_weight(weight, geometry), dtype=dtype)
    _fill_rows(w, geometry.groups, lead.row_ptr, lead.col, lead.tap_ptr, lead.tap,
               last.row_ptr, last.col, last.tap_ptr, last.tap, last.input_size,
               math.prod(geometry.input_shape), indptr, indices, data)
    matrix = sp.csr_array((data, indices, indptr), shape=geometry.matrix_shape, copy=False)
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
    max_bytes : int, optional
        Refuse matrices larger than this many bytes (default: the library
        limit, half the physical memory; see :func:`tconv_sparse.set_max_bytes`).

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
    geometry = Geometry.forward(weight.shape, input_shape, stride=stride, padding=padding,
                                dilation=dilation, groups=groups, padding_mode=padding_mode)
    return build_matrix(weight, geometry, dtype, max_bytes)
