"""The ``"auto"`` method choice: a cost model of the two fast designs.

Both fast designs do the same multiply-adds, one per stored entry of ``C`` and
sample. They differ in what comes around them:

* the polyphase plane kernels (``direct``, ``gather``) add shifted planes into
  an accumulator, up to four terms per pass; they cost about the same per
  accumulator entry passed over and per pass (:func:`stencil_passes`)
  whatever the channels, so they win on few channels; they run on all the
  Numba threads;
* the GEMM paths (``im2col``) do the multiply-adds in BLAS, several times
  faster, one GEMM per tap over channels-last planes; every GEMM reads its
  window of the planes and accumulates into its target, traffic that grows
  with the taps times the channels times the positions, as a column buffer
  would (:func:`column_entries`), and is shared by the ``C_out / groups``
  output channels of the forward convolution, so they win once enough
  channels share it; BLAS runs on all the cores, the Numba passes around it
  on one (:func:`~tconv_sparse.core.config.numba_threads`).

The modelled time of each design is a linear function of those counts and of
the data moved in and out (:func:`features`), with nanoseconds per count and
thread in :data:`COSTS` (per direction and dtype), divided by the parallel
speed-up of the part that runs in parallel (:data:`SPEEDUP_PER_THREAD`). The
constants were fitted (non-negative least squares, relative errors) to
one-thread timings of both designs over the benchmark grid
(:mod:`tconv_sparse.bench.cases`) and extra layer shapes on the 2-core AVX-512
machine type the library is benchmarked on; ``python scripts/perf_probe.py
--calibrate --threads 1 --cpu-time`` re-measures and prints them. The GEMM
column constant of the float64 transposed convolution was lowered from 3.84
to 3.0 ns when the GEMM path lost its column buffer (issue 13), which made the
one grid case it mis-chose (``batch:8x16->16x32x32:k3s1``) right and left the
other one-thread choices of the grid unchanged.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from tconv_sparse.core.config import get_max_bytes, num_threads
from tconv_sparse.backends._polyphase import TILE_ELEMENTS, plane_plan
from tconv_sparse.backends.memory import output_bytes, work_bytes

__all__ = ["COSTS", "SPEEDUP_PER_THREAD", "MATRIX_ENTRIES", "features", "stencil_passes", "column_entries",
           "modelled_times", "choose", "prefers_matrix", "choose_forward", "choose_transpose", "work_bytes"]

#: ``(direction, real dtype) -> (stencil, gemm)`` nanoseconds per feature of :func:`features`:
#: stencil = (per pass entry, per pass, per data entry); gemm = (per multiply-add, per column
#: entry, per data entry)
COSTS = {
    ("conv_transpose", "f4"): ((0.365, 196.1, 1.593), (0.030, 1.810, 1.148)),
    ("conv_transpose", "f8"): ((0.742, 230.0, 2.275), (0.060, 3.0, 0.0)),
    ("conv", "f4"): ((0.401, 159.4, 2.233), (0.065, 1.002, 1.766)),
    ("conv", "f8"): ((0.663, 209.1, 4.423), (0.091, 2.093, 3.679)),
}


#: parallel speed-up gained per extra thread: Numba plane kernels, BLAS
SPEEDUP_PER_THREAD = {"stencil": 0.8, "blas": 0.6}


def _ceil_div(a, b):
    return -(-a // b)


def stencil_passes(geometry, batch: int, transposed: bool) -> tuple[float, float]:
    """``(entries, passes)``: accumulator entries the plane kernel passes over, and passes
    (terms are grouped four per pass; a pass covers one tile of a plane).

    Closed form over the distinct term counts: no array larger than the kernel
    or the leading axes (never one per pair of phases).
    """
    plan = plane_plan(geometry)
    lead, rows, cols = plan.lead, plan.rows, plan.cols
    if transposed:
        entries, weights = np.unique(np.diff(lead.back_ptr), return_counts=True)
        taps_b, taps_c = np.diff(rows.phase_ptr), np.diff(cols.phase_ptr)
        phase_taps = np.multiply.outer(taps_b[taps_b > 0], taps_c[taps_c > 0]).ravel()
        terms = geometry.out_channels_per_group * np.multiply.outer(entries, phase_taps)
        passes = float((_ceil_div(terms, 4) * weights[:, None]).sum())
        planes, plane = batch * geometry.in_channels, rows.split * plan.pad_width
    else:
        taps = np.diff(lead.tap_ptr[lead.row_ptr])
        terms = geometry.in_channels_per_group * taps * rows.kernel * cols.kernel
        passes = float(_ceil_div(terms, 4).sum())
        planes, plane = batch * geometry.out_channels, rows.out_length * plan.split_width
    return planes * plane * passes, planes * _ceil_div(plane, TILE_ELEMENTS) * passes


def column_entries(geometry, batch: int, transposed: bool) -> float:
    """Entries of the GEMM path's column buffer (in its padded plane layout)."""
    plan = plane_plan(geometry)
    width = plan.pad_width if transposed else plan.split_width
    planes = plan.lead.output_size * plan.rows.out_length * width
    return float(batch * geometry.in_channels * math.prod(geometry.kernel_shape) * planes)


@functools.lru_cache(maxsize=256)
def _sample_features(geometry, transposed: bool) -> tuple:
    data = geometry.input_size + geometry.output_size
    return (*stencil_passes(geometry, 1, transposed), float(geometry.nnz),
            column_entries(geometry, 1, transposed), float(data))


def features(geometry, batch: int, transposed: bool) -> tuple:
    """``(pass entries, passes, multiply-adds, column entries, data entries)`` of one call."""
    return tuple(batch * value for value in _sample_features(geometry, transposed))


def modelled_times(geometry, batch: int, dtype, transposed: bool, threads: int | None = None
                   ) -> tuple[float, float]:
    """Modelled ``(plane kernel, GEMM path)`` times in nanoseconds on ``threads`` threads
    (default: the Numba thread count).

    Complex dtypes use the constants of their real part, with four real
    multiply-adds per complex one and twice the bytes per entry.
    """
    dtype = np.dtype(dtype)
    threads = num_threads() if threads is None else threads
    complex_ = dtype.kind == "c"
    real_size = dtype.itemsize // 2 if complex_ else dtype.itemsize
    key = ("conv_transpose" if transposed else "conv", f"f{real_size}")
    (per_entry, per_pass, stencil_data), (per_madd, per_column, gemm_data) = COSTS[key]
    entries, passes, madds, columns, data = features(geometry, batch, transposed)
    compute, memory = (4.0, 2.0) if complex_ else (1.0, 1.0)
    stencil = compute * per_entry * entries + per_pass * passes + memory * stencil_data * data
    blas = compute * per_madd * madds
    speedup = {part: 1 + rate * (threads - 1) for part, rate in SPEEDUP_PER_THREAD.items()}
    return (stencil / speedup["stencil"],
            blas / speedup["blas"] + memory * (per_column * columns + gemm_data * data))


def _fitting(methods, geometry, batch: int, dtype, transposed: bool) -> str:
    """The first of ``methods`` whose output and work buffers fit the memory limit, else the
    one that needs least (whose call then refuses with its estimate)."""
    limit, output = get_max_bytes(), output_bytes(geometry, batch, dtype, transposed)
    needs = {}
    for method in methods:
        needs[method] = output + work_bytes(method, geometry, batch, dtype, transposed)
        if needs[method] <= limit:
            return method
    return min(needs, key=needs.get)


def choose_forward(geometry, batch: int, dtype) -> str:
    """Method for ``conv`` with this geometry, batch size and dtype: the faster design in the
    cost model, unless its buffers do not fit the memory limit."""
    canonical = geometry.canonical.geometry
    if canonical is None:
        return "direct"
    stencil, gemm = modelled_times(canonical, batch, dtype, transposed=False)
    order = ("im2col", "direct") if gemm < stencil else ("direct", "im2col")
    return _fitting((*order, "sparse"), canonical, batch, dtype, False)


def choose_transpose(geometry, batch: int, dtype) -> str:
    """Method for ``conv_transpose`` with this geometry, batch size and dtype: the faster design
    in the cost model, unless its buffers do not fit the memory limit."""
    canonical = geometry.canonical.geometry
    if canonical is None:
        return "gather"
    stencil, gemm = modelled_times(canonical, batch, dtype, transposed=True)
    order = ("im2col", "gather") if gemm < stencil else ("gather", "im2col")
    return _fitting((*order, "sparse", "scatter"), canonical, batch, dtype, True)


def choose(geometry, batch: int, dtype, transposed: bool) -> str:
    """The kernel method for one direction (:func:`choose_forward` or :func:`choose_transpose`)."""
    return (choose_transpose if transposed else choose_forward)(geometry, batch, dtype)


#: multiply-adds (stored entries of C times samples) up to which a cached C, multiplied on one
#: thread, beats every kernel: below it the fixed cost of a kernel call (padding, tables, waking
#: the thread pool, about 10-40 µs) dominates, while the product costs about 1 ns per entry
MATRIX_ENTRIES = 1 << 14


def prefers_matrix(geometry, batch: int) -> bool:
    """Whether a plan that is applied repeatedly should multiply by its cached ``C`` / ``C.T``."""
    return batch * geometry.nnz <= MATRIX_ENTRIES
