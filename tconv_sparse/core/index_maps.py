"""Index maps: which input each kernel tap reads, per axis, padding mode included.

For one spatial axis a convolution is the set of triples ``(o, i, t)``: output
``o`` reads input ``i`` through tap ``t``. Padding modes only change ``i``:
the padded position ``p = o * stride + t * dilation`` maps to
``i = p - lo`` (zeros: dropped outside ``[0, n)``), wrapped (circular),
mirrored (reflect) or clamped (replicate). An N-D convolution's triples are
the Cartesian product of its axes' triples, so every backend gets every
padding mode from the same tables: the forward convolution reads through them,
the transpose scatters back through them.

An :class:`AxisMap` stores the triples sorted two ways:

* by output (``row_ptr``, ``col``, ``tap_ptr``, ``tap``): per output ``o`` the
  distinct inputs ``i`` it reads in increasing order (one *pair* each), and per
  pair the taps that land on it (several only when padding duplicates an input).
  These are the rows of ``C``.
* by input (``back_ptr``, ``back_out``, ``back_tap``): per input ``i`` every
  ``(o, t)`` that reads it. These are the columns of ``C`` (the gather view of
  the transposed convolution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["AxisMap", "axis_map", "transpose_map", "product_map", "padding_index", "padding_matrix",
           "tap_counts", "map_bytes", "product_map_bytes"]


@dataclass(frozen=True)
class AxisMap:
    """The ``(output, input, tap)`` triples of one axis or of a product of axes."""

    output_size: int
    input_size: int
    kernel_size: int
    row_ptr: np.ndarray
    col: np.ndarray
    tap_ptr: np.ndarray
    tap: np.ndarray
    back_ptr: np.ndarray
    back_out: np.ndarray
    back_tap: np.ndarray

    @property
    def num_pairs(self) -> int:
        """Number of distinct ``(output, input)`` pairs (nonzeros of the axis' pattern)."""
        return len(self.col)

    @property
    def has_duplicates(self) -> bool:
        """Whether some input is read by more than one tap of the same output."""
        return len(self.tap) != len(self.col)


def padding_index(n: int, lo: int, padded_size: int, padding_mode: str) -> np.ndarray:
    """Input index of each padded position ``0 .. padded_size - 1`` (``-1``: a zero).

    Examples
    --------
    >>> from tconv_sparse.core.index_maps import padding_index
    >>> padding_index(4, 2, 8, "reflect").tolist()
    [2, 1, 0, 1, 2, 3, 2, 1]
    >>> padding_index(4, 2, 8, "circular").tolist()
    [2, 3, 0, 1, 2, 3, 0, 1]
    """
    return _map_positions(np.arange(padded_size, dtype=np.int64) - lo, n, padding_mode)


def _map_positions(j: np.ndarray, n: int, padding_mode: str) -> np.ndarray:
    if padding_mode == "zeros":
        return np.where((j >= 0) & (j < n), j, -1)
    if padding_mode == "circular":
        return np.mod(j, n)
    if padding_mode == "replicate":
        return np.clip(j, 0, n - 1)
    if n == 1:  # reflect of a single sample (only zero padding is valid then)
        return np.zeros_like(j)
    period = 2 * (n - 1)
    j = np.mod(j, period)
    return np.where(j < n, j, period - j)


def padding_matrix(n: int, lo: int, padded_size: int, padding_mode: str) -> sp.csr_array:
    """The 0/1 matrix ``P`` of shape ``(padded_size, n)`` with ``xpad = P @ x``.

    Its transpose folds a padded-domain array back onto the input: crop for
    zeros, wrap-add for circular, mirror-add for reflect, edge-add for replicate.
    """
    index = padding_index(n, lo, padded_size, padding_mode)
    rows = np.flatnonzero(index >= 0)
    return sp.csr_array(
        (np.ones(len(rows)), (rows, index[rows])), shape=(padded_size, n)
    )


def _csr_pointer(rows: np.ndarray, num_rows: int) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=num_rows)))).astype(np.int64)


def _first_outputs(n, out, kernel, stride, dilation, lo):
    """Per tap, the outputs ``[first, last]`` whose zero-padded read lands on a real input."""
    offset = np.arange(kernel, dtype=np.int64) * dilation - lo  # position read by output 0
    first = np.maximum(-(offset // stride), 0)  # ceil(-offset / stride), clipped
    last = np.minimum((n - 1 - offset) // stride, out - 1)
    return first, last


def tap_counts(n: int, out: int, kernel: int, stride: int, dilation: int, lo: int,
               padding_mode: str) -> np.ndarray:
    """Per tap, how many outputs read a real input through it (closed form, ``kernel`` entries).

    With zero padding these are the tap's stored entries in one channel block of
    the axis' pattern; with the other modes every read is real (``out`` each).

    Examples
    --------
    >>> from tconv_sparse.core.index_maps import tap_counts
    >>> tap_counts(4, 4, 3, 1, 1, 1, "zeros").tolist()
    [3, 4, 3]
    >>> tap_counts(6, 2, 3, 2**40, 1, 2**40, "zeros").tolist()  # only output 1 reads the input
    [1, 1, 1]
    """
    if padding_mode != "zeros":
        return np.full(kernel, out, dtype=np.int64)
    first, last = _first_outputs(n, out, kernel, stride, dilation, lo)
    return np.maximum(last - first + 1, 0)


def map_bytes(triples: int, outputs: int, inputs: int, kernel: int) -> int:
    """Peak bytes of building one :class:`AxisMap` of ``triples`` (output, input, tap) triples."""
    return 8 * (14 * triples + 2 * (outputs + inputs) + 4 * kernel + 8)


def product_map_bytes(triples: int, outputs: int, inputs: int) -> int:
    """Peak bytes of :func:`product_map` of maps with these products of sizes."""
    return 8 * (14 * triples + 6 * (outputs + inputs) + 8)


def axis_map(n: int, out: int, kernel: int, stride: int, dilation: int, lo: int,
             padding_mode: str) -> AxisMap:
    """Build the :class:`AxisMap` of one axis (vectorised, no Python loop over pixels).

    Time and memory are proportional to the triples (and the sizes of the
    axis): with zero padding only the reads of real inputs are generated, so a
    huge padding or dilation costs nothing.

    Examples
    --------
    Input ``[a, b, c, d]``, kernel of 3, stride 1, zero padding 1: output 0
    reads inputs 0 and 1 through taps 1 and 2.

    >>> from tconv_sparse.core.index_maps import axis_map
    >>> m = axis_map(4, 4, 3, 1, 1, 1, "zeros")
    >>> m.col[m.row_ptr[0]:m.row_ptr[1]].tolist(), m.tap[m.tap_ptr[0]:m.tap_ptr[2]].tolist()
    ([0, 1], [1, 2])
    """
    if padding_mode == "zeros":
        first, last = _first_outputs(n, out, kernel, stride, dilation, lo)
        counts = np.maximum(last - first + 1, 0)
        taps = np.repeat(np.arange(kernel, dtype=np.int64), counts)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        outputs = np.arange(len(taps), dtype=np.int64) - np.repeat(starts - first, counts)
        inputs = outputs * stride + taps * dilation - lo
        return _from_triples(out, n, kernel, outputs, inputs, taps)
    outputs = np.repeat(np.arange(out, dtype=np.int64), kernel)
    taps = np.tile(np.arange(kernel, dtype=np.int64), out)
    inputs = _map_positions(outputs * stride + taps * dilation - lo, n, padding_mode)
    return _from_triples(out, n, kernel, outputs, inputs, taps)


def _from_triples(out, n, kernel, outputs, inputs, taps) -> AxisMap:
    order = np.lexsort((taps, inputs, outputs))
    o, i, t = outputs[order], inputs[order], taps[order]
    new_pair = np.ones(len(o), dtype=bool)
    new_pair[1:] = (o[1:] != o[:-1]) | (i[1:] != i[:-1])
    pair_start = np.flatnonzero(new_pair)
    back = np.lexsort((taps, outputs, inputs))
    return AxisMap(
        output_size=out,
        input_size=n,
        kernel_size=kernel,
        row_ptr=_csr_pointer(o[pair_start], out),
        col=i[pair_start],
        tap_ptr=np.append(pair_start, len(o)).astype(np.int64),
        tap=t,
        back_ptr=_csr_pointer(inputs, n),
        back_out=outputs[back],
        back_tap=taps[back],
    )


def transpose_map(m: AxisMap) -> AxisMap:
    """The map of the transposed axis: the same triples with inputs as outputs.

    Its rows are the rows of ``C.T`` (the product of the transposed axes'
    maps, with the channel-swapped kernel, is ``C.T`` itself).
    """
    inputs = np.repeat(np.arange(m.input_size, dtype=np.int64), np.diff(m.back_ptr))
    return _from_triples(m.input_size, m.output_size, m.kernel_size, inputs, m.back_out, m.back_tap)


def _ragged_product(ptr_a, rows_a, ptr_b, rows_b):
    """Entries of the Cartesian products of ragged rows ``rows_a[r] x rows_b[r]``.

    Returns the pointer of the product rows and, for each product entry, the
    entry indices into ``a`` and ``b`` (``a`` major, so sorted orders are kept).
    """
    count_b = np.diff(ptr_b)[rows_b]
    counts = np.diff(ptr_a)[rows_a] * count_b
    ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    row = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    local = np.arange(ptr[-1], dtype=np.int64) - ptr[row]
    return ptr, ptr_a[rows_a][row] + local // count_b[row], ptr_b[rows_b][row] + local % count_b[row]


def _product2(a: AxisMap, b: AxisMap) -> AxisMap:
    grid_a = np.repeat(np.arange(a.output_size), b.output_size)
    grid_b = np.tile(np.arange(b.output_size), a.output_size)
    row_ptr, pa, pb = _ragged_product(a.row_ptr, grid_a, b.row_ptr, grid_b)
    tap_ptr, ta, tb = _ragged_product(a.tap_ptr, pa, b.tap_ptr, pb)
    in_a = np.repeat(np.arange(a.input_size), b.input_size)
    in_b = np.tile(np.arange(b.input_size), a.input_size)
    back_ptr, ea, eb = _ragged_product(a.back_ptr, in_a, b.back_ptr, in_b)
    return AxisMap(
        output_size=a.output_size * b.output_size,
        input_size=a.input_size * b.input_size,
        kernel_size=a.kernel_size * b.kernel_size,
        row_ptr=row_ptr,
        col=a.col[pa] * b.input_size + b.col[pb],
        tap_ptr=tap_ptr,
        tap=a.tap[ta] * b.kernel_size + b.tap[tb],
        back_ptr=back_ptr,
        back_out=a.back_out[ea] * b.output_size + b.back_out[eb],
        back_tap=a.back_tap[ea] * b.kernel_size + b.back_tap[eb],
    )


def product_map(maps) -> AxisMap:
    """Fuse axis maps into the map of their flattened (C-order) product.

    An empty sequence gives the trivial map of one output, one input, one tap.
    """
    result = axis_map(1, 1, 1, 1, 1, 0, "zeros")
    for m in maps:
        result = _product2(result, m)
    return result
