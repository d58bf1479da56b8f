"""The block kernels of :mod:`tconv_sparse.dask` (one in-memory call per output block) and the graph that feeds them."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

import dask
import dask.array as da

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.functional import conv as _conv
from tconv_sparse.functional import conv_transpose as _conv_transpose
from tconv_sparse.plan import FORWARD_METHODS, TRANSPOSE_METHODS, parse_method
from tconv_sparse.dask._axes import Axis
from tconv_sparse.dask._inputs import as_dask, as_sample, as_weight, output_chunks


def _axis_slice(axis: int, index) -> tuple:
    return (slice(None),) * axis + (index,)


def _take(block: np.ndarray, axis: int, window) -> np.ndarray:
    """``block`` gathered along ``axis`` through a local window (-1: a zero)."""
    if isinstance(window, slice):
        return block[_axis_slice(axis, window)]
    shape = list(block.shape)
    shape[axis] = len(window)
    out = np.zeros(shape, dtype=block.dtype)
    valid = window >= 0
    out[_axis_slice(axis, valid)] = np.take(block, window[valid], axis=axis)
    return out


def _fold(segment: np.ndarray, axis: int, target: np.ndarray, size: int) -> np.ndarray:
    """Scatter-add ``segment`` along ``axis`` onto ``size`` outputs at ``target``."""
    shape = list(segment.shape)
    shape[axis] = size
    out = np.zeros(shape, dtype=segment.dtype)
    np.add.at(out, _axis_slice(axis, target), segment)
    return out


@dataclass(frozen=True)
class _ForwardBlocks:
    """Computes one output block of ``conv`` from its gathered input ranges."""

    weight: np.ndarray
    bias: np.ndarray | None
    kwargs: dict
    windows: tuple  # per spatial axis, per output block: local window (slice or index array)

    def __call__(self, block: np.ndarray, block_id: tuple) -> np.ndarray:
        for axis, (windows, j) in enumerate(zip(self.windows, block_id[2:]), start=2):
            block = _take(block, axis, windows[j])
        return _conv(block, self.weight, self.bias, **self.kwargs)


@dataclass(frozen=True)
class _TransposeBlocks:
    """Computes one result block of ``conv_transpose`` from its gathered input ranges."""

    weight: np.ndarray
    bias: np.ndarray | None
    kwargs: dict
    dtype: np.dtype
    chunks: tuple   # per spatial axis: result chunk sizes
    runs: tuple     # per spatial axis, per result block: list of Run

    def __call__(self, block: np.ndarray, block_id: tuple) -> np.ndarray:
        spatial = block_id[2:]
        shape = (block.shape[0], self.weight.shape[1] * self.kwargs["groups"],
                 *(chunks[j] for chunks, j in zip(self.chunks, spatial)))
        result = None
        for runs in itertools.product(*(runs[j] for runs, j in zip(self.runs, spatial))):
            segment = _conv_transpose(block[(..., *(run.source for run in runs))], self.weight,
                                      padding=tuple(run.crop for run in runs), **self.kwargs)
            targets = []
            for axis, run in enumerate(runs, start=2):
                if isinstance(run.target, slice):
                    targets.append(run.target)
                else:
                    segment = _fold(segment, axis, run.target, shape[axis])
                    targets.append(slice(None))
            if result is None and segment.shape == shape:  # one run covers the block (the interior)
                result = segment
            else:
                result = np.zeros(shape, dtype=self.dtype) if result is None else result
                result[(..., *targets)] += segment
        result = np.zeros(shape, dtype=self.dtype) if result is None else result
        if self.bias is not None:
            result += self.bias.reshape(-1, *([1] * len(spatial)))
        return result


def _run_block(block, blocks, block_id=None):
    return blocks(block, block_id)


# ---------------------------------------------------------------------- graph
@dataclass(frozen=True)
class BlockGraph:
    """The lazy result: the gathered input, one block kernel call per output block."""

    data: da.Array      # batched input
    batched: bool
    reads: tuple        # per spatial axis, per output block: (start, stop) input ranges
    blocks: object      # _ForwardBlocks or _TransposeBlocks
    chunks: tuple       # full output chunks
    dtype: np.dtype
    name: str

    def gathered(self) -> da.Array:
        """The input with one chunk per output block: per axis, the ranges each block reads."""
        data = self.data.rechunk({1: -1}, method="tasks")
        for axis, reads in enumerate(self.reads, start=2):
            pieces = [data[_axis_slice(axis, slice(int(a), int(b)))] for ranges in reads for a, b in ranges]
            sizes = tuple(int(np.sum(ranges[:, 1] - ranges[:, 0])) for ranges in reads)
            data = da.concatenate(pieces, axis=axis)
            data = data.rechunk({axis: sizes}, method="tasks")
        return data

    def lazy(self) -> da.Array:
        blocks = dask.delayed(self.blocks, pure=True, traverse=False)
        result = self.gathered().map_blocks(
            _run_block, blocks, chunks=self.chunks, dtype=self.dtype,
            meta=np.empty((0,) * len(self.chunks), dtype=self.dtype), token=self.name)
        return result if self.batched else result[0]

    @property
    def read_amplification(self) -> float:
        read = math.prod(sum(int(np.sum(r[:, 1] - r[:, 0])) for r in reads) for reads in self.reads)
        return read / math.prod(self.data.shape[2:])


def block_graph(name, data, weight, bias, method, chunks, transposed: bool, geometry_kwargs) -> BlockGraph:
    function = "conv_transpose" if transposed else "conv"
    weight = as_weight(weight)
    method = parse_method(method, TRANSPOSE_METHODS if transposed else FORWARD_METHODS)
    data = as_dask(name, data, function)
    sample, batched = as_sample(name, data, weight.ndim - 2)
    build = Geometry.transposed if transposed else Geometry.forward
    geometry = build(weight.shape, sample.shape[2 if batched else 1:], **geometry_kwargs)
    geometry.check_channels(name, sample.shape[1 if batched else 0], transposed)
    dtype = v.result_dtype(sample, weight)
    out_channels = geometry.in_channels if transposed else geometry.out_channels
    bias = v.as_bias(bias, out_channels, dtype)
    data = data if batched else data[None]
    spatial_chunks = output_chunks(chunks, data, geometry, transposed, dtype)
    axes = [Axis.of(geometry, axis) for axis in range(geometry.ndim)]
    plans = [axis.transposed(c) if transposed else axis.forward(c) for axis, c in zip(axes, spatial_chunks)]
    reads, local = tuple(p[0] for p in plans), tuple(p[1] for p in plans)
    kwargs = {"stride": geometry.stride, "dilation": geometry.dilation, "groups": geometry.groups,
              "method": method}
    blocks = (_TransposeBlocks(weight, bias, kwargs, dtype, spatial_chunks, local) if transposed
              else _ForwardBlocks(weight, bias, kwargs, local))
    return BlockGraph(data, batched, reads, blocks, (data.chunks[0], (out_channels,), *spatial_chunks), dtype,
                 f"tconv_sparse-{function}")
