"""Per spatial axis: the input ranges each block of :mod:`tconv_sparse.dask` reads, through the padding index map."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.index_maps import padding_index
from tconv_sparse.dask._inputs import bounds


def _ranges(indices: np.ndarray, gap: int = 0) -> np.ndarray:
    """``(start, stop)`` rows covering sorted unique ``indices``, bridging gaps of at most ``gap``."""
    if len(indices) == 0:
        return np.empty((0, 2), dtype=np.int64)
    breaks = np.flatnonzero(np.diff(indices) > gap + 1) + 1
    starts = indices[np.concatenate(([0], breaks))]
    stops = indices[np.concatenate((breaks - 1, [len(indices) - 1]))] + 1
    return np.stack([starts, stops], axis=1)


def _reads(needed: np.ndarray, gap: int = 0) -> np.ndarray:
    """The input ranges a block reads to get ``needed``; one element if it needs none (Dask drops
    empty chunks when it concatenates, so every block reads something)."""
    ranges = _ranges(needed, gap)
    return ranges if len(ranges) else np.array([[0, 1]])


def _local(indices: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Position of each global index in the concatenation of ``ranges`` (-1 stays -1)."""
    offsets = np.concatenate(([0], np.cumsum(ranges[:, 1] - ranges[:, 0])))
    piece = np.maximum(np.searchsorted(ranges[:, 0], indices, side="right") - 1, 0)
    return np.where(indices >= 0, offsets[piece] + indices - ranges[piece, 0], -1)


def _compact(index: np.ndarray):
    """A ``slice`` when ``index`` is ``start, start + 1, ...``; else ``index`` itself."""
    if len(index) and index[0] >= 0 and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return index


@dataclass(frozen=True)
class Axis:
    """One spatial axis of the forward convolution whose geometry is blocked."""

    size: int          # forward input size n
    outputs: int       # forward output size
    k_eff: int
    stride: int
    lo: int
    padding_mode: str

    @classmethod
    def of(cls, geometry: Geometry, axis: int) -> Axis:
        return cls(geometry.input_shape[axis], geometry.output_shape[axis],
                   geometry.effective_kernel_shape[axis], geometry.stride[axis], geometry.padding[axis][0],
                   geometry.padding_mode)

    @property
    def index(self) -> np.ndarray:
        """Input index of every padded position the convolution reads (-1: a zero)."""
        return padding_index(self.size, self.lo, (self.outputs - 1) * self.stride + self.k_eff,
                             self.padding_mode)

    def forward(self, chunks):
        """Per output block: the input ranges read, and the local index of each padded position."""
        index, reads, windows = self.index, [], []
        for o0, o1 in itertools.pairwise(bounds(chunks)):
            window = index[o0 * self.stride:(o1 - 1) * self.stride + self.k_eff]
            ranges = _reads(np.unique(window[window >= 0]), gap=self.stride)
            reads.append(ranges)
            windows.append(_compact(_local(window, ranges)))
        return reads, windows

    def transposed(self, chunks):
        """Per result block: the transposed-input ranges read, and its runs (see :class:`Run`)."""
        index = self.index
        positions = np.flatnonzero(index >= 0)
        positions = positions[np.argsort(index[positions], kind="stable")]
        folded = index[positions]
        reads, runs = [], []
        for i0, i1 in itertools.pairwise(bounds(chunks)):
            block = np.sort(positions[np.searchsorted(folded, i0):np.searchsorted(folded, i1)])
            spans = [span for p0, p1 in _ranges(block) if (span := self._reach(p0, p1))]
            ranges = _reads(np.unique(np.concatenate(
                [np.arange(first, stop) for *_, first, stop in spans] + [np.empty(0, dtype=np.int64)])))
            reads.append(ranges)
            block_runs = []
            for p0, p1, first, stop in spans:
                start = int(_local(np.array([first]), ranges)[0])
                crop = (int(p0 - first * self.stride), int((stop - 1) * self.stride + self.k_eff - p1))
                block_runs.append(Run(slice(start, start + stop - first), crop, _compact(index[p0:p1] - i0)))
            runs.append(block_runs)
        return reads, runs

    def _reach(self, p0: int, p1: int):
        """``(p0, p1, first, stop)``: the transposed inputs ``[first, stop)`` reaching padded positions
        ``[p0, p1)``, with the positions trimmed to those they reach; ``None`` if none does."""
        first = max(0, -((self.k_eff - 1 - p0) // self.stride))
        stop = min(self.outputs, (p1 - 1) // self.stride + 1)
        if first >= stop:  # the run lies in a gap between taps (k_eff < stride)
            return None
        return (max(p0, first * self.stride), min(p1, (stop - 1) * self.stride + self.k_eff), first, stop)


@dataclass(frozen=True)
class Run:
    """Consecutive padded positions folding onto one result block.

    ``source``: the local window of transposed inputs that reach them;
    ``crop``: the ``(lo, hi)`` padding that crops that window's transposed
    convolution to exactly these positions; ``target``: where they land in the
    result block (a slice, or an index array when padding folds several
    positions onto one output).
    """

    source: slice
    crop: tuple
    target: object
