"""Predicted work buffers of every method: what the memory guard counts besides the output.

:func:`work_bytes` is the peak of everything a method allocates besides its
input and its output (the sparse matrix and its index maps, phase-split and
padded planes, column buffers, scratch of the parallel kernels, explicit padding
and its fold), in closed form from the plan of the geometry, without running
it. The methods that chunk their work (``im2col``, ``zero_insert``) size their
chunks from the same functions, so the estimate is what they do.
"""

from __future__ import annotations

import math

import numpy as np

from tconv_sparse.core.matrix import build_bytes, matrix_bytes
from tconv_sparse.backends import direct, im2col, zero_insert
from tconv_sparse.backends._numpy_ops import pad_bytes
from tconv_sparse.backends._polyphase import plane_plan, tiling

__all__ = ["work_bytes", "output_bytes"]

_INDEX = 8  # bytes of an int64 index


def output_bytes(geometry, batch: int, dtype, transposed: bool) -> int:
    """Bytes of the result of one call."""
    channels, shape = ((geometry.in_channels, geometry.input_shape) if transposed
                       else (geometry.out_channels, geometry.output_shape))
    return batch * channels * math.prod(shape) * np.dtype(dtype).itemsize


def _padding(geometry, plan, batch, channels, dtype) -> int:
    """The explicitly padded plane axes (padding modes other than zeros), or their fold."""
    if not plan.padded_axes:
        return 0
    sizes = [geometry.padded_shape[a] if a in plan.padded_axes else n
             for a, n in enumerate(geometry.input_shape)]
    entries = batch * channels * math.prod(sizes)
    return pad_bytes(entries, dtype, sum(geometry.padded_shape[a] for a in plan.padded_axes))


def _split_planes(geometry, plan, batch, dtype) -> int:
    rows, cols = plan.rows, plan.cols
    return (batch * geometry.in_channels * plan.lead.input_size * rows.stride * cols.stride
            * rows.split * plan.split_width * dtype.itemsize)


def _padded_planes(geometry, plan, batch, dtype) -> int:
    return (batch * geometry.out_channels * plan.lead.output_size * plan.pad_rows * plan.pad_width
            * dtype.itemsize)


def _lead(plan) -> int:
    """The fused index map of the axes outside the plane (kept with the cached plan)."""
    lead = plan.lead
    return sum(getattr(lead, name).nbytes for name in (
        "row_ptr", "col", "tap_ptr", "tap", "back_ptr", "back_out", "back_tap"))


def _phase_scratch(plan, tile, chunks, most_terms, dtype) -> int:
    """Per-chunk scratch of the phase kernels (``gather``, col2im)."""
    phases = plan.rows.stride * plan.cols.stride
    return chunks * (phases * tile * dtype.itemsize + phases * most_terms * (3 * _INDEX + dtype.itemsize)
                     + _INDEX * phases)


def _direct(geometry, batch, dtype) -> int:
    plan = plane_plan(geometry)
    rows, cols = plan.rows, plan.cols
    tile, chunks = tiling(batch * geometry.out_channels * plan.lead.output_size, rows.out_length,
                          plan.split_width)
    most_terms = geometry.in_channels_per_group * plan.most_lead_taps * rows.kernel * cols.kernel
    scratch = chunks * (tile * dtype.itemsize + most_terms * (3 * _INDEX + dtype.itemsize))
    return (_lead(plan) + _padding(geometry, plan, batch, geometry.in_channels, dtype)
            + _split_planes(geometry, plan, batch, dtype) + scratch)


def _im2col(geometry, batch, dtype, transposed) -> int:
    """Per chunk the source and target planes; the tap-major weight; the explicit padding
    (forward) or the output planes before the fold (transposed)."""
    plan = plane_plan(geometry)
    weights = im2col.weight_bytes(geometry, dtype.itemsize)
    if transposed:
        fixed = _planes_out(geometry, plan, batch, dtype)
        committed = (batch * geometry.in_channels * plan.lead.input_size * plan.rows.length
                     * plan.cols.length * dtype.itemsize)
    else:
        fixed = _padding(geometry, plan, batch, geometry.in_channels, dtype)
        committed = output_bytes(geometry, batch, dtype, False)
    samples, rows = im2col.chunk_sizes(geometry, transposed, batch, dtype.itemsize,
                                       im2col.chunk_budget(committed + weights))
    chunk = samples * im2col.layout(geometry, transposed).rows(rows) * im2col.row_bytes(
        geometry, transposed, dtype.itemsize)
    return _lead(plan) + fixed + weights + chunk


def _planes_out(geometry, plan, batch, dtype) -> int:
    """The transposed kernels' output planes, when they are not the output itself (folded)."""
    if not plan.padded_axes:
        return 0
    rows, cols = plan.rows, plan.cols
    entries = batch * geometry.in_channels * plan.lead.input_size * rows.length * cols.length
    return entries * dtype.itemsize + _padding(geometry, plan, batch, geometry.in_channels, dtype)


def _gather(geometry, batch, dtype) -> int:
    plan = plane_plan(geometry)
    rows, cols = plan.rows, plan.cols
    tile, chunks = tiling(batch * geometry.in_channels * plan.lead.input_size, rows.split, plan.pad_width)
    most_terms = (geometry.out_channels_per_group * plan.most_lead_entries * rows.most_phase_taps
                  * cols.most_phase_taps)
    padded = batch * geometry.out_channels * plan.lead.output_size * rows.out_length * plan.pad_width
    return (_lead(plan) + padded * dtype.itemsize + _planes_out(geometry, plan, batch, dtype)
            + _phase_scratch(plan, tile, chunks, most_terms, dtype))


def _sparse(geometry, batch, dtype, transposed) -> int:
    copies = 0
    if batch > 1:  # the samples as columns, and the product before it is transposed back
        copies = (output_bytes(geometry, batch, dtype, not transposed)
                  + output_bytes(geometry, batch, dtype, transposed))
    return matrix_bytes(geometry, dtype, transposed) + build_bytes(geometry, transposed) + copies


def _scatter(geometry, batch, dtype) -> int:
    output = output_bytes(geometry, batch, dtype, True)
    private = 0
    if batch * geometry.in_channels < direct.SCATTER_PARTS:
        private = direct.SCATTER_PARTS * output + output  # a buffer per slice, and their sum
    return geometry.index_map_bytes + private


def work_bytes(method: str, geometry, batch: int, dtype, transposed: bool) -> int:
    """Predicted peak bytes ``method`` allocates besides its input and output on this call.

    ``geometry`` is canonicalised first (:attr:`~tconv_sparse.core.geometry.Geometry.canonical`),
    as the methods run it.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.core.geometry import Geometry
    >>> from tconv_sparse.backends.memory import work_bytes
    >>> g = Geometry.forward((4, 2, 3, 3), (6, 6), stride=2**31)
    >>> work_bytes("direct", g, 1, np.float64, transposed=False) < 2**16
    True
    """
    geometry = geometry.canonical.geometry
    if geometry is None:  # C stores nothing: the result is zeros
        return 0
    dtype = np.dtype(dtype)
    if method == "sparse":
        return _sparse(geometry, batch, dtype, transposed)
    if method == "im2col":
        return _im2col(geometry, batch, dtype, transposed)
    if transposed:
        estimate = {"scatter": _scatter, "gather": _gather, "zero_insert": zero_insert.work_bytes}[method]
    else:
        estimate = {"direct": _direct}[method]
    return estimate(geometry, batch, dtype)
