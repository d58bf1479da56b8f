"""im2col + GEMM for the forward convolution, GEMM + col2im for its transpose.

Both work on the plane layout of :mod:`~tconv_sparse.backends._polyphase`:
every unfolded or folded plane is one contiguous shifted copy or sum per tap,
so the Numba passes around the GEMM run at memory speed however short the
rows are. The column matrix is channel-major, ``(C * taps, N * positions)``,
so that a chunk of samples is one GEMM per group (:func:`numpy.matmul`, BLAS)
with every sample's positions side by side: wide enough for BLAS to run at
full speed even on small images. Chunks keep the column buffer near the size
of the last-level cache so that the Numba pass reads what BLAS just wrote.
BLAS owns the cores: the Numba passes run on the calling thread between the
BLAS calls (:func:`~tconv_sparse.core.config.numba_threads`), so that the two
thread pools never compete for the cores.
"""

from __future__ import annotations

import math

import numpy as np

from tconv_sparse.core.config import WORK_CHUNK_BYTES, chunk_count, jit, numba_threads, run_chunks, task_range
from tconv_sparse.backends._numpy_ops import chunk_budget as _numpy_chunk_budget, pad
from tconv_sparse.backends._polyphase import (
    add_terms, compact_columns, copy_shifted, fold_planes, pad_planes, phase_scratch, plane_plan,
    plane_view, row_clip, split_planes, store_plane, tiling,
)

__all__ = ["conv", "conv_transpose", "chunk_budget", "forward_chunk_sizes", "forward_row_bytes",
           "plane_weight_shape", "transpose_chunk_sizes", "transpose_chunk_bytes"]

#: bytes of the column buffer of one chunk (a few samples, or rows of one), unless the memory
#: limit leaves less


def chunk_budget(committed: int) -> int:
    """Bytes one chunk may take: :data:`~tconv_sparse.core.config.WORK_CHUNK_BYTES`, or less if
    the memory limit leaves less beside ``committed`` bytes (the output and the fixed buffers)."""
    return _numpy_chunk_budget(committed, WORK_CHUNK_BYTES)


def forward_chunk_sizes(batch: int, lead: int, rows: int, row_bytes: int, budget: int) -> tuple:
    """``(samples, lead rows, plane rows)`` per chunk of the forward GEMM path, whose buffers take
    ``row_bytes`` per plane row of one leading row of one sample: whole samples while one fits
    ``budget``, else leading rows of one sample, else plane rows of one leading row."""
    lead_bytes = row_bytes * rows
    if lead_bytes * lead <= budget:
        return max(1, min(batch, budget // max(lead_bytes * lead, 1))), lead, rows
    if lead_bytes <= budget:
        return 1, max(1, budget // max(lead_bytes, 1)), rows
    return 1, 1, max(1, min(rows, budget // max(row_bytes, 1)))


def _forward_chunks(batch, lead, rows, sizes):
    samples, leads, plane_rows = sizes
    for start in range(0, batch, samples):
        for first_lead in range(0, lead, leads):
            for first_row in range(0, rows, plane_rows):
                yield (start, min(start + samples, batch), first_lead, min(first_lead + leads, lead),
                       first_row, min(first_row + plane_rows, rows))


def transpose_chunk_sizes(batch: int, in_channels: int, cin_g: int, padded_bytes: int,
                          channel_bytes: int, budget: int) -> tuple:
    """``(samples, channels)`` per chunk of the transposed GEMM path: whole samples while one
    (its padded input, ``padded_bytes``, and the columns of its ``in_channels`` output channels,
    ``channel_bytes`` each) fits ``budget``, else up to ``cin_g`` channels of one sample."""
    sample_bytes = padded_bytes + in_channels * channel_bytes
    if sample_bytes <= budget:
        return max(1, min(batch, budget // max(sample_bytes, 1))), cin_g
    return 1, max(1, min(cin_g, (budget - padded_bytes) // max(channel_bytes, 1)))


@jit
def _im2col(xs, a_ptr, a_col, a_tap_ptr, a_tap, shift_b, phase_b, shift_c, phase_c, margin, cols,
            chunk, chunks):
    """``cols[c, t_lead, t_b, t_c, n, o_lead]``: the padded output plane's inputs through each tap."""
    channels, k_lead, k_rows, k_cols, batch, lead, size = cols.shape
    split_rows, width = xs.shape[5], xs.shape[6]
    first, last = task_range(chunk, chunks, channels * k_lead * batch * lead)
    for task in range(first, last):
        c, ta = task // (k_lead * batch * lead), (task // (batch * lead)) % k_lead
        n, oa = (task // lead) % batch, task % lead
        ia = -1
        for ua in range(a_ptr[oa], a_ptr[oa + 1]):
            for ja in range(a_tap_ptr[ua], a_tap_ptr[ua + 1]):
                if a_tap[ja] == ta:
                    ia = a_col[ua]
        for tb in range(k_rows):
            lo, hi = row_clip(np.int64(0), size, width, -shift_b[tb], split_rows - shift_b[tb])
            for tc in range(k_cols):
                target = cols[c, ta, tb, tc, n, oa]
                if ia < 0:
                    target[:] = 0
                else:
                    copy_shifted(target, lo, hi,
                                 xs[n, c, ia, phase_b[tb], phase_c[tc]].reshape(split_rows * width),
                                 shift_b[tb] * width + margin + shift_c[tc])


def conv(x: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Unfold the phase-split input into columns (Numba), multiply by the weight matrix (BLAS)."""
    with numba_threads(1):
        return _conv(x, weight, geometry)


def forward_row_bytes(geometry, plan, itemsize) -> int:
    """Bytes of the column buffer and its GEMM product per plane row of one leading row of one
    sample (the forward GEMM path's chunk unit)."""
    taps = math.prod(plane_weight_shape(geometry, plan))
    return (geometry.in_channels * taps + geometry.out_channels) * plan.split_width * itemsize


def plane_weight_shape(geometry, plan) -> tuple:
    """``(k_lead, k_rows, k_cols)``: the kernel in the plane layout."""
    k_rows, k_cols = plan.rows.kernel, plan.cols.kernel
    return (math.prod(geometry.kernel_shape) // (k_rows * k_cols), k_rows, k_cols)


def _conv(x, weight, geometry):
    plan = plane_plan(geometry)
    if plan.padded_axes:
        x = pad(x, geometry, axes=plan.padded_axes)
    xs = split_planes(plane_view(x, plan.spatial), plan)
    batch, groups, out_channels = x.shape[0], geometry.groups, geometry.out_channels
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    kernel = plane_weight_shape(geometry, plan)
    depth = geometry.in_channels_per_group * math.prod(kernel)
    w = weight.reshape(groups, out_channels // groups, depth)
    out = np.empty((batch, out_channels, *plan.out_spatial), dtype=x.dtype)
    sizes = forward_chunk_sizes(batch, lead.output_size, rows.out_length,
                                forward_row_bytes(geometry, plan, x.itemsize),
                                chunk_budget(out.nbytes + xs.nbytes))
    for start, stop, first_lead, end_lead, first_row, end_row in _forward_chunks(
            batch, lead.output_size, rows.out_length, sizes):
        n, leads, plane_rows = stop - start, end_lead - first_lead, end_row - first_row
        unfolded = np.empty((geometry.in_channels, *kernel, n, leads, plane_rows * plan.split_width),
                            dtype=x.dtype)
        run_chunks(_im2col, chunk_count(math.prod(unfolded.shape[:2]) * n * leads), xs[start:stop],
                   lead.row_ptr[first_lead:end_lead + 1], lead.col, lead.tap_ptr, lead.tap,
                   rows.tap_shift + first_row, rows.tap_phase, cols.tap_shift, cols.tap_phase,
                   plan.split_margin, unfolded)
        product = np.matmul(w, unfolded.reshape(groups, depth, -1))
        del unfolded
        compact_columns(product.reshape(out_channels, n, leads, plane_rows, plan.split_width
                                        ).transpose(1, 0, 2, 3, 4),
                        out[start:stop, :, first_lead:end_lead, first_row:end_row])
        del product
    return out.reshape(batch, out_channels, *geometry.output_shape)


@jit
def _col2im(cols, b_ptr, b_out, b_tap, ptr_b, tap_b, offset_b, ptr_c, tap_c, offset_c, margin, top,
            most_terms, tile, out, chunk, chunks):
    """Each task sums, for every phase of one flat tile of the output planes of one channel
    and leading row (the samples side by side), the shifted column planes
    ``cols[c, t_lead, t_b, t_c, o_lead, n]`` of the taps of that phase (four per pass),
    then interleaves the phases into each sample's output plane."""
    batch, channels, lead, length_b, length_c = out.shape
    stride_b, stride_c = len(ptr_b) - 1, len(ptr_c) - 1
    phase_count = stride_b * stride_c
    k_lead, k_rows, k_cols, lead_y, _, y_rows, width = cols.shape[1:]
    source = cols.reshape(cols.size)
    plane = y_rows * width
    total = batch * plane
    split_c = (length_c + stride_c - 1) // stride_c
    tiles = (total + tile - 1) // tile
    tasks = channels * lead * tiles
    phases, shifts, starts, stops, counts = phase_scratch(out, stride_b, stride_c, tile, most_terms)
    acc = phases.reshape(phases.size)
    ones = np.ones(most_terms, dtype=out.dtype)
    first_task, end_task = task_range(chunk, chunks, tasks)
    for task in range(first_task, end_task):
        start = (task % tiles) * tile
        stop = min(start + tile, total)
        ia = (task // tiles) % lead
        c = task // (tiles * lead)
        counts[:] = 0
        for e in range(b_ptr[ia], b_ptr[ia + 1]):
            tap_plane = c * k_lead + b_tap[e]
            for rb in range(stride_b):
                for jb in range(ptr_b[rb], ptr_b[rb + 1]):
                    for rc in range(stride_c):
                        p = rb * stride_c + rc
                        for jc in range(ptr_c[rc], ptr_c[rc + 1]):
                            index = ((tap_plane * k_rows + tap_b[jb]) * k_cols + tap_c[jc]) * lead_y
                            m = counts[p]
                            shifts[p, m] = ((index + b_out[e]) * total + (top + offset_b[jb]) * width
                                            + margin + offset_c[jc])
                            starts[p, m], stops[p, m] = start, stop
                            counts[p] = m + 1
        acc[:] = 0
        for p in range(phase_count):
            add_terms(acc, p * tile - start, source, shifts[p], ones, starts[p], stops[p], counts[p])
        for n in range(start // plane, (stop - 1) // plane + 1):
            first, last = max(start - n * plane, 0), min(stop - n * plane, plane)
            store_plane(phases, n * plane + first - start, first, last - first, width, split_c,
                        out[n, c, ia])


def conv_transpose(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Multiply by the transposed weight matrix (BLAS), then col2im and fold the padding.

    ``cols = W.T @ y`` holds, for every tap, the contribution of every input
    position; col2im adds each tap's plane into the output phase it lands on
    (Numba); folding the padding back (crop, wrap-add, mirror-add, edge-add)
    gives the output. The input planes carry zero margin rows and columns, so
    every tap is one flat shift over the planes of all the samples of a chunk.
    """
    with numba_threads(1):
        return _conv_transpose(y, weight, geometry)


def transpose_chunk_bytes(geometry, plan, itemsize) -> tuple[int, int]:
    """``(padded_bytes, channel_bytes)`` of one sample on the transposed GEMM path: its padded
    input, and the columns of one output channel."""
    plane = plan.lead.output_size * plan.pad_rows * plan.pad_width * itemsize
    return geometry.out_channels * plane, math.prod(geometry.kernel_shape) * plane


def _transpose_parts(wt, padded, cin_g, taps, channels):
    """``(first channel, channels, weight rows, columns)`` of each GEMM of a chunk of samples:
    every channel in one batched GEMM, or (one sample) ``channels`` channels of one group."""
    groups = wt.shape[0]
    if channels == cin_g:
        yield 0, groups * cin_g, wt, padded
        return
    for g in range(groups):
        for c in range(0, cin_g, channels):
            count = min(channels, cin_g - c)
            yield g * cin_g + c, count, wt[g, c * taps:(c + count) * taps], padded[g]


def _conv_transpose(y, weight, geometry):
    plan = plane_plan(geometry)
    batch, groups, in_channels = y.shape[0], geometry.groups, geometry.in_channels
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    kernel = plane_weight_shape(geometry, plan)
    cout_g, cin_g = geometry.out_channels_per_group, geometry.in_channels_per_group
    taps = math.prod(kernel)
    wt = weight.reshape(groups, cout_g, cin_g * taps).transpose(0, 2, 1)
    plane = plan.pad_rows * plan.pad_width
    y_planes = plane_view(y, plan.out_spatial)
    out = np.empty((batch, in_channels, *plan.spatial), dtype=y.dtype)
    most_terms = plan.most_lead_entries * rows.most_phase_taps * cols.most_phase_taps
    samples, channels = transpose_chunk_sizes(batch, in_channels, cin_g,
                                              *transpose_chunk_bytes(geometry, plan, y.itemsize),
                                              chunk_budget(out.nbytes))
    for start in range(0, batch, samples):
        stop = min(start + samples, batch)
        n = stop - start
        padded = pad_planes(y_planes[start:stop], plan, gemm_layout=True).reshape(groups, cout_g, -1)
        for first, count, matrix, columns in _transpose_parts(wt, padded, cin_g, taps, channels):
            unfolded = np.matmul(matrix, columns)
            tile, chunks = tiling(count * lead.input_size, 1, n * plane)
            run_chunks(_col2im, chunks,
                       unfolded.reshape(count, *kernel, lead.output_size, n, plan.pad_rows, plan.pad_width),
                       lead.back_ptr, lead.back_out, lead.back_tap, rows.phase_ptr, rows.phase_tap,
                       rows.phase_shift, cols.phase_ptr, cols.phase_tap, cols.phase_shift, plan.pad_margin,
                       plan.pad_top, most_terms, tile, out[start:stop, first:first + count])
            del unfolded
        del padded
    return fold_planes(out, geometry, plan)
