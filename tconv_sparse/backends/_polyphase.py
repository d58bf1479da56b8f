"""Polyphase (sub-pixel) planes: the layout and helpers behind every fast kernel.

The fast kernels see a geometry in three levels: the *leading* spatial axes
(all but the last two) fused into one axis and handled through the index
tables of :func:`~tconv_sparse.core.index_maps.product_map` (every padding mode,
any rank), and the last two axes, the *plane* (rows ``b``, columns ``c``;
a 1-D geometry is a plane of one row), handled by long contiguous loops that
vectorise.

Per plane axis, forward output ``o`` reads input ``i = o*s + t*d - lo``
through tap ``t``. Writing ``t*d - lo = shift*s + phase`` (``0 <= phase < s``)
gives ``i = (o + shift)*s + phase``: in the *phase-split* input
``xs[phase, j] = x[j*s + phase]`` every tap is a plain shift,
``out[o] += w[t] * xs[phase(t), o + shift(t)]``. Read backwards, output phase
``r`` of the transposed convolution, ``x[q*s + r]``, is a stride-1
correlation of ``y`` with the sub-kernel of the taps of phase ``r``:
``x[q*s + r] += w[t] * y[q - shift(t)]``.

In a plane stored row-major with a few zero *margin* columns (a row stride
``width`` a little larger than the row), a tap ``(t_b, t_c)`` is one flat
shift, ``shift_b * width + shift_c``: one pass over a whole plane (or a tile
of it) per tap, however short the rows are. Rows that a tap would read outside
the input are clipped from the pass (a contiguous sub-range); columns read the
zero margins. Outputs land in the same padded layout, and only their valid
columns are copied out. Zero padding costs nothing; other padding modes pad
the plane axes explicitly (forward) or fold them back (transpose).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core import scratch
from tconv_sparse.core.config import chunk_count, jit, run_chunks, task_range
from tconv_sparse.core.index_maps import AxisMap, axis_map, map_bytes, product_map, product_map_bytes
from tconv_sparse.backends._numpy_ops import fold

__all__ = [
    "TILE_ELEMENTS",
    "AxisPhases",
    "PlanePlan",
    "plane_plan",
    "plane_view",
    "tiling",
    "fold_planes",
    "split_planes",
    "pad_planes",
    "shifted_range",
    "add_terms",
    "copy_columns",
    "store_plane",
]

#: flat elements per task (per phase plane) that keep a task's buffers in L1/L2
TILE_ELEMENTS = 2048
#: shortest tile of a single-row plane worth a task of its own
_MIN_TILE = 256
#: tasks wanted per call, for load balance on up to this many / 4 threads; the tiles (and so the
#: order of the additions) never depend on the thread count, only the chunks of tasks do
_TASKS_WANTED = 16


@dataclass(frozen=True)
class AxisPhases:
    """Polyphase tables of one plane axis, in the kernels' coordinates.

    Attributes
    ----------
    length : int
        Input length (the padded length when the axis is padded explicitly).
    out_length : int
        Forward output length.
    stride : int
    tap_shift, tap_phase : numpy.ndarray
        Per tap ``t``: ``t*d - lo = tap_shift*s + tap_phase``.
    phase_ptr, phase_tap, phase_shift : numpy.ndarray
        Per output phase ``r`` of the transposed convolution: the taps
        ``phase_tap[phase_ptr[r]:phase_ptr[r+1]]`` of phase ``r`` and the
        offsets ``phase_shift = -tap_shift`` of the inputs they read.
    """

    length: int
    out_length: int
    stride: int
    tap_shift: np.ndarray
    tap_phase: np.ndarray
    phase_ptr: np.ndarray
    phase_tap: np.ndarray
    phase_shift: np.ndarray

    @property
    def kernel(self) -> int:
        """Taps on this axis."""
        return len(self.tap_shift)

    @cached_property
    def most_phase_taps(self) -> int:
        """Most taps of one output phase of the transposed convolution."""
        return int(np.diff(self.phase_ptr).max())

    @property
    def split(self) -> int:
        """Entries per phase, ``ceil(length / stride)``: the phase-split length and the
        number of outputs per phase of the transposed convolution."""
        return -(-self.length // self.stride)


def _axis_phases(length, out_length, kernel, stride, dilation, lo) -> AxisPhases:
    stride = 1 if out_length == 1 else stride  # one output: the stride is never used
    offset = np.arange(kernel, dtype=np.int64) * dilation - lo
    tap_phase, tap_shift = offset % stride, offset // stride
    phase_tap = np.argsort(tap_phase, kind="stable").astype(np.int64)
    phase_ptr = np.concatenate(([0], np.cumsum(np.bincount(tap_phase, minlength=stride))))
    return AxisPhases(length, out_length, stride, tap_shift, tap_phase, phase_ptr.astype(np.int64),
                      phase_tap, -tap_shift[phase_tap])


@dataclass(frozen=True)
class PlanePlan:
    """Everything the plane kernels need about one geometry.

    Attributes
    ----------
    lead : AxisMap
        Product of the leading axes' maps (one trivial row for 1-D and 2-D).
    rows, cols : AxisPhases
        The plane's axes (``rows`` is a trivial axis of length 1 for 1-D).
    padded_axes : tuple of int
        Spatial axes padded (forward) / folded (transpose) explicitly: the
        plane axes when the padding mode is not ``"zeros"``.
    split_margin, split_width : int
        Forward layout: a phase-split input row holds its ``cols.split``
        entries from column ``split_margin`` on, in rows of ``split_width``;
        output ``o`` with column tap shift ``h`` reads column
        ``split_margin + o + h``.
    pad_margin, pad_width : int
        Transposed layout: an input row holds its ``cols.out_length`` entries
        from column ``pad_margin`` on, in rows of ``pad_width``; output phase
        entry ``q`` with offset ``c`` reads column ``pad_margin + q + c``.
    pad_top, pad_rows : int
        The same for the rows, in the layout of the GEMM path, whose planes
        also carry zero margin rows: input rows start at row ``pad_top`` of
        planes of ``pad_rows`` rows, so that every tap reads inside its own
        plane and one flat pass can run over the planes of many samples.
    """

    lead: AxisMap
    rows: AxisPhases
    cols: AxisPhases
    padded_axes: tuple
    split_margin: int
    split_width: int
    pad_margin: int
    pad_width: int
    pad_top: int
    pad_rows: int

    @cached_property
    def most_lead_taps(self) -> int:
        """Most leading-axes taps of one forward output row."""
        lead = self.lead
        return int(np.diff(lead.tap_ptr[lead.row_ptr]).max())

    @cached_property
    def most_lead_entries(self) -> int:
        """Most ``(output, tap)`` entries of one leading-axes input row (transposed gather)."""
        return int(np.diff(self.lead.back_ptr).max())

    @cached_property
    def forward_taps(self) -> tuple:
        """``(offset, lo, hi)``, per plane tap ``t_b * k_cols + t_c`` of the forward kernel: its
        flat offset in the ``(s_b, s_c, split_b, split_width)`` phase-split planes of one input
        row (phase plane, row and column shift, margin), and the flat output range ``[lo, hi)``
        of a plane whose reads stay inside the input rows."""
        rows, cols, width = self.rows, self.cols, self.split_width
        tb, tc = np.divmod(np.arange(rows.kernel * cols.kernel, dtype=np.int64), cols.kernel)
        shift_b = rows.tap_shift[tb]
        offset = ((rows.tap_phase[tb] * cols.stride + cols.tap_phase[tc]) * (rows.split * width)
                  + shift_b * width + self.split_margin + cols.tap_shift[tc])
        return offset, -shift_b * width, (rows.split - shift_b) * width

    @cached_property
    def transpose_taps(self) -> tuple:
        """``(phase_ptr, offset, tap, lo, hi)``: the plane taps of the transposed convolution,
        by output phase ``r_b * s_c + r_c`` (those of phase ``p`` are
        ``phase_ptr[p]:phase_ptr[p + 1]``): per tap its flat offset in a padded input plane
        (``pad_width`` columns, margin included), its index ``t_b * k_cols + t_c``, and the
        flat range ``[lo, hi)`` of phase entries whose reads stay inside the input rows."""
        rows, cols, width = self.rows, self.cols, self.pad_width
        jb, jc, counts = [], [], [0]
        for rb in range(rows.stride):
            for rc in range(cols.stride):
                b, c = np.meshgrid(np.arange(rows.phase_ptr[rb], rows.phase_ptr[rb + 1]),
                                   np.arange(cols.phase_ptr[rc], cols.phase_ptr[rc + 1]), indexing="ij")
                jb.append(b.ravel())
                jc.append(c.ravel())
                counts.append(b.size)
        jb, jc = np.concatenate(jb).astype(np.int64), np.concatenate(jc).astype(np.int64)
        shift_b = rows.phase_shift[jb]
        return (np.cumsum(counts, dtype=np.int64), shift_b * width + self.pad_margin + cols.phase_shift[jc],
                rows.phase_tap[jb] * cols.kernel + cols.phase_tap[jc], -shift_b * width,
                (rows.out_length - shift_b) * width)

    @property
    def spatial(self) -> tuple:
        """Spatial input shape the kernels see, ``(lead, rows, cols)`` lengths."""
        return (self.lead.input_size, self.rows.length, self.cols.length)

    @property
    def out_spatial(self) -> tuple:
        """Spatial forward-output shape in the same three levels."""
        return (self.lead.output_size, self.rows.out_length, self.cols.out_length)


#: a plane axis whose layout (phases x padded row) exceeds this many times its input plus its
#: work (outputs x taps), plus :data:`_LAYOUT_SLACK`, goes through the index tables instead
_LAYOUT_FACTOR = 4
_LAYOUT_SLACK = 64


def _layout_is_compact(n, length, out, kernel, stride, dilation, lo) -> bool:
    """Whether the plane layout of an axis (``stride`` phases of a padded row, in both the
    forward and the transposed layout) stays within a few times the axis' input and work.

    It does for every ordinary geometry; it does not when the stride or the
    dilation is far larger than the input (with a huge padding), where the
    phases and the margins would be mostly empty. Closed form: ``kernel`` entries.
    """
    stride = 1 if out == 1 else stride
    shift = (np.arange(kernel, dtype=np.int64) * dilation - lo) // stride
    split = -(-length // stride)
    low, high = int(shift.min()), int(shift.max())
    split_width = max(0, -low) + max(split, out + high)
    pad_width = max(0, high) + max(out, split - low)
    return stride * max(split_width, pad_width) <= _LAYOUT_FACTOR * (n + out * kernel) + _LAYOUT_SLACK


def _plane_axes(geometry, folded) -> tuple:
    """The trailing axes (at most two) laid out as a plane; the others go through index tables."""
    plane = []
    for axis in range(geometry.ndim - 1, max(geometry.ndim - 3, -1), -1):
        lo = 0 if folded else geometry.padding[axis][0]
        length = geometry.padded_shape[axis] if folded else geometry.input_shape[axis]
        if not _layout_is_compact(geometry.input_shape[axis], length, geometry.output_shape[axis],
                                  geometry.kernel_shape[axis], geometry.stride[axis],
                                  geometry.dilation[axis], lo):
            break
        plane.insert(0, axis)
    return tuple(plane)


def _lead_map(geometry, lead_axes) -> AxisMap:
    triples = geometry.axis_triples
    v.check_bytes("the index maps of the leading axes", sum(
        map_bytes(triples[a], geometry.output_shape[a], geometry.input_shape[a],
                  geometry.kernel_shape[a]) for a in lead_axes) + product_map_bytes(
        math.prod(triples[a] for a in lead_axes), math.prod(geometry.output_shape[a] for a in lead_axes),
        math.prod(geometry.input_shape[a] for a in lead_axes)))
    return product_map([
        axis_map(geometry.input_shape[a], geometry.output_shape[a], geometry.kernel_shape[a],
                 geometry.stride[a], geometry.dilation[a], geometry.padding[a][0], geometry.padding_mode)
        for a in lead_axes
    ])


@lru_cache(maxsize=64)
def plane_plan(geometry) -> PlanePlan:
    """The :class:`PlanePlan` of a geometry (cached: geometries are immutable and hashable).

    The last two axes form the plane, unless their layout would not be compact
    (:func:`_layout_is_compact`: a stride or dilation far larger than the
    input): such an axis, and every axis before it, goes through the index
    tables of the leading axes instead, so memory and time follow the work.
    """
    ndim = geometry.ndim
    folded = geometry.padding_mode != "zeros"
    plane = _plane_axes(geometry, folded)
    lead = _lead_map(geometry, tuple(range(ndim - len(plane))))
    axes = [_axis_phases(1, 1, 1, 1, 1, 0)] * (2 - len(plane))
    for axis in plane:
        lo = 0 if folded else geometry.padding[axis][0]
        length = geometry.padded_shape[axis] if folded else geometry.input_shape[axis]
        axes.append(_axis_phases(length, geometry.output_shape[axis], geometry.kernel_shape[axis],
                                 geometry.stride[axis], geometry.dilation[axis], lo))
    rows, cols = axes
    shift = cols.tap_shift
    split_margin = max(0, -int(shift.min()))
    pad_margin = max(0, int(shift.max()))
    pad_top = max(0, int(rows.tap_shift.max()))
    return PlanePlan(
        lead=lead, rows=rows, cols=cols,
        padded_axes=tuple(a for a in plane if any(geometry.padding[a])) if folded else (),
        split_margin=split_margin,
        split_width=split_margin + max(cols.split, cols.out_length + int(shift.max())),
        pad_margin=pad_margin,
        pad_width=pad_margin + max(cols.out_length, cols.split - int(shift.min())),
        pad_top=pad_top,
        pad_rows=pad_top + max(rows.out_length, rows.split - int(rows.tap_shift.min())),
    )


def plane_view(array: np.ndarray, spatial) -> np.ndarray:
    """View ``(N, C, *spatial)`` as ``(N, C, lead, rows, cols)`` (``spatial``: the three lengths)."""
    return array.reshape(array.shape[0], array.shape[1], *spatial)


def tiling(outer_tasks: int, rows: int, width: int) -> tuple[int, int]:
    """``(tile, chunks)`` for ``outer_tasks`` planes of ``rows x width`` flat entries.

    A tile is whole rows, about :data:`TILE_ELEMENTS` entries, small enough
    that there are :data:`_TASKS_WANTED` tasks; ``chunks`` parallel chunks (a
    few per thread) each allocate their scratch once and run their tasks in turn.
    The tile does not depend on the thread count, so neither do the results.
    """
    total = rows * width
    needed = -(-_TASKS_WANTED // outer_tasks)
    tile = min(TILE_ELEMENTS, -(-total // needed))
    if rows > 1:
        tile = max(width, tile - tile % width)
    else:
        tile = min(total, max(tile, _MIN_TILE))
    tasks = outer_tasks * -(-total // tile)
    return tile, chunk_count(tasks)


def fold_planes(out: np.ndarray, geometry, plan: PlanePlan) -> np.ndarray:
    """The transposed kernels' ``(N, C, lead, rows, cols)`` output in the layout of
    ``(N, C, *input_shape)``, its explicitly padded axes folded back."""
    spatial = tuple(geometry.padded_shape[a] if a in plan.padded_axes else n
                    for a, n in enumerate(geometry.input_shape))
    out = out.reshape(out.shape[0], out.shape[1], *spatial)
    return fold(out, geometry, axes=plan.padded_axes) if plan.padded_axes else out


@jit
def _split(x, length_b, length_c, stride_b, stride_c, split_b, width, margin, out, chunk, chunks):
    """Flat (1-D C-contiguous) ``x`` ``(planes, length_b, length_c)`` into flat ``out``
    ``(planes, s_b, s_c, split_b, width)``; each task writes one plane. One loop over the rows,
    whose indices are stepped rather than divided out of the row number (a division per
    row cost more than copying its entries)."""
    first_task, end_task = task_range(chunk, chunks, len(x) // (length_b * length_c))
    rows_per_plane = stride_b * stride_c * split_b
    jb, pc, pb, plane = 0, 0, 0, first_task
    valid = (length_c + stride_c - 1) // stride_c
    target, step = np.uint64(first_task * rows_per_plane * width), np.uint64(stride_c)
    for _ in range(first_task * rows_per_plane, end_task * rows_per_plane):
        ib = jb * stride_b + pb
        count = valid if ib < length_b else 0
        source = np.uint64((plane * length_b + ib) * length_c + pc)
        for j in range(np.uint64(width)):
            out[target + j] = 0
        first = target + np.uint64(margin)
        for j in range(np.uint64(count)):
            out[first + j] = x[source + j * step]
        target += np.uint64(width)
        jb += 1
        if jb == split_b:
            jb, pc = 0, pc + 1
            if pc == stride_c:
                pc, pb = 0, pb + 1
                if pb == stride_b:
                    pb, plane = 0, plane + 1
            valid = (length_c - pc + stride_c - 1) // stride_c


def split_planes(x: np.ndarray, plan: PlanePlan) -> np.ndarray:
    """Phase-split planes of ``x`` ``(N, C, lead, rows, cols)`` (the forward layout).

    Returns ``(N, C, lead, s_b, s_c, split_b, split_width)`` with
    ``out[..., p_b, p_c, j_b, split_margin + j_c] = x[..., j_b*s_b + p_b, j_c*s_c + p_c]``,
    zero elsewhere. (The kernel sees flat arrays: one specialization per dtype.) A work buffer of
    :mod:`~tconv_sparse.core.scratch`: give it back when done.
    """
    rows, cols = plan.rows, plan.cols
    out = scratch.take((*x.shape[:3], rows.stride, cols.stride, rows.split, plan.split_width), x.dtype)
    run_chunks(_split, chunk_count(math.prod(x.shape[:3])), np.ascontiguousarray(x).reshape(-1),
               rows.length, cols.length, rows.stride, cols.stride, rows.split, plan.split_width,
               plan.split_margin, out.reshape(-1))
    return out


def pad_planes(y: np.ndarray, plan: PlanePlan) -> np.ndarray:
    """``y`` ``(N, C, lead, rows, cols)`` placed in the zero-padded transposed layout.

    Returns ``(N, C, lead, rows, pad_width)`` with the rows at column
    ``pad_margin``. (NumPy: one copy, and zeros written only into the margins, not first over
    the whole buffer.) A work buffer of :mod:`~tconv_sparse.core.scratch`: give it back when
    done.
    """
    cols, margin = y.shape[-1], plan.pad_margin
    out = scratch.take((*y.shape[:-1], plan.pad_width), y.dtype)
    out[..., :margin] = 0
    out[..., margin + cols:] = 0
    out[..., margin:margin + cols] = y
    return out


# The helpers below index with unsigned offsets: Numba then emits no negative-index
# wraparound test per access, and LLVM vectorises the loops. Callers pass ranges
# that are already clipped to the arrays (``shifted_range``), so no index is negative.
# They are inlined into the kernels that call them (``jit(inline=True)``): one compilation
# per kernel, none of their own.

@jit(inline=True)
def shifted_range(start, stop, shift, length):
    """Clip ``[start, stop)`` so that ``q + shift`` stays in ``[0, length)``."""
    return max(start, -shift), min(stop, length - shift)


@jit(inline=True)
def add_terms(acc, offset, source, shifts, scales, starts, stops, count):
    """``acc[offset + q] += scales[m] * source[q + shifts[m]]`` for every term ``m < count``
    and ``q`` in ``[starts[m], stops[m])`` inside ``source``.

    Terms go four at a time through one pass over the range they share (one
    load and store of ``acc`` per four products instead of four), the few
    entries outside it and the last terms one at a time. (One function with
    one loop per shape: each helper function or call site would be compiled,
    and re-optimised inside every kernel, on its own.)
    """
    m = np.int64(0)
    while m < count:
        group = min(4, count - m)
        lo, hi = starts[m], stops[m]
        for k in range(m, m + group):
            first, last = shifted_range(starts[k], stops[k], shifts[k], len(source))
            lo, hi = max(lo, first), min(hi, last)
        if group == 4 and hi > lo:
            target = np.uint64(offset + lo)
            p0, p1 = np.uint64(lo + shifts[m]), np.uint64(lo + shifts[m + 1])
            p2, p3 = np.uint64(lo + shifts[m + 2]), np.uint64(lo + shifts[m + 3])
            w0, w1, w2, w3 = scales[m], scales[m + 1], scales[m + 2], scales[m + 3]
            for j in range(np.uint64(hi - lo)):
                acc[target + j] += (w0 * source[p0 + j] + w1 * source[p1 + j]) + (w2 * source[p2 + j]
                                                                                  + w3 * source[p3 + j])
        else:
            hi = lo  # nothing fused: the single passes below cover every whole range
        for k in range(2 * group):  # the entries of term m + k // 2 below (k even) or above [lo, hi)
            term = m + k // 2
            first, last = shifted_range(starts[term], stops[term], shifts[term], len(source))
            first, last = (first, min(lo, last)) if k % 2 == 0 else (max(hi, first), last)
            if last > first:
                shift, scale, target = shifts[term], scales[term], np.uint64(offset + first)
                begin = np.uint64(first + shift)
                for j in range(np.uint64(last - first)):
                    acc[target + j] += scale * source[begin + j]
        m += group


@jit(inline=True)
def copy_columns(flat, first, count, width, columns, out):
    """Copy the valid columns of a padded flat range into the rows of ``out``.

    ``flat[f - first]`` (``count`` entries) holds padded entry
    ``f = row * width + column``; those with ``column < columns`` go to
    ``out[row, column]``.
    """
    stop = first + count
    for row in range(first // width, (stop - 1) // width + 1):
        lo, hi = max(first - row * width, 0), min(stop - row * width, columns)
        if hi > lo:
            target, source = out[row], np.uint64(row * width + lo - first)
            for j in range(np.uint64(hi - lo)):
                target[np.uint64(lo) + j] = flat[source + j]


@jit(inline=True)
def store_plane(phases, offset, first, count, width, columns, out):
    """Interleave the phase planes of a padded flat range into the output plane.

    ``phases[r_b, r_c, offset + f - first]`` for ``f`` in ``[first, first + count)``
    holds phase ``(r_b, r_c)`` of padded entry ``f = q_b * width + q_c``; those
    with ``q_c < columns`` go to ``out[q_b*s_b + r_b, q_c*s_c + r_c]`` where that
    is inside ``out``, ``(s_b, s_c)`` being the first two axes of ``phases``.
    (Column stride 2, the common one, interleaves two phases in one pass that
    vectorises; the other entries go one strided pass per phase: few, short
    loops, which compile fast.)
    """
    stride_b, stride_c, tile = phases.shape
    rows_out, cols_out = out.shape
    flat, target, step = phases.reshape(phases.size), out.reshape(out.size), np.uint64(stride_c)
    stop = first + count
    for q in range(first // width, (stop - 1) // width + 1):
        lo, hi = max(first - q * width, 0), min(stop - q * width, columns)
        for rb in range(min(stride_b, rows_out - q * stride_b)):
            source = rb * stride_c * tile + q * width - first + offset
            row = (q * stride_b + rb) * cols_out
            rest = lo
            if stride_c == 2:  # both phases of column pairs that are whole
                rest = max(min(hi, cols_out // 2), lo)
                even, odd, start = np.uint64(source), np.uint64(source + tile), np.uint64(row)
                for qc in range(np.uint64(lo), np.uint64(rest)):
                    target[start + qc * step] = flat[even + qc]
                    target[start + qc * step + np.uint64(1)] = flat[odd + qc]
            for rc in range(stride_c):
                end = max(min(hi, (cols_out - rc + stride_c - 1) // stride_c), rest)
                phase, start = np.uint64(source + rc * tile), np.uint64(row + rc)
                for qc in range(np.uint64(rest), np.uint64(end)):
                    target[start + qc * step] = flat[phase + qc]
