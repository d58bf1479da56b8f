"""The GEMM paths: shift-and-GEMM over channels-last polyphase planes (no im2col buffer).

Both directions use the phase split of :mod:`~tconv_sparse.backends._polyphase`:
per plane axis, a tap of the forward convolution reads a shifted phase of the
input, and an output phase of the transposed convolution is a stride-1
correlation of the input with the sub-kernel of its taps. Here the planes of
a chunk of samples are stored *channels last*, ``(block, sample, row, column,
channel)`` with zero margin rows and columns (:class:`Layout`), so that every
tap is one flat shift of the positions, and a window of the planes is a
contiguous ``(positions, channels)`` matrix. Each tap is then one GEMM
(:func:`~tconv_sparse.backends.gemm.shifted_gemms`) of that window by the
tap's ``(channels in, channels out)`` weight, accumulated with ``beta = 1``
into the target planes: a forward output, or one output phase of the
transposed convolution written straight into that phase (no col2im
scatter-add). Two memory-speed Numba passes move the data between the
package's ``(N, C, *spatial)`` layout and the planes (:func:`_to_planes`,
:func:`_from_planes`, which also interleaves the phases).

Measured against each other (issue 13, one thread, 64 channels): the
channels-last windows run at 110-120 GFLOP/s in float32 against 70-100 for
channels-first ones (whose row stride is a whole plane); merging the taps of
one shift into one GEMM (the phases side by side in the channels) was no
faster, its zero blocks costing what the larger inner dimension gained; and
a single large im2col GEMM is faster per multiply-add (about 125 GFLOP/s)
but its column buffer and the col2im pass cost more than that difference.

BLAS owns the cores: the Numba passes run on the calling thread between the
BLAS calls (:func:`~tconv_sparse.core.config.numba_threads`), so that the two
thread pools never compete for the cores.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from tconv_sparse.core import scratch
from tconv_sparse.core.config import WORK_CHUNK_BYTES, chunk_count, jit, numba_threads, run_chunks, task_range
from tconv_sparse.backends._numpy_ops import chunk_budget as _numpy_chunk_budget, pad
from tconv_sparse.backends._polyphase import fold_planes, plane_plan, plane_view
from tconv_sparse.backends.gemm import shifted_gemms

__all__ = ["conv", "conv_transpose", "chunk_budget", "Layout", "layout", "chunk_sizes", "row_bytes",
           "weight_bytes"]

def chunk_budget(committed: int) -> int:
    """Bytes one chunk may take: :data:`~tconv_sparse.core.config.WORK_CHUNK_BYTES`, or less if
    the memory limit leaves less beside ``committed`` bytes (the output and the fixed buffers)."""
    return _numpy_chunk_budget(committed, WORK_CHUNK_BYTES)


@dataclass(frozen=True)
class Layout:
    """The channels-last planes of one direction.

    A chunk holds the planes of some samples for some rows of results: a
    plane is ``rows x width`` positions, ``rows = top + results + below``; its
    data (the input of the direction, phase-split for the forward
    convolution) starts at row ``top`` and column ``margin``, and so do its
    results (forward outputs, or the entries of one output phase of the
    transposed convolution, ``result_rows x result_cols`` in all), which read
    the data through the flat shifts of the terms without leaving the plane.

    Attributes
    ----------
    source_blocks, target_blocks : int
        Planes per sample and channel of the data and of the results.
    terms : tuple
        Per target block: its ``(source block, tap, flat shift)`` terms.
    """

    top: int
    below: int
    margin: int
    width: int
    result_rows: int
    result_cols: int
    source_blocks: int
    target_blocks: int
    terms: tuple

    def rows(self, results: int) -> int:
        """Rows of a plane holding ``results`` rows of results."""
        return self.top + results + self.below

    def span(self, samples: int, results: int) -> tuple[int, int]:
        """``[first, last)``: the flat positions from the first result to the last of a chunk."""
        first = self.top * self.width + self.margin
        return first, ((samples - 1) * self.rows(results) * self.width + first + (results - 1) * self.width
                       + self.result_cols)


def _axis(data: int, results: int, shifts) -> tuple[int, int, int]:
    """``(start, size, below)`` of an axis whose results ``q < results`` read data ``q + shift``
    (data ``j < data`` at ``start + j``, results at ``start + q``; reads outside the data hit
    zeros); ``below`` is the room needed after the results."""
    start, below = max(0, -int(min(shifts))), max(0, int(max(shifts)))
    return start, start + max(data, results + below), below


def _forward_terms(plan, width, kernel) -> tuple:
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    _, k_rows, k_cols = kernel
    terms = []
    for oa in range(lead.output_size):
        block = []
        for ua in range(lead.row_ptr[oa], lead.row_ptr[oa + 1]):
            ia = int(lead.col[ua])
            for ta in lead.tap[lead.tap_ptr[ua]:lead.tap_ptr[ua + 1]]:
                for tb in range(k_rows):
                    for tc in range(k_cols):
                        phases = (ia * rows.stride + int(rows.tap_phase[tb])) * cols.stride + int(cols.tap_phase[tc])
                        block.append((phases, (int(ta) * k_rows + tb) * k_cols + tc,
                                      int(rows.tap_shift[tb]) * width + int(cols.tap_shift[tc])))
        terms.append(tuple(block))
    return tuple(terms)


def _transpose_terms(plan, width, kernel) -> tuple:
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    _, k_rows, k_cols = kernel
    terms = []
    for ia in range(lead.input_size):
        for rb in range(rows.stride):
            for rc in range(cols.stride):
                block = []
                for e in range(lead.back_ptr[ia], lead.back_ptr[ia + 1]):
                    for jb in range(rows.phase_ptr[rb], rows.phase_ptr[rb + 1]):
                        for jc in range(cols.phase_ptr[rc], cols.phase_ptr[rc + 1]):
                            tap = (int(lead.back_tap[e]) * k_rows + int(rows.phase_tap[jb])) * k_cols
                            block.append((int(lead.back_out[e]), tap + int(cols.phase_tap[jc]),
                                          int(rows.phase_shift[jb]) * width + int(cols.phase_shift[jc])))
                terms.append(tuple(block))
    return tuple(terms)


@functools.lru_cache(maxsize=64)
def layout(geometry, transposed: bool) -> Layout:
    """The :class:`Layout` of ``geometry`` in one direction (cached)."""
    plan = plane_plan(geometry)
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    kernel = (math.prod(geometry.kernel_shape) // (rows.kernel * cols.kernel), rows.kernel, cols.kernel)
    if transposed:
        (top, _, below), (margin, width, _) = (_axis(axis.out_length, axis.split, axis.phase_shift)
                                               for axis in (rows, cols))
        terms = _transpose_terms(plan, width, kernel)
        return Layout(top, below, margin, width, rows.split, cols.split, lead.output_size, len(terms), terms)
    (top, _, below), (margin, width, _) = (_axis(axis.split, axis.out_length, axis.tap_shift)
                                           for axis in (rows, cols))
    terms = _forward_terms(plan, width, kernel)
    return Layout(top, below, margin, width, rows.out_length, cols.out_length,
                  lead.input_size * rows.stride * cols.stride, len(terms), terms)


def row_bytes(geometry, transposed: bool, itemsize: int) -> int:
    """Bytes of one plane row of the source and target planes of one sample."""
    plan = layout(geometry, transposed)
    source, target = ((geometry.out_channels, geometry.in_channels) if transposed
                      else (geometry.in_channels, geometry.out_channels))
    return (plan.source_blocks * source + plan.target_blocks * target) * plan.width * itemsize


def weight_bytes(geometry, itemsize: int) -> int:
    """Bytes of the weight in the tap-major layout of the GEMMs."""
    return geometry.out_channels * geometry.in_channels_per_group * math.prod(geometry.kernel_shape) * itemsize


def chunk_sizes(geometry, transposed: bool, batch: int, itemsize: int, budget: int) -> tuple[int, int]:
    """``(samples, rows of results)`` per chunk: whole samples while one fits ``budget``, else
    rows of results of one sample (at least one)."""
    plan, per_row = layout(geometry, transposed), row_bytes(geometry, transposed, itemsize)
    sample = per_row * plan.rows(plan.result_rows)
    if sample <= budget:
        return max(1, min(batch, budget // sample)), plan.result_rows
    return 1, max(1, min(plan.result_rows, budget // per_row - plan.top - plan.below))


def _chunks(batch, results, sizes):
    """``(first sample, end sample, first row, end row)`` of every chunk."""
    samples, rows = sizes
    for start in range(0, batch, samples):
        for first in range(0, results, rows):
            yield start, min(start + samples, batch), first, min(first + rows, results)


#: channels moved together by the layout passes: one contiguous run of the channels-last planes
#: per position, read from (or written to) that many rows of the channels-first data. In
#: :func:`_from_planes` the block is a loop of constant length, which the compiler unrolls: the
#: 8x64->64x32x32 float32 decoder's ``conv_transpose`` 14-18% faster, for 0.5-0.8 s more of
#: its first compilation; in :func:`_to_planes` the same measured 1% of that call, so there it
#: stays a loop of runtime length (it compiles 0.1-0.3 s faster)
_CHANNEL_BLOCK = 8


@jit
def _to_planes(x, top, first_row, margin, out, chunk, chunks):
    """``out[a, p_b, p_c, n, top + j_b, margin + j_c, c] = x[n, c, a, (first_row + j_b)*s_b + p_b,
    j_c*s_c + p_c]``, zero elsewhere; ``out`` is ``(lead, s_b, s_c, N, rows, width, C)``.

    A task is one plane row of every phase: each input row is read once, and
    the rows it is transposed into (``width x C`` each) stay in the L1 cache.
    """
    batch, channels, lead, length_b, length_c = x.shape
    stride_b, stride_c, rows = out.shape[1], out.shape[2], out.shape[4]
    first, last = task_range(chunk, chunks, lead * batch * rows)
    for task in range(first, last):
        a, n, j = task // (batch * rows), (task // rows) % batch, task % rows
        for pb in range(stride_b):
            ib = (j - top + first_row) * stride_b + pb
            valid = 0 <= ib < length_b
            for pc in range(stride_c):
                target = out[a, pb, pc, n, j]
                count = (length_c - pc + stride_c - 1) // stride_c if valid else 0
                target[:margin] = 0
                target[margin + count:] = 0
                if count == 0:
                    continue
                for c0 in range(0, channels, _CHANNEL_BLOCK):
                    block = min(_CHANNEL_BLOCK, channels - c0)
                    source = x[n, c0:c0 + block, a, ib]
                    for jc in range(count):
                        row, column = target[margin + jc, c0:c0 + block], np.uint64(jc * stride_c + pc)
                        for cc in range(np.uint64(block)):
                            row[cc] = source[cc, column]


@jit
def _from_planes(planes, top, margin, out, chunk, chunks):
    """``out[n, c, a, b, j] = planes[a, b % s_b, j % s_c, n, top + b // s_b, margin + j // s_c, c]``;
    ``planes`` is ``(lead, s_b, s_c, N, rows, width, C)``.

    A task is one output row of every channel: the plane rows of its phases
    (``width x C`` each) stay in the L1 cache while they are read. Stride 2
    (the decoders') interleaves its two phases in one loop, so that every
    store pair is contiguous: 1.3x faster again than a loop per phase.
    """
    batch, channels, lead, length_b, length_c = out.shape
    stride_b, stride_c = planes.shape[1], planes.shape[2]
    whole = channels - channels % _CHANNEL_BLOCK
    pairs = length_c // 2 if stride_c == 2 else 0
    first, last = task_range(chunk, chunks, batch * lead * length_b)
    for task in range(first, last):
        n, a, b = task // (lead * length_b), (task // length_b) % lead, task % length_b
        rows = planes[a, b % stride_b, :, n, top + b // stride_b, margin:]  # (s_c, width, C)
        for c0 in range(0, whole, _CHANNEL_BLOCK):
            target = out[n, c0:c0 + _CHANNEL_BLOCK, a, b]
            for jc in range(pairs):
                even, odd = rows[0, jc, c0:c0 + _CHANNEL_BLOCK], rows[1, jc, c0:c0 + _CHANNEL_BLOCK]
                for cc in range(_CHANNEL_BLOCK):
                    target[cc, 2 * jc] = even[cc]
                    target[cc, 2 * jc + 1] = odd[cc]
            for pc in range(stride_c):
                source = rows[pc, :, c0:c0 + _CHANNEL_BLOCK]
                for jc in range(pairs, (length_c - pc + stride_c - 1) // stride_c):
                    for cc in range(_CHANNEL_BLOCK):
                        target[cc, jc * stride_c + pc] = source[jc, cc]
        for c in range(whole, channels):
            target = out[n, c, a, b]
            for pc in range(stride_c):
                for jc in range((length_c - pc + stride_c - 1) // stride_c):
                    target[jc * stride_c + pc] = rows[pc, jc, c]


def _tap_weights(weight, geometry, transposed):
    """``(taps, groups, rows in, rows out)``: the GEMM operand of every tap and group."""
    groups = geometry.groups
    w = weight.reshape(groups, geometry.out_channels_per_group, geometry.in_channels_per_group, -1)
    return np.ascontiguousarray(w.transpose(3, 0, 1, 2) if transposed else w.transpose(3, 0, 2, 1))


def _run(data, weight, geometry, transposed, out):
    """Every chunk: ``data`` into planes, the GEMMs, the results into ``out``."""
    plan, shape = layout(geometry, transposed), plane_plan(geometry)
    lead, rows, cols = shape.lead, shape.rows, shape.cols
    strides = (rows.stride, cols.stride)
    source_shape = ((lead.output_size, 1, 1) if transposed else (lead.input_size, *strides))
    target_shape = ((lead.input_size, *strides) if transposed else (lead.output_size, 1, 1))
    step = rows.stride if transposed else 1  # output rows per row of results
    weights = _tap_weights(weight, geometry, transposed)
    sizes = chunk_sizes(geometry, transposed, data.shape[0], data.itemsize,
                        chunk_budget(out.nbytes + weights.nbytes))
    for start, stop, first, last in _chunks(data.shape[0], plan.result_rows, sizes):
        n, results = stop - start, last - first
        height = plan.rows(results)
        source = scratch.take((*source_shape, n, height, plan.width, data.shape[1]), data.dtype)
        run_chunks(_to_planes, chunk_count(source_shape[0] * n * height), data[start:stop], plan.top, first,
                   plan.margin, source)
        target = scratch.take((*target_shape, n, height, plan.width, out.shape[1]), data.dtype)
        shifted_gemms(target.reshape(plan.target_blocks, n * height * plan.width, out.shape[1]),
                      source.reshape(plan.source_blocks, n * height * plan.width, data.shape[1]),
                      weights, plan.terms, plan.span(n, results))
        scratch.give(source)
        part = out[start:stop, :, :, first * step:last * step]
        run_chunks(_from_planes, chunk_count(n * part.shape[2] * part.shape[3]), target, plan.top, plan.margin,
                   part)
        scratch.give(target)
    return out


def conv(x: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Forward convolution: the input into phase-split channels-last planes, one GEMM per tap
    accumulated into the output planes, the valid outputs copied out."""
    with numba_threads(1):
        shape = plane_plan(geometry)
        if shape.padded_axes:
            x = pad(x, geometry, axes=shape.padded_axes)
        out = np.empty((x.shape[0], geometry.out_channels, *shape.out_spatial), dtype=x.dtype)
        _run(plane_view(x, shape.spatial), weight, geometry, False, out)
        return out.reshape(x.shape[0], geometry.out_channels, *geometry.output_shape)


def conv_transpose(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Transposed convolution: the input into zero-margined channels-last planes, then every
    output phase as the GEMMs of its sub-kernel's taps, interleaved into the output (and the
    explicit padding folded back)."""
    with numba_threads(1):
        shape = plane_plan(geometry)
        out = np.empty((y.shape[0], geometry.in_channels, *shape.spatial), dtype=y.dtype)
        _run(plane_view(y, shape.out_spatial), weight, geometry, True, out)
        return fold_planes(out, geometry, shape)
