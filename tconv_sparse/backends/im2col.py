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

BLAS owns the cores: the Numba passes run on the calling thread between the
BLAS calls (:func:`~tconv_sparse.core.config.numba_threads`), so that the two
thread pools never compete for the cores.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from tconv_sparse.core.config import WORK_CHUNK_BYTES, chunk_count, jit, numba_threads, run_chunks, task_range
from tconv_sparse.backends._numpy_ops import chunk_budget as _numpy_chunk_budget, pad
from tconv_sparse.backends._polyphase import fold_planes, plane_plan, plane_view
from tconv_sparse.backends.gemm import shifted_gemms

__all__ = ["conv", "conv_transpose", "chunk_budget", "Layout", "layout", "chunk_samples",
           "sample_bytes", "weight_bytes"]

#: bytes of the target planes one pass of the GEMMs accumulates into (kept in the L2 cache)
PIECE_BYTES = 2**18


def chunk_budget(committed: int) -> int:
    """Bytes one chunk may take: :data:`~tconv_sparse.core.config.WORK_CHUNK_BYTES`, or less if
    the memory limit leaves less beside ``committed`` bytes (the output and the fixed buffers)."""
    return _numpy_chunk_budget(committed, WORK_CHUNK_BYTES)


@dataclass(frozen=True)
class Layout:
    """The channels-last planes of one direction.

    A plane is ``rows x width`` positions; its data (the input of the
    direction, phase-split for the forward convolution) starts at row ``top``
    and column ``margin``, and so do its results (forward outputs, or the
    entries of one output phase of the transposed convolution), whose
    ``result_rows x result_cols`` positions read the data through the flat
    shifts of the terms without leaving the plane.

    Attributes
    ----------
    source_phases, target_phases : int
        Phases stored side by side in the channels of a position of the data and of the results
        (``s_b * s_c`` for the forward data and the transposed results, else 1).
    terms : tuple
        Per target block (leading-axes row of the results): its terms for
        :func:`~tconv_sparse.backends.gemm.shifted_gemms`.
    stacks : tuple
        The taps (``None`` for none) whose weights, side by side, make each term's matrix.
    """

    top: int
    margin: int
    rows: int
    width: int
    result_rows: int
    result_cols: int
    source_phases: int
    target_phases: int
    terms: tuple
    stacks: tuple

    @property
    def plane(self) -> int:
        """Positions per plane."""
        return self.rows * self.width

    def span(self, samples: int) -> tuple[int, int]:
        """``[first, last)``: the flat positions from the first result to the last of ``samples``."""
        first = self.top * self.width + self.margin
        return first, (samples - 1) * self.plane + first + (self.result_rows - 1) * self.width + self.result_cols


def _axis(data: int, results: int, shifts) -> tuple[int, int]:
    """``(start, size)`` of an axis whose results ``q < results`` read data ``q + shift`` (data
    ``j < data`` at ``start + j``, results at ``start + q``; reads outside the data hit zeros)."""
    start = max(0, -int(min(shifts)))
    return start, start + max(data, results + max(0, int(max(shifts))))


#: phases of one shift that are merged into one GEMM when at most this many phases between them
#: have no tap at that shift (their weight block is zero)
_PHASE_GAP = 1


def _phase_ranges(phases: list, groups: int) -> list:
    """Consecutive runs of the sorted ``phases``: one GEMM each (phases side by side in the
    channels need one group)."""
    runs = []
    for phase in phases:
        if runs and groups == 1 and phase - runs[-1][-1] <= _PHASE_GAP + 1:
            runs[-1].append(phase)
        else:
            runs.append([phase])
    return runs


def _block_terms(entries, groups, stacks, transposed) -> tuple:
    """The terms of one target block from its ``(source block, shift, phase, tap)`` entries: the
    entries of one source block and shift whose phases are close share one GEMM, with the
    weight ``stacks[key]`` of their taps side by side (``None``: a zero block)."""
    by_shift = {}
    for source, shift, phase, tap in entries:
        by_shift.setdefault((source, shift), {})[phase] = tap
    terms = []
    for (source, shift), taps in by_shift.items():
        for run in _phase_ranges(sorted(taps), groups):
            key = tuple(taps.get(phase) for phase in range(run[0], run[-1] + 1))
            index = stacks.setdefault(key, len(stacks))
            terms.append((source, shift, index, 0, run[0]) if transposed else (source, shift, index, run[0], 0))
    return tuple(terms)


def _forward_entries(plan, width, kernel, oa):
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    _, k_rows, k_cols = kernel
    for ua in range(lead.row_ptr[oa], lead.row_ptr[oa + 1]):
        for ta in lead.tap[lead.tap_ptr[ua]:lead.tap_ptr[ua + 1]]:
            for tb in range(k_rows):
                for tc in range(k_cols):
                    yield ((int(lead.col[ua]), int(rows.tap_shift[tb]) * width + int(cols.tap_shift[tc])),
                           int(rows.tap_phase[tb]) * cols.stride + int(cols.tap_phase[tc]),
                           (int(ta) * k_rows + tb) * k_cols + tc)


def _transpose_entries(plan, width, kernel, ia):
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    _, k_rows, k_cols = kernel
    for e in range(lead.back_ptr[ia], lead.back_ptr[ia + 1]):
        for rb in range(rows.stride):
            for jb in range(rows.phase_ptr[rb], rows.phase_ptr[rb + 1]):
                for rc in range(cols.stride):
                    for jc in range(cols.phase_ptr[rc], cols.phase_ptr[rc + 1]):
                        tap = (int(lead.back_tap[e]) * k_rows + int(rows.phase_tap[jb])) * k_cols
                        yield ((int(lead.back_out[e]), int(rows.phase_shift[jb]) * width + int(cols.phase_shift[jc])),
                               rb * cols.stride + rc, tap + int(cols.phase_tap[jc]))


def _terms(geometry, plan, width, transposed) -> tuple:
    """``(terms per target block, weight stacks)`` of one direction."""
    kernel = (math.prod(geometry.kernel_shape) // (plan.rows.kernel * plan.cols.kernel),
              plan.rows.kernel, plan.cols.kernel)
    entries, blocks = ((_transpose_entries, plan.lead.input_size) if transposed
                       else (_forward_entries, plan.lead.output_size))
    stacks = {}
    terms = tuple(_block_terms(((source, shift, phase, tap) for (source, shift), phase, tap
                                in entries(plan, width, kernel, block)), geometry.groups, stacks, transposed)
                  for block in range(blocks))
    return terms, tuple(stacks)


@functools.lru_cache(maxsize=64)
def layout(geometry, transposed: bool) -> Layout:
    """The :class:`Layout` of ``geometry`` in one direction (cached)."""
    plan = plane_plan(geometry)
    rows, cols = plan.rows, plan.cols
    phases = rows.stride * cols.stride
    if transposed:
        (top, height), (margin, width) = (_axis(axis.out_length, axis.split, axis.phase_shift)
                                          for axis in (rows, cols))
        return Layout(top, margin, height, width, rows.split, cols.split, 1, phases,
                      *_terms(geometry, plan, width, True))
    (top, height), (margin, width) = (_axis(axis.split, axis.out_length, axis.tap_shift) for axis in (rows, cols))
    return Layout(top, margin, height, width, rows.out_length, cols.out_length, phases, 1,
                  *_terms(geometry, plan, width, False))


def _blocks(geometry, transposed: bool) -> tuple[int, int]:
    """``(source, target)`` leading-axes rows."""
    lead = plane_plan(geometry).lead
    return (lead.output_size, lead.input_size) if transposed else (lead.input_size, lead.output_size)


def sample_bytes(geometry, transposed: bool, itemsize: int) -> int:
    """Bytes of the source and target planes of one sample."""
    plan = layout(geometry, transposed)
    source, target = _blocks(geometry, transposed)
    channels = ((geometry.out_channels, geometry.in_channels) if transposed
                else (geometry.in_channels, geometry.out_channels))
    return ((source * plan.source_phases * channels[0] + target * plan.target_phases * channels[1])
            * plan.plane * itemsize)


def weight_bytes(geometry, transposed: bool, itemsize: int) -> int:
    """Bytes of the weight in the tap-major layout and of the stacks of several taps."""
    taps = math.prod(geometry.kernel_shape) + sum(len(key) for key in layout(geometry, transposed).stacks
                                                  if len(key) > 1)
    return taps * geometry.out_channels * geometry.in_channels_per_group * itemsize


def chunk_samples(batch: int, per_sample: int, budget: int) -> int:
    """Samples per chunk: as many as fit ``budget`` (at least one)."""
    return max(1, min(batch, budget // max(per_sample, 1)))


@jit
def _to_planes(x, top, margin, out, chunk, chunks):
    """``out[a, n, top + j_b, margin + j_c, p_b, p_c, c] = x[n, c, a, j_b*s_b + p_b, j_c*s_c + p_c]``,
    zero elsewhere; ``out`` is ``(lead, N, rows, width, s_b, s_c, C)``."""
    batch, channels, lead, length_b, length_c = x.shape
    rows, width, stride_b, stride_c = out.shape[2], out.shape[3], out.shape[4], out.shape[5]
    first, last = task_range(chunk, chunks, lead * batch * rows)
    for task in range(first, last):
        a, n, j = task // (batch * rows), (task // rows) % batch, task % rows
        plane_row = out[a, n, j]
        plane_row[...] = 0
        for pb in range(stride_b):
            ib = (j - top) * stride_b + pb
            if j >= top and ib < length_b:
                target = plane_row[:, pb]
                for c in range(channels):
                    source = x[n, c, a, ib]
                    for pc in range(stride_c):
                        for jc in range((length_c - pc + stride_c - 1) // stride_c):
                            target[margin + jc, pc, c] = source[jc * stride_c + pc]


@jit
def _from_planes(planes, top, margin, out, chunk, chunks):
    """``out[n, c, a, b, j] = planes[a, n, top + b // s_b, margin + j // s_c, b % s_b, j % s_c, c]``;
    ``planes`` is ``(lead, N, rows, width, s_b, s_c, C)``."""
    batch, channels, lead, length_b, length_c = out.shape
    width, stride_b, stride_c = planes.shape[3], planes.shape[4], planes.shape[5]
    first, last = task_range(chunk, chunks, batch * lead * length_b)
    for task in range(first, last):
        n, a, b = task // (lead * length_b), (task // length_b) % lead, task % length_b
        source = planes[a, n, top + b // stride_b, :, b % stride_b]
        for c in range(channels):
            target = out[n, c, a, b]
            for pc in range(stride_c):
                for jc in range((length_c - pc + stride_c - 1) // stride_c):
                    target[jc * stride_c + pc] = source[margin + jc, pc, c]


def _stacked_weights(weight, geometry, transposed) -> list:
    """Per weight stack of the layout, ``(groups, rows, columns)``: the taps' ``(channels in,
    channels out)`` matrices (per group) on top of each other (forward) or side by side."""
    groups, stacks = geometry.groups, layout(geometry, transposed).stacks
    w = weight.reshape(groups, geometry.out_channels_per_group, geometry.in_channels_per_group, -1)
    taps = np.ascontiguousarray(w.transpose(3, 0, 1, 2) if transposed else w.transpose(3, 0, 2, 1))
    zeros = np.zeros_like(taps[0])
    if transposed:
        return [taps[key[0]] if len(key) == 1 else np.concatenate(
            [zeros if t is None else taps[t] for t in key], axis=2) for key in stacks]
    return [taps[key[0]] if len(key) == 1 else np.concatenate(
        [zeros if t is None else taps[t] for t in key], axis=1) for key in stacks]


def _run(data, weight, geometry, transposed, out):
    """Every chunk of samples: ``data`` into planes, the GEMMs, the results into ``out``."""
    plan, shape = layout(geometry, transposed), plane_plan(geometry)
    strides = (shape.rows.stride, shape.cols.stride)
    source_blocks, target_blocks = _blocks(geometry, transposed)
    source_strides, target_strides = ((1, 1), strides) if transposed else (strides, (1, 1))
    weights = _stacked_weights(weight, geometry, transposed)
    channels = (data.shape[1], out.shape[1])
    piece = max(plan.width, PIECE_BYTES // (plan.target_phases * channels[1] * data.itemsize))
    samples = chunk_samples(data.shape[0], sample_bytes(geometry, transposed, data.itemsize),
                            chunk_budget(out.nbytes + weight_bytes(geometry, transposed, data.itemsize)))
    for start in range(0, data.shape[0], samples):
        stop = min(start + samples, data.shape[0])
        n = stop - start
        source = np.empty((source_blocks, n, plan.rows, plan.width, *source_strides, channels[0]), dtype=data.dtype)
        run_chunks(_to_planes, chunk_count(source_blocks * n * plan.rows), data[start:stop], plan.top,
                   plan.margin, source)
        target = np.empty((target_blocks, n, plan.rows, plan.width, *target_strides, channels[1]), dtype=data.dtype)
        shifted_gemms(target.reshape(target_blocks, n * plan.plane, -1),
                      source.reshape(source_blocks, n * plan.plane, -1),
                      weights, plan.terms, plan.span(n), piece, channels)
        del source
        run_chunks(_from_planes, chunk_count(n * out.shape[2] * out.shape[3]), target, plan.top, plan.margin,
                   out[start:stop])
        del target
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
