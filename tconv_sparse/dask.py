"""Scale-out on Dask: ``conv``, ``conv_transpose`` and ``deconvolve`` on ``dask.array`` inputs.

``import tconv_sparse.dask as tsd`` (needs the ``dask`` extra:
``pip install "tconv-sparse[dask]"``; ``import tconv_sparse`` never imports
Dask). :func:`conv` and :func:`conv_transpose` take the arguments of
:func:`tconv_sparse.conv` and :func:`tconv_sparse.conv_transpose`, a
``dask.array.Array`` for the data, and return a lazy ``dask.array.Array``
equal to the in-memory result to float rounding, for every geometry and every
chunking. They run on any Dask scheduler (threads, processes,
``dask.distributed``).

How a block is computed
-----------------------
Each output block (one batch chunk, all channels, one spatial chunk per axis)
is computed by one call of the in-memory kernel on exactly the input it
depends on. Per spatial axis, the geometry's padding index map
(:func:`~tconv_sparse.core.index_maps.padding_index`, the same map every backend
uses) says which input each padded position reads, so the dependencies are
derived, not guessed:

* **forward**: the outputs ``[o0, o1)`` read the padded window
  ``[o0 * stride, (o1 - 1) * stride + k_eff)``. The block gathers that window
  through the map (zeros: an index of -1 is a zero; circular wraps, reflect
  mirrors, replicate clamps, possibly into chunks at the far end of the
  axis) and runs the ``"valid"`` convolution on it.
* **transposed**: ``C.T = P.T S.T``, with ``S`` the valid strided convolution
  on the padded domain and ``P`` the padding map. The result block
  ``[i0, i1)`` collects the padded positions that fold onto it (for zeros just
  ``[i0 + lo, i1 + lo)``; for the other modes also the wrapped, mirrored or
  clamped positions at the borders), split into runs of consecutive
  positions. A run ``[p0, p1)`` is reached by the transposed inputs
  ``[ceil((p0 - k_eff + 1) / stride), floor((p1 - 1) / stride)]`` (clipped to
  the input): an asymmetric halo that depends on stride, dilation, padding and
  output_padding. The block runs the in-memory transposed convolution of that
  input window with the crop that keeps exactly ``[p0, p1)``, then folds the
  run onto the result block through the map (a scatter-add for the positions
  that padding duplicates).

The input ranges every block reads are cut out with Dask slicing, one chunk
per output block per axis (``rechunk`` only merges pieces), so a task holds its
input window and its output block, and a worker receives only the slices it
needs. Chunks smaller than the kernel, uneven chunks and blocks that read
nothing are all the same case. The weight, the bias and the per-block plan are
one graph node, sent once to each worker.

**Chunk shapes.** The batch axis keeps the input's chunks (each batch chunk is
independent). The channel axis is one chunk on both sides: the input is
rechunked to one channel chunk first, because every output channel needs every
input channel of its group. The spatial output chunk boundaries are the
input's, divided by the stride (forward) or multiplied by it (transposed), the
last chunk taking the remainder, so regular input chunks give regular output
chunks (what :func:`dask.array.to_zarr` needs); or ``chunks=`` picks them
(anything :func:`dask.array.core.normalize_chunks` accepts for the output's
spatial shape).
:func:`read_amplification` tells how much input a chunking reads.

Deconvolution and ``ConvOperator``
----------------------------------
:func:`deconvolve` maps the in-memory :func:`tconv_sparse.deconvolve` over
batch chunks: each batch chunk is a set of independent problems, solved in one
task with one shared operator (and factorisation), so every sample's result is
identical to the in-memory one. The solvers are not run on Dask arrays: every
iteration of LSQR, CG or Richardson-Lucy needs global inner products, so a
Dask-array solver pays one graph evaluation, one cluster-wide reduction and
one halo exchange per iteration, hundreds of times; the ``"direct"`` solver
cannot be distributed this way at all. Many independent images or volumes
(the common case at scale) parallelise perfectly per block instead. A single
sample must therefore fit one worker; the spatial and channel axes of ``h``
must be one chunk. :class:`~tconv_sparse.ConvOperator` stays the in-memory
operator of one sample (SciPy's solvers need NumPy vectors); on Dask data its
products are :func:`conv` (``C x``) and :func:`conv_transpose` (``C.T y``, the
adjoint for real weights, or with the conjugated weight for complex ones).

Examples
--------
>>> import numpy as np, dask.array as da, tconv_sparse as ts, tconv_sparse.dask as tsd
>>> rng = np.random.default_rng(0)
>>> y, w = rng.standard_normal((2, 3, 20, 20)), rng.standard_normal((3, 2, 3, 3))
>>> lazy = tsd.conv_transpose(da.from_array(y, chunks=(1, 3, 7, 6)), w, stride=2, padding=1,
...                           padding_mode="reflect")
>>> lazy.chunks[2:]
((14, 14, 11), (12, 12, 12, 3))
>>> bool(np.allclose(lazy.compute(), ts.conv_transpose(y, w, stride=2, padding=1,
...                                                    padding_mode="reflect")))
True
"""

from __future__ import annotations

import itertools
import math
import string
import sys
from dataclasses import dataclass

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.array.core import normalize_chunks
except ImportError as error:  # pragma: no cover - the extra is not installed
    raise ImportError("tconv_sparse.dask needs Dask: pip install 'tconv-sparse[dask]'") from error

from tconv_sparse.core import validation as v
from tconv_sparse.solvers.deconvolution import DeconvolutionResult
from tconv_sparse.solvers.deconvolution import deconvolve as _deconvolve
from tconv_sparse.plan import FORWARD_METHODS, TRANSPOSE_METHODS, parse_method
from tconv_sparse.functional import conv as _conv
from tconv_sparse.functional import conv_transpose as _conv_transpose
from tconv_sparse.core.geometry import Geometry, conv_transpose_output_shape
from tconv_sparse.core.index_maps import padding_index

__all__ = ["conv", "conv_transpose", "deconvolve", "read_amplification"]


# ------------------------------------------------------------------ validation
def _as_dask(name: str, data, numpy_function: str) -> da.Array:
    if not isinstance(data, da.Array):
        raise v.ParameterTypeError(
            f"{name} must be a dask.array.Array, got {type(data).__name__}; for in-memory arrays "
            f"use tconv_sparse.{numpy_function}"
        )
    if any(math.isnan(size) for size in data.shape):
        raise ValueError(
            f"{name} has unknown chunk sizes (shape {data.shape}); the halo of each block is derived "
            f"from the chunk sizes, so call {name}.compute_chunk_sizes() first"
        )
    return data


def _as_weight(weight) -> np.ndarray:
    if isinstance(weight, da.Array):
        raise v.ParameterTypeError(
            "weight must be an in-memory array (it is sent once to every worker), got a "
            "dask.array.Array; call weight.compute() first"
        )
    return v.as_weight(weight)


def _as_sample(name: str, data: da.Array, spatial_ndim: int):
    """``v.as_data`` on a zero-copy stand-in of ``data``'s shape and dtype: the same checks, no compute."""
    return v.as_data(name, np.broadcast_to(np.zeros((), data.dtype), data.shape), spatial_ndim)


def _bounds(chunks) -> np.ndarray:
    return np.cumsum((0, *chunks))


def _scaled_chunks(input_chunks, scale: int, divisor: int, output_size: int) -> tuple:
    """The input's chunk boundaries ``b`` mapped to ``b * scale // divisor``, the last one to ``output_size``."""
    bounds = np.minimum(_bounds(input_chunks)[:-1] * scale // divisor, output_size)
    return tuple(int(size) for size in np.diff(np.unique(np.append(bounds, output_size))))


def _output_chunks(chunks, data: da.Array, geometry: Geometry, transposed: bool, dtype) -> tuple:
    """Spatial chunks of the output: the input's scaled by the stride, or ``chunks``."""
    outputs = geometry.input_shape if transposed else geometry.output_shape
    if chunks is None:
        return tuple(_scaled_chunks(c, s if transposed else 1, 1 if transposed else s, m)
                     for c, s, m in zip(data.chunks[2:], geometry.stride, outputs))
    try:
        normalized = normalize_chunks(chunks, shape=outputs, dtype=dtype)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"chunks={chunks!r} is not a chunking of the output's spatial shape {outputs} (one entry "
            f"per spatial axis: a chunk size, or chunk sizes that add up to the axis): {error}"
        ) from None
    if any(min(axis) < 1 for axis in normalized):
        raise ValueError(f"chunks={chunks!r} has an empty chunk ({normalized}); every chunk must be >= 1")
    return normalized


# ------------------------------------------------------------ per-axis plans
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
class _Axis:
    """One spatial axis of the forward convolution whose geometry is blocked."""

    size: int          # forward input size n
    outputs: int       # forward output size
    k_eff: int
    stride: int
    lo: int
    padding_mode: str

    @classmethod
    def of(cls, geometry: Geometry, axis: int) -> _Axis:
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
        for o0, o1 in itertools.pairwise(_bounds(chunks)):
            window = index[o0 * self.stride:(o1 - 1) * self.stride + self.k_eff]
            ranges = _reads(np.unique(window[window >= 0]), gap=self.stride)
            reads.append(ranges)
            windows.append(_compact(_local(window, ranges)))
        return reads, windows

    def transposed(self, chunks):
        """Per result block: the transposed-input ranges read, and its runs (see :class:`_Run`)."""
        index = self.index
        positions = np.flatnonzero(index >= 0)
        positions = positions[np.argsort(index[positions], kind="stable")]
        folded = index[positions]
        reads, runs = [], []
        for i0, i1 in itertools.pairwise(_bounds(chunks)):
            block = np.sort(positions[np.searchsorted(folded, i0):np.searchsorted(folded, i1)])
            spans = [span for p0, p1 in _ranges(block) if (span := self._reach(p0, p1))]
            ranges = _reads(np.unique(np.concatenate(
                [np.arange(first, stop) for *_, first, stop in spans] + [np.empty(0, dtype=np.int64)])))
            reads.append(ranges)
            block_runs = []
            for p0, p1, first, stop in spans:
                start = int(_local(np.array([first]), ranges)[0])
                crop = (int(p0 - first * self.stride), int((stop - 1) * self.stride + self.k_eff - p1))
                block_runs.append(_Run(slice(start, start + stop - first), crop, _compact(index[p0:p1] - i0)))
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
class _Run:
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


# ------------------------------------------------------------- block kernels
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
    runs: tuple     # per spatial axis, per result block: list of _Run

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


# ---------------------------------------------------------------------- plan
@dataclass(frozen=True)
class _Plan:
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


def _plan(name, data, weight, bias, method, chunks, transposed: bool, geometry_kwargs) -> _Plan:
    function = "conv_transpose" if transposed else "conv"
    weight = _as_weight(weight)
    method = parse_method(method, TRANSPOSE_METHODS if transposed else FORWARD_METHODS)
    data = _as_dask(name, data, function)
    sample, batched = _as_sample(name, data, weight.ndim - 2)
    build = Geometry.transposed if transposed else Geometry.forward
    geometry = build(weight.shape, sample.shape[2 if batched else 1:], **geometry_kwargs)
    geometry.check_channels(name, sample.shape[1 if batched else 0], transposed)
    dtype = v.result_dtype(sample, weight)
    out_channels = geometry.in_channels if transposed else geometry.out_channels
    bias = v.as_bias(bias, out_channels, dtype)
    data = data if batched else data[None]
    spatial_chunks = _output_chunks(chunks, data, geometry, transposed, dtype)
    axes = [_Axis.of(geometry, axis) for axis in range(geometry.ndim)]
    plans = [axis.transposed(c) if transposed else axis.forward(c) for axis, c in zip(axes, spatial_chunks)]
    reads, local = tuple(p[0] for p in plans), tuple(p[1] for p in plans)
    kwargs = {"stride": geometry.stride, "dilation": geometry.dilation, "groups": geometry.groups,
              "method": method}
    blocks = (_TransposeBlocks(weight, bias, kwargs, dtype, spatial_chunks, local) if transposed
              else _ForwardBlocks(weight, bias, kwargs, local))
    return _Plan(data, batched, reads, blocks, (data.chunks[0], (out_channels,), *spatial_chunks), dtype,
                 f"tconv_sparse-{function}")


# -------------------------------------------------------------------- public
def conv(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
         method="auto", chunks=None):
    """Lazy N-D convolution of a Dask array; :func:`tconv_sparse.conv` per block.

    Parameters
    ----------
    x : dask.array.Array, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
        Any chunking with known chunk sizes; the channel axis is rechunked to
        one chunk.
    weight, bias, stride, padding, dilation, groups, padding_mode, method
        As in :func:`tconv_sparse.conv`; ``weight`` and ``bias`` in memory.
    chunks : optional
        Spatial chunks of the output (anything
        :func:`dask.array.core.normalize_chunks` accepts for the output's
        spatial shape). Default: the input's chunk boundaries divided by the
        stride, the last chunk taking the remainder.

    Returns
    -------
    dask.array.Array
        ``(N, C_out, *out)`` or ``(C_out, *out)``, the batch chunks of ``x``,
        one channel chunk, equal to ``tconv_sparse.conv(x.compute(), ...)``
        to float rounding.

    Raises
    ------
    ValueError
        Everything :func:`tconv_sparse.conv` rejects, unknown chunk sizes, an
        invalid ``chunks``, or a Dask ``weight``; raised before any work.

    Examples
    --------
    A 3x3 "same" convolution with circular padding, each 5x4 tile reading
    its wrapped halo:

    >>> import numpy as np, dask.array as da, tconv_sparse as ts, tconv_sparse.dask as tsd
    >>> x, w = np.arange(2 * 10 * 8.0).reshape(2, 1, 10, 8), np.ones((1, 1, 3, 3))
    >>> lazy = tsd.conv(da.from_array(x, chunks=(1, 1, 5, 4)), w, padding="same",
    ...                 padding_mode="circular")
    >>> lazy.chunks
    ((1, 1), (1,), (5, 5), (4, 4))
    >>> bool(np.allclose(lazy.compute(), ts.conv(x, w, padding="same", padding_mode="circular")))
    True
    """
    return _plan("x", x, weight, bias, method, chunks, False,
                 {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                  "padding_mode": padding_mode}).lazy()


def conv_transpose(y, weight, bias=None, *, stride=1, padding=0, output_padding=None, output_size=None,
                   dilation=1, groups=1, padding_mode="zeros", method="auto", chunks=None):
    """Lazy N-D transposed convolution ``C.T @ y`` of a Dask array; the in-memory kernels per block.

    Parameters
    ----------
    y : dask.array.Array, shape ``(N, C_in_t, *spatial)`` or ``(C_in_t, *spatial)``
        Any chunking with known chunk sizes; the channel axis is rechunked to
        one chunk.
    weight, bias, stride, padding, output_padding, output_size, dilation, groups, padding_mode, method
        As in :func:`tconv_sparse.conv_transpose`; ``weight`` and ``bias``
        in memory.
    chunks : optional
        Spatial chunks of the result (anything
        :func:`dask.array.core.normalize_chunks` accepts for the result's
        spatial shape). Default: ``y``'s chunk boundaries times the stride,
        the last chunk taking the remainder.

    Returns
    -------
    dask.array.Array
        ``(N, C_out_t, *out)`` or ``(C_out_t, *out)``, the batch chunks of
        ``y``, one channel chunk, equal to
        ``tconv_sparse.conv_transpose(y.compute(), ...)`` to float rounding.

    Raises
    ------
    ValueError
        Everything :func:`tconv_sparse.conv_transpose` rejects, unknown chunk
        sizes, an invalid ``chunks``, or a Dask ``weight``; raised before any
        work.

    Examples
    --------
    Keras-style ``"same"`` 2x upsampling of a 1-D signal in chunks of 3
    (smaller than the kernel), written to 4 uniform chunks of 6:

    >>> import numpy as np, dask.array as da, tconv_sparse as ts, tconv_sparse.dask as tsd
    >>> y, w = np.arange(12.0).reshape(1, 12), np.array([[[1.0, 2.0, 3.0, 2.0, 1.0]]])
    >>> lazy = tsd.conv_transpose(da.from_array(y, chunks=3), w, stride=2, padding="same", chunks=6)
    >>> lazy.shape, lazy.chunks[1]
    ((1, 24), (6, 6, 6, 6))
    >>> bool(np.allclose(lazy.compute(), ts.conv_transpose(y, w, stride=2, padding="same")))
    True
    """
    return _plan("y", y, weight, bias, method, chunks, True,
                 {"stride": stride, "padding": padding, "output_padding": output_padding,
                  "output_size": output_size, "dilation": dilation, "groups": groups,
                  "padding_mode": padding_mode}).lazy()


def read_amplification(data, weight, *, transposed=False, chunks=None, **geometry) -> float:
    """Input elements the blocks of :func:`conv` (or :func:`conv_transpose`) read, per input element.

    The halo overhead of a chunking is ``read_amplification - 1``: every
    output block reads its input window plus the halo (and, with circular or
    reflect padding, the far-end pieces its border needs). It is a product of
    one factor per spatial axis, ``sum of the blocks' read lengths / size``.

    Parameters
    ----------
    data : dask.array.Array
        The input of :func:`conv` (``x``) or :func:`conv_transpose` (``y``).
    weight : array_like
    transposed : bool
        Plan :func:`conv_transpose` instead of :func:`conv`.
    chunks : optional
        The output chunks, as in :func:`conv`.
    **geometry
        ``stride``, ``padding``, ``dilation``, ``groups``, ``padding_mode``
        (and ``output_padding``/``output_size`` when transposed), as in
        :func:`conv` / :func:`conv_transpose`.

    Examples
    --------
    A 5x5 kernel on 100x100 tiles reads a 2-pixel halo on each side (one
    side at the image border, where "same" pads zeros): per axis
    ``(8 * 104 + 2 * 102) / 1000 = 1.036``, squared.

    >>> import numpy as np, dask.array as da, tconv_sparse.dask as tsd
    >>> x = da.zeros((1, 1, 1000, 1000), chunks=(1, 1, 100, 100))
    >>> round(tsd.read_amplification(x, np.ones((1, 1, 5, 5)), padding="same"), 4)
    1.0733
    """
    return _plan("y" if transposed else "x", data, weight, None, "auto", chunks, transposed,
                 geometry).read_amplification


# ------------------------------------------------------------- deconvolution
@dataclass(frozen=True)
class _Solve:
    """Runs :func:`tconv_sparse.deconvolve` on one batch chunk; one record per sample."""

    weight: np.ndarray
    options: dict

    def __call__(self, h: np.ndarray, x0) -> np.ndarray:
        result = _deconvolve(h, self.weight, x0=x0, **self.options)
        records = np.empty(len(h), dtype=object)
        for sample in range(len(h)):
            records[sample] = DeconvolutionResult(result.x[sample], result.iterations[sample],
                                                  result.residuals[sample], result.converged[sample],
                                                  result.solver, result.damp[sample])
        return records


def _solve_block(h, x0, solve):
    return solve(h, x0)


def _field(records: np.ndarray, name: str) -> np.ndarray:
    values = [getattr(record, name) for record in records]
    if name != "residuals":
        return np.stack(values)
    histories = np.empty(len(values), dtype=object)
    for sample, history in enumerate(values):
        histories[sample] = history
    return histories


def deconvolve(h, weight, input_shape=None, *, stride=1, padding=0, dilation=1, groups=1,
               padding_mode="zeros", solver="lsqr", damp=0.0, damp_rule="gcv", noise_std=None, regularizer=None,
               x0=None, maxiter=None, tol=None, clip=False, callback=None, progress=False):
    """Lazy :func:`tconv_sparse.deconvolve` of a Dask batch: independent problems, one task per batch chunk.

    Every sample is solved by the in-memory :func:`tconv_sparse.deconvolve`
    with these arguments, so its result is identical to the in-memory one.
    Each batch chunk shares one operator (and, for ``"direct"``, one
    factorisation). The solver options are checked by the in-memory function
    inside each task, so an invalid option surfaces when the result is
    computed; the Dask layout (and the shapes) are checked here.

    Parameters
    ----------
    h : dask.array.Array, shape ``(N, C_out, *out)`` or ``(C_out, *out)``
        Chunked along the batch axis only: one sample must fit a worker.
    weight, input_shape, stride, padding, dilation, groups, padding_mode, solver, damp, damp_rule, noise_std
        As in :func:`tconv_sparse.deconvolve` (``damp="auto"`` chooses each sample's ``damp`` in its task).
    regularizer
        As in :func:`tconv_sparse.deconvolve`.
    maxiter, tol, clip
        As in :func:`tconv_sparse.deconvolve`.
    x0 : array_like or dask.array.Array, optional
        Shaped like the result (batched: rechunked to ``h``'s batch chunks)
        or like one sample (shared).
    callback : callable, optional
        As in :func:`tconv_sparse.deconvolve`, called inside the tasks (on
        the workers), concurrently for different batch chunks.
    progress : bool
        ``True``: solve now, under :class:`dask.diagnostics.ProgressBar` on
        stderr (one bar over the tasks; a bar per task would interleave):
        the result's arrays are persisted (:func:`dask.persist`), still Dask
        arrays. With a ``distributed`` client persisting returns at once;
        follow it on the dashboard or with ``distributed.progress``.

    Returns
    -------
    DeconvolutionResult
        ``.x`` a lazy ``(N, C_in, *input_shape)`` array (``h``'s batch
        chunks), ``.iterations``, ``.converged`` and ``.damp`` lazy ``(N,)`` arrays,
        ``.residuals`` a lazy ``(N,)`` object array of histories. They share
        their solves: compute them together,
        ``dask.compute(result.x, result.converged)``, to solve once.

    Raises
    ------
    ValueError
        Before any work: ``h`` chunked along a channel or spatial axis, ``h``
        whose shape does not match the geometry, a batched ``x0`` with another
        batch size, a ``progress`` that is not a bool, a Dask ``weight``.

    Examples
    --------
    >>> import dask, numpy as np, dask.array as da, tconv_sparse as ts, tconv_sparse.dask as tsd
    >>> w = np.array([[[0.25, 0.5, 0.25]]])
    >>> g = np.random.default_rng(0).random((6, 1, 16))
    >>> h = da.from_array(ts.conv(g, w, padding=1), chunks=(2, 1, 16))
    >>> result = tsd.deconvolve(h, w, padding=1, solver="cg")
    >>> x, converged = dask.compute(result.x, result.converged)
    >>> bool(np.allclose(x, g)), converged.tolist() == [True] * 6, result.x.chunks[0]
    (True, True, (2, 2, 2))
    """
    weight = _as_weight(weight)
    h = _as_dask("h", h, "deconvolve")
    sample, batched = _as_sample("h", h, weight.ndim - 2)
    if not isinstance(progress, (bool, np.bool_)):
        raise v.ParameterTypeError(f"progress must be True or False, got {progress!r}")
    h = h if batched else h[None]
    if any(len(chunks) > 1 for chunks in h.chunks[1:]):
        axes = range(1, h.ndim) if batched else range(h.ndim - 1)
        raise ValueError(
            f"h must be chunked along the batch axis only (each task solves whole samples), got chunks "
            f"{h.chunks[1:]} on the channel and spatial axes; rechunk with "
            f"h.rechunk({{{', '.join(f'{axis}: -1' for axis in axes)}}})"
        )
    conv_kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                   "padding_mode": padding_mode}
    spatial = h.shape[2:]
    if input_shape is None:
        input_shape = conv_transpose_output_shape(spatial, weight.shape[2:], stride=stride, padding=padding,
                                                  dilation=dilation)
    geometry = Geometry.forward(weight.shape, input_shape, **conv_kwargs)
    if geometry.output_shape != tuple(spatial) or h.shape[1] != geometry.out_channels:
        raise ValueError(
            f"h has shape {sample.shape}, but the convolution of input_shape={geometry.input_shape} with "
            f"the weight {weight.shape} and these parameters produces {geometry.out_channels} channels of "
            f"{geometry.output_shape}"
        )
    # blockwise indices: "n" the batch, lower case h's other axes, upper case x0's (whole per task)
    if x0 is None:
        x0_arguments = (None, None)
    else:
        x0 = da.asarray(x0)
        if batched and x0.ndim == h.ndim:
            if x0.shape[0] != h.shape[0]:
                raise ValueError(f"x0 has {x0.shape[0]} samples but h has {h.shape[0]}")
            x0 = x0.rechunk((h.chunks[0],) + (-1,) * (x0.ndim - 1))
            x0_arguments = (x0, "n" + string.ascii_uppercase[:x0.ndim - 1])
        else:  # one sample, shared by every task
            x0_arguments = (x0, string.ascii_uppercase[:x0.ndim])
    solve = _Solve(weight, {"input_shape": geometry.input_shape, "solver": solver, "damp": damp,
                            "damp_rule": damp_rule, "noise_std": noise_std, "regularizer": regularizer,
                            "maxiter": maxiter, "tol": tol, "clip": clip, "callback": callback, **conv_kwargs})
    records = da.blockwise(_solve_block, "n", h, "n" + string.ascii_lowercase[:h.ndim - 1], *x0_arguments,
                           dask.delayed(solve, pure=True, traverse=False), None, concatenate=True,
                           dtype=object, meta=np.empty((0,), dtype=object), token="tconv_sparse-deconvolve")
    dtype = v.result_dtype(sample, weight)
    x = records.map_blocks(_field, "x", new_axis=list(range(1, h.ndim)), dtype=dtype,
                           chunks=(h.chunks[0], (geometry.in_channels,), *((n,) for n in geometry.input_shape)),
                           meta=np.empty((0,) * h.ndim, dtype=dtype))
    fields = [x] + [records.map_blocks(_field, name, dtype=kind, meta=np.empty((0,), dtype=kind))
                    for name, kind in (("iterations", np.int64), ("residuals", object), ("converged", bool),
                                       ("damp", np.float64))]
    if not batched:
        fields = [field[0] for field in fields]
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            fields = dask.persist(*fields)
    return DeconvolutionResult(*fields[:4], solver, fields[4])
