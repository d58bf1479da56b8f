"""Numba kernels: direct convolution, and the scatter and gather transposes.

``direct`` and ``gather`` are the polyphase plane kernels of
:mod:`~tconv_sparse.backends._polyphase`: the leading spatial axes go through
index tables (every padding mode, every rank), the last two axes are planes
in which every tap is one contiguous shifted pass (four taps per pass), and
the parallel chunks run over tiles of the output planes, so both cores work
even on one sample with one channel. ``scatter`` is the literal formulation
on the two-level index maps of
:attr:`~tconv_sparse.core.geometry.Geometry.canonical_maps`.

Chunks of tasks run in parallel (:func:`~tconv_sparse.core.config.run_chunks`)
and never race. ``direct`` and ``gather`` give each task its own tile of one
output plane. ``scatter`` adds into outputs shared between iterations, so it
either gives each task a disjoint set of output planes or (fewer than
:data:`SCATTER_PARTS` planes) each slice of its input its own buffer, summed
afterwards in a fixed order. No split depends on the thread count.

Compile time is a budget (a first call compiles everything it needs): what is
the same for every task, the plane taps' offsets and row ranges, comes from
tables computed once per geometry in Python
(:attr:`~tconv_sparse.backends._polyphase.PlanePlan.forward_taps`,
:attr:`~tconv_sparse.backends._polyphase.PlanePlan.transpose_taps`), the
kernels take only C-contiguous arrays and ``int64`` scalars (one
specialization per dtype), and the bodies stay short.
"""

from __future__ import annotations

import math

import numpy as np

from tconv_sparse.core import scratch
from tconv_sparse.core.config import chunk_count, jit, run_chunks, task_range
from tconv_sparse.core.matrix import canonical_weight
from tconv_sparse.backends._numpy_ops import pad
from tconv_sparse.backends._polyphase import (
    add_terms, copy_columns, fold_planes, pad_planes, plane_plan, plane_view, split_planes, store_plane,
    tiling,
)

__all__ = ["conv", "conv_transpose_scatter", "conv_transpose_gather", "SCATTER_PARTS"]

#: ``scatter`` with fewer (sample, channel) output planes than this splits its input rows into
#: this many slices, each with its own output buffer (fixed, so results never depend on threads)
SCATTER_PARTS = 4


def _canonical(array: np.ndarray, spatial) -> np.ndarray:
    """View ``(N, C, *spatial)`` as ``(N, C, prod(spatial[:-1]), spatial[-1])``."""
    return array.reshape(array.shape[0], array.shape[1], math.prod(spatial[:-1]), spatial[-1])


def _forward_tables(geometry):
    lead, last = geometry.canonical_maps
    return (lead.row_ptr, lead.col, lead.tap_ptr, lead.tap,
            last.row_ptr, last.col, last.tap_ptr, last.tap)


def _flat_weight(weight: np.ndarray) -> np.ndarray:
    """The weight ``(C_a, C_b, *k)`` as ``(C_a, C_b, prod(k))`` (its taps in the order of the
    plane-tap tables: leading taps, then ``t_b * k_cols + t_c``)."""
    return weight.reshape(weight.shape[0], weight.shape[1], -1)


@jit
def _direct(xs, w, groups, a_ptr, a_col, a_tap_ptr, a_tap, tap_offset, tap_lo, tap_hi, most_terms, tile,
            out, chunk, chunks):
    """Each task sums, over one flat tile of one output plane, one shifted phase plane per
    (input channel, tap): the terms are collected (plane taps from the tables of
    :attr:`~tconv_sparse.backends._polyphase.PlanePlan.forward_taps`), then added four per pass."""
    batch, out_channels, lead, out_rows, out_cols = out.shape
    in_channels, lead_in, stride_b, stride_c, split_rows, width = xs.shape[1:]
    cin_g, plane_taps = w.shape[1], len(tap_offset)
    cout_g = out_channels // groups
    source = xs.reshape(xs.size)
    row_size = stride_b * stride_c * split_rows * width
    total = out_rows * width
    tiles = (total + tile - 1) // tile
    tasks = batch * out_channels * lead * tiles
    acc = np.empty(tile, dtype=out.dtype)
    shifts, scales = np.empty(most_terms, dtype=np.int64), np.empty(most_terms, dtype=out.dtype)
    starts, stops = np.empty(most_terms, dtype=np.int64), np.empty(most_terms, dtype=np.int64)
    first_task, end_task = task_range(chunk, chunks, tasks)
    for task in range(first_task, end_task):
        start = (task % tiles) * tile
        stop = min(start + tile, total)
        oa = (task // tiles) % lead
        co = (task // (tiles * lead)) % out_channels
        n = task // (tiles * lead * out_channels)
        first_channel = (co // cout_g) * cin_g
        count = np.int64(0)  # not a literal (which would compile add_terms twice)
        for c in range(cin_g):
            kernel = w[co, c]
            for ua in range(a_ptr[oa], a_ptr[oa + 1]):
                base = ((n * in_channels + first_channel + c) * lead_in + a_col[ua]) * row_size
                for ja in range(a_tap_ptr[ua], a_tap_ptr[ua + 1]):
                    first_tap = a_tap[ja] * plane_taps
                    for t in range(plane_taps):
                        shifts[count], scales[count] = base + tap_offset[t], kernel[first_tap + t]
                        starts[count], stops[count] = max(start, tap_lo[t]), min(stop, tap_hi[t])
                        count += 1
        acc[:] = 0
        add_terms(acc, -start, source, shifts, scales, starts, stops, count)
        copy_columns(acc, start, stop - start, width, out_cols, out[n, co, oa])


def conv(x: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Direct convolution: one shifted pass over phase-split planes per tap (Numba, parallel)."""
    plan = plane_plan(geometry)
    if plan.padded_axes:
        x = pad(x, geometry, axes=plan.padded_axes)
    xs = split_planes(plane_view(x, plan.spatial), plan)
    out = np.empty((x.shape[0], geometry.out_channels, *geometry.output_shape), dtype=x.dtype)
    out_planes = plane_view(out, plan.out_spatial)
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    tile, chunks = tiling(math.prod(out_planes.shape[:3]), rows.out_length, plan.split_width)
    most_terms = geometry.in_channels_per_group * plan.most_lead_taps * rows.kernel * cols.kernel
    run_chunks(_direct, chunks, xs, _flat_weight(weight), geometry.groups, lead.row_ptr, lead.col,
               lead.tap_ptr, lead.tap, *plan.forward_taps, most_terms, tile, out_planes)
    scratch.give(xs)
    return out


@jit
def _gather(y, w, groups, b_ptr, b_out, b_tap, phase_ptr, tap_offset, tap_index, tap_lo, tap_hi,
            stride_b, stride_c, most_terms, tile, out, chunk, chunks):
    """Each task computes every phase of one flat tile of one output plane, then interleaves.

    A phase sums one shifted input plane per (input channel, tap of the phase):
    the terms of one phase are collected (plane taps from the tables of
    :attr:`~tconv_sparse.backends._polyphase.PlanePlan.transpose_taps`), then
    added four per pass.
    """
    batch, in_channels, lead, length_b, length_c = out.shape
    out_channels, lead_y, y_rows, width = y.shape[1:]
    cin_g, plane_taps = w.shape[1], len(tap_offset)
    cout_g = out_channels // groups
    source = y.reshape(y.size)
    plane = y_rows * width
    total = (length_b + stride_b - 1) // stride_b * width
    split_c = (length_c + stride_c - 1) // stride_c
    tiles = (total + tile - 1) // tile
    tasks = batch * in_channels * lead * tiles
    phases = np.empty((stride_b, stride_c, tile), dtype=out.dtype)
    acc = phases.reshape(phases.size)
    shifts, scales = np.empty(most_terms, dtype=np.int64), np.empty(most_terms, dtype=out.dtype)
    starts, stops = np.empty(most_terms, dtype=np.int64), np.empty(most_terms, dtype=np.int64)
    first_task, end_task = task_range(chunk, chunks, tasks)
    for task in range(first_task, end_task):
        start = (task % tiles) * tile
        stop = min(start + tile, total)
        ia = (task // tiles) % lead
        ci = (task // (tiles * lead)) % in_channels
        n = task // (tiles * lead * in_channels)
        g, c = ci // cin_g, ci % cin_g
        acc[:] = 0
        for p in range(stride_b * stride_c):
            count = np.int64(0)  # not a literal (which would compile add_terms twice)
            for co in range(g * cout_g, (g + 1) * cout_g):
                kernel = w[co, c]
                for e in range(b_ptr[ia], b_ptr[ia + 1]):
                    base = ((n * out_channels + co) * lead_y + b_out[e]) * plane
                    first_tap = b_tap[e] * plane_taps
                    for t in range(phase_ptr[p], phase_ptr[p + 1]):
                        shifts[count], scales[count] = base + tap_offset[t], kernel[first_tap + tap_index[t]]
                        starts[count], stops[count] = max(start, tap_lo[t]), min(stop, tap_hi[t])
                        count += 1
            add_terms(acc, p * tile - start, source, shifts, scales, starts, stops, count)
        store_plane(phases, np.int64(0), start, stop - start, width, split_c, out[n, ci, ia])


def conv_transpose_gather(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Gather transpose: each output element collects the taps that land on it.

    This is the fractionally-strided view without materialised zeros, computed
    phase by phase (polyphase): output phase ``(r_b, r_c)`` of a plane is a
    stride-1 correlation of the input planes with the sub-kernel of the taps
    of that phase, one shifted pass per tap.
    """
    plan = plane_plan(geometry)
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    out = np.empty((y.shape[0], geometry.in_channels, *plan.spatial), dtype=y.dtype)
    tile, chunks = tiling(math.prod(out.shape[:3]), rows.split, plan.pad_width)
    most_terms = geometry.out_channels_per_group * plan.most_lead_entries * rows.most_phase_taps \
        * cols.most_phase_taps
    planes = pad_planes(plane_view(y, plan.out_spatial), plan)
    run_chunks(_gather, chunks, planes, _flat_weight(weight), geometry.groups, lead.back_ptr, lead.back_out,
               lead.back_tap, *plan.transpose_taps, rows.stride, cols.stride, most_terms, tile, out)
    scratch.give(planes)
    return fold_planes(out, geometry, plan)


@jit
def _scatter_value(value, w, co, c, ci, n, oa, ob, a_ptr, a_col, a_tap_ptr, a_tap,
                   b_ptr, b_col, b_tap_ptr, b_tap, out):
    """Add ``value * kernel[co, c]`` into ``out[n, ci]`` at the inputs output (oa, ob) reads."""
    for ua in range(a_ptr[oa], a_ptr[oa + 1]):
        ia = a_col[ua]
        for ub in range(b_ptr[ob], b_ptr[ob + 1]):
            ib = b_col[ub]
            for ja in range(a_tap_ptr[ua], a_tap_ptr[ua + 1]):
                for jb in range(b_tap_ptr[ub], b_tap_ptr[ub + 1]):
                    out[n, ci, ia, ib] += value * w[co, c, a_tap[ja], b_tap[jb]]


@jit
def _scatter_by_channel(y, w, groups, a_ptr, a_col, a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr,
                        b_tap, out, chunk, chunks):
    """Each task owns one (sample, output channel): writes are disjoint."""
    batch, in_channels = out.shape[0], out.shape[1]
    _, out_channels, rows_a, rows_b = y.shape
    cin_g = w.shape[1]
    cout_g = out_channels // groups
    first, last = task_range(chunk, chunks, batch * in_channels)
    for task in range(first, last):
        n = task // in_channels
        ci = task % in_channels
        g = ci // cin_g
        c = ci % cin_g
        for co in range(g * cout_g, (g + 1) * cout_g):
            for oa in range(rows_a):
                for ob in range(rows_b):
                    _scatter_value(y[n, co, oa, ob], w, co, c, ci, n, oa, ob, a_ptr, a_col,
                                   a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr, b_tap, out)


@jit
def _scatter_private(y, w, groups, a_ptr, a_col, a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr,
                     b_tap, buffers, chunk, chunks):
    """Each buffer gets a slice of the input rows scattered into it."""
    batch, out_channels, rows_a, rows_b = y.shape
    cin_g = w.shape[1]
    cout_g = out_channels // groups
    total = batch * out_channels * rows_a
    parts = buffers.shape[0]
    first_part, last_part = task_range(chunk, chunks, parts)
    for part in range(first_part, last_part):
        out = buffers[part]
        for row in range(part * total // parts, (part + 1) * total // parts):
            n = row // (out_channels * rows_a)
            co = (row // rows_a) % out_channels
            oa = row % rows_a
            first_channel = (co // cout_g) * cin_g
            for ob in range(rows_b):
                value = y[n, co, oa, ob]
                for c in range(cin_g):
                    _scatter_value(value, w, co, c, first_channel + c, n, oa, ob, a_ptr, a_col,
                                   a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr, b_tap, out)


def conv_transpose_scatter(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Scatter transpose: each input element times the kernel, added into the output.

    With at least :data:`SCATTER_PARTS` (sample, channel) output planes, each
    task owns whole planes; with fewer, the input rows are split into
    :data:`SCATTER_PARTS` slices, each scattered into its own buffer, and the
    buffers are summed. Neither depends on the thread count, so neither does
    the result (bit for bit).
    """
    shape = (y.shape[0], geometry.in_channels, *geometry.input_shape)
    canonical_y = _canonical(y, geometry.output_shape)
    w = canonical_weight(weight, geometry)
    planes = shape[0] * shape[1]
    if planes >= SCATTER_PARTS:
        out = np.zeros(shape, dtype=y.dtype)
        run_chunks(_scatter_by_channel, chunk_count(planes), canonical_y, w, geometry.groups,
                   *_forward_tables(geometry), _canonical(out, geometry.input_shape))
        return out
    buffers = np.zeros((SCATTER_PARTS, *shape), dtype=y.dtype)
    canonical_buffers = buffers.reshape(SCATTER_PARTS, shape[0], shape[1],
                                        math.prod(geometry.input_shape[:-1]), geometry.input_shape[-1])
    run_chunks(_scatter_private, SCATTER_PARTS, canonical_y, w, geometry.groups, *_forward_tables(geometry),
               canonical_buffers)
    return buffers.sum(axis=0)
