"""In-process timing of ``conv`` / ``conv_transpose`` methods against PyTorch CPU.

A profiling companion to ``tconv-sparse bench`` (same grid,
:data:`tconv_sparse.bench.cases.CONV_CASES`): it runs the chosen methods and
PyTorch round-robin, one call of each per round, so that load from other
processes hits them alike, and prints the minimum and median time of each with
the ratio of PyTorch's median to each method's (``x2.0`` = twice as fast as
PyTorch). Before timing, every method is checked against PyTorch in float64.

Usage::

    python scripts/perf_probe.py                          # whole grid, both directions and dtypes
    python scripts/perf_probe.py --case signal --dtype float32 --rounds 30
    python scripts/perf_probe.py --direction conv --method auto --method im2col
    python scripts/perf_probe.py --threads 1 --cpu-time         # steadier on a busy machine
    python scripts/perf_probe.py --calibrate --threads 1 --cpu-time   # refit methods.COSTS
    python scripts/perf_probe.py --sparse                       # conv_matrix, C @ X, C.T @ Y
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
import tracemalloc

import numba
import numpy as np
from scipy.optimize import nnls

import tconv_sparse as ts
from tconv_sparse.backends.csr import csr_matmul
from tconv_sparse.bench.cases import CONV_CASES, ConvCase
from tconv_sparse.functional import FORWARD_METHODS, TRANSPOSE_METHODS
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.matrix import build_matrix
from tconv_sparse.backends.chooser import COSTS, features, modelled_times

#: layer shapes beside the grid for :func:`calibrate`: channels 2-128, strides 1-4, ranks 1-3
CALIBRATION_CASES = CONV_CASES + (
    ConvCase("x", 2, 4, 4, (128, 128), 3, 1), ConvCase("x", 4, 8, 8, (64, 64), 3, 2),
    ConvCase("x", 8, 8, 8, (64, 64), 3, 1), ConvCase("x", 8, 12, 12, (32, 32), 3, 2),
    ConvCase("x", 8, 16, 16, (64, 64), 3, 1), ConvCase("x", 8, 32, 16, (32, 32), 3, 1),
    ConvCase("x", 4, 32, 32, (64, 64), 3, 2), ConvCase("x", 1, 64, 64, (64, 64), 3, 2),
    ConvCase("x", 4, 2, 2, (64, 64, 64), 3, 2), ConvCase("x", 2, 16, 16, (16, 16, 16), 3, 2),
    ConvCase("x", 4, 16, 16, (4096,), 5, 2), ConvCase("x", 2, 64, 32, (2048,), 3, 4),
    ConvCase("x", 1, 3, 3, (256, 256), 5, 1), ConvCase("x", 16, 4, 8, (32, 32), 4, 2),
)

#: methods too slow to time on the large cases (they are checked in the test-suite)
_SLOW = {"sparse", "scatter", "zero_insert"}
_SLOW_FLOPS = 2e8


def _round_robin(functions: dict, rounds: int, budget: float, timer=time.perf_counter) -> dict:
    """Seconds per call of each function: ``rounds`` rounds at least, ``budget`` seconds at
    most; each round runs every function (in a random order) once untimed, so that the
    switch from another library's thread pool is not timed, then times three calls of it."""
    times = {name: [] for name in functions}
    order = list(functions)
    shuffle = np.random.default_rng(0).permutation
    start = time.perf_counter()
    for done in range(100 * rounds):
        if done >= rounds and time.perf_counter() - start > budget:
            break
        for name in [order[i] for i in shuffle(len(order))]:
            function = functions[name]
            function()
            for _ in range(3):
                begin = timer()
                function()
                times[name].append(timer() - begin)
    return times


def probe(case, direction: str, dtype: str, methods, rounds: int, budget: float,
          timer=time.perf_counter):
    """Check, then time ``methods`` and PyTorch on one case.

    Returns
    -------
    dict
        ``name -> (min_seconds, median_seconds)``, PyTorch under ``"torch"``.
    """
    import torch

    data, weight = case.data(direction, dtype)
    keywords = case.keywords(direction)
    library = getattr(ts, direction)
    peer = getattr(torch.nn.functional, f"{direction}{len(case.shape)}d")
    flops = 2.0 * case.batch * case.nnz
    functions = {m: (lambda m=m: library(data, weight, method=m, **keywords)) for m in methods
                 if m not in _SLOW or flops < _SLOW_FLOPS}
    t_data, t_weight = torch.from_numpy(data), torch.from_numpy(weight)
    functions["torch"] = lambda: peer(t_data, t_weight, **keywords).numpy()
    expected = peer(t_data.double(), t_weight.double(), **keywords).numpy()
    tolerance = {"float32": 1e-4, "float64": 1e-10}[dtype]
    for name, function in functions.items():
        error = np.max(np.abs(function() - expected)) / np.max(np.abs(expected))
        if error > tolerance:
            raise AssertionError(f"{case.name} {direction} {dtype} {name}: relative error {error:.1e}")
    times = _round_robin(functions, rounds, budget, timer)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


@numba.njit(parallel=True, cache=True)
def _copy(a, b):
    for i in numba.prange(a.size):
        a[i] = b[i]


@numba.njit(parallel=True, cache=True)
def _triad(a, b, c, scalar):
    for i in numba.prange(a.size):
        a[i] = b[i] + scalar * c[i]


def _best(function, rounds: int) -> float:
    function()
    return min(_round_robin({"f": function}, rounds, 10.0)["f"])


def _stream(rounds: int) -> tuple[float, float]:
    """STREAM-like copy and triad bandwidth (bytes read and written per second)."""
    a, b, c = (np.random.default_rng(0).random(2**25) for _ in range(3))  # 256 MiB each
    copy = 2 * a.nbytes / _best(lambda: _copy(a, b), rounds)
    triad = 3 * a.nbytes / _best(lambda: _triad(a, b, c, 3.0), rounds)
    return copy, triad


def sparse_probe(rounds: int) -> None:
    """STREAM-like bandwidth, ``conv_matrix`` build rate and peak memory, and ``C @ X`` /
    ``C.T @ Y`` (1 and 32 columns) on a matrix larger than the last-level cache."""
    from tconv_sparse.bench.cases import CASES, MATRIX_CASES

    copy, triad = _stream(rounds)
    print(f"STREAM-like, {numba.get_num_threads()} threads: copy {copy / 1e9:.1f} GB/s, "
          f"triad {triad / 1e9:.1f} GB/s")
    for name in MATRIX_CASES:
        case = CASES[name]
        build = functools.partial(ts.conv_matrix, case.weight("float32"), case.shape,
                                  **case.keywords("conv"))
        seconds = _best(build, max(1, rounds // 3))
        tracemalloc.start()
        matrix = build()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        size = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
        print(f"conv_matrix {name:32s} nnz {matrix.nnz:.3g}: {seconds * 1e3:8.1f} ms, "
              f"{matrix.nnz / seconds:.3g} nnz/s, {size / seconds / 1e9:.2f} GB/s written, "
              f"peak traced memory {peak / size:.2f}x the matrix")
        del matrix
    weight = np.random.default_rng(1).standard_normal((8, 8, 3, 3)).astype(np.float32)
    geometry = Geometry.forward(weight.shape, (128, 128), padding=1)
    matrix = build_matrix(weight, geometry, np.float32)
    transposed = build_matrix(weight, geometry, np.float32, transpose=True)
    size = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    print(f"8 -> 8 channels, 128x128, k3: C is {matrix.shape}, {size / 2**20:.0f} MiB")
    rng = np.random.default_rng(2)
    for columns in (1, 32):
        shape = (matrix.shape[0],) if columns == 1 else (matrix.shape[0], columns)
        y, x = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
        for label, mine, scipys, data in (
                ("C.T @ Y", functools.partial(csr_matmul, transposed, y), matrix.T.__matmul__, y),
                ("C @ X", functools.partial(csr_matmul, matrix, x), matrix.__matmul__, x)):
            moved = size + 2 * data.nbytes  # the matrix, the vectors in and the vectors out
            ours, theirs = _best(mine, rounds), _best(functools.partial(scipys, data), max(1, rounds // 3))
            print(f"{label} {columns:2d} column(s): parallel CSR {ours * 1e3:7.2f} ms "
                  f"({moved / ours / 1e9:5.1f} GB/s moved, {moved / ours / copy:.0%} of copy), "
                  f"SciPy {theirs * 1e3:7.2f} ms ({moved / theirs / 1e9:5.1f} GB/s)")


def calibrate(cases, rounds: int, budget: float, timer=time.perf_counter) -> None:
    """Time both fast designs on ``cases``, fit :data:`tconv_sparse.backends.chooser.COSTS`, print it
    and how ``"auto"`` with the fitted and with the shipped constants does on each case."""
    rows = {}
    for direction in ("conv_transpose", "conv"):
        stencil = "gather" if direction == "conv_transpose" else "direct"
        for dtype in ("float32", "float64"):
            for case in cases:
                data, weight = case.data(direction, dtype)
                run = functools.partial(getattr(ts, direction), data, weight, **case.keywords(direction))
                functions = {m: functools.partial(run, method=m) for m in (stencil, "im2col")}
                times = _round_robin(functions, rounds, budget, timer)
                geometry = Geometry.forward(case.weight_shape, case.shape, stride=case.stride,
                                            padding=case.padding)
                rows.setdefault((direction, dtype), []).append(
                    (case, geometry, min(times[stencil]), min(times["im2col"])))
    fitted = {}
    for (direction, dtype), measured in rows.items():
        transposed = direction == "conv_transpose"
        feats = np.array([features(g, c.batch, transposed) for c, g, _, _ in measured]) * 1e-9
        stencil_t = np.array([t for _, _, t, _ in measured])
        gemm_t = np.array([t for _, _, _, t in measured])
        a, _ = nnls(feats[:, [0, 1, 4]] / stencil_t[:, None], np.ones(len(measured)))
        b, _ = nnls(feats[:, [2, 3, 4]] / gemm_t[:, None], np.ones(len(measured)))
        key = (direction, "f4" if dtype == "float32" else "f8")
        fitted[key] = (tuple(round(float(v), 3) for v in a), tuple(round(float(v), 3) for v in b))
    print("COSTS =", fitted)
    for constants, label in ((fitted, "fitted"), (COSTS, "shipped")):
        worst = 1.0
        saved = dict(COSTS)
        COSTS.update(constants)
        for (direction, dtype), measured in rows.items():
            for case, geometry, stencil_t, gemm_t in measured:
                s_model, g_model = modelled_times(geometry, case.batch, dtype,
                                                  direction == "conv_transpose")
                chosen = gemm_t if g_model < s_model else stencil_t
                worst = max(worst, chosen / min(stencil_t, gemm_t))
                if label == "fitted":
                    print(f"{direction[:6]} {dtype} {case.name:34s} stencil={stencil_t * 1e3:8.3f}ms "
                          f"gemm={gemm_t * 1e3:8.3f}ms auto={'gemm' if g_model < s_model else 'stencil'} "
                          f"x{chosen / min(stencil_t, gemm_t):.2f} of the best")
        COSTS.clear()
        COSTS.update(saved)
        print(f"{label} constants: auto is at worst {worst:.2f}x the best design")


def main(argv=None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", help="substring of case names (repeatable)")
    parser.add_argument("--dtype", action="append", choices=["float32", "float64"])
    parser.add_argument("--direction", action="append", choices=["conv_transpose", "conv"])
    parser.add_argument("--method", action="append", help="methods to time (default: all)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds at least (default 10)")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per case at most")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sparse", action="store_true",
                        help="STREAM bandwidth, conv_matrix build rate and peak memory, parallel "
                             "C @ X and C.T @ Y against SciPy")
    parser.add_argument("--calibrate", action="store_true",
                        help="time both fast designs on the grid and extra shapes, fit the cost "
                             "model of tconv_sparse.backends.chooser and print its constants")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with process CPU time (steadier on a busy machine; the sum over "
                             "threads, so use it with --threads 1)")
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads, user_api="blas")
    if args.sparse:
        sparse_probe(args.rounds)
        return
    if args.calibrate:
        calibrate([c for c in CALIBRATION_CASES if not args.case or any(s in c.name for s in args.case)],
                  args.rounds, args.budget, time.process_time if args.cpu_time else time.perf_counter)
        return
    print(f"# threads={args.threads} numba {numba.__version__} torch {torch.__version__}; "
          "time = median ms (min ms); xR = torch median / method median")
    cases = [c for c in CONV_CASES if not args.case or any(s in c.name for s in args.case)]
    for direction in args.direction or ["conv_transpose", "conv"]:
        valid = TRANSPOSE_METHODS if direction == "conv_transpose" else FORWARD_METHODS
        methods = [m for m in (args.method or valid) if m in valid]
        for dtype in args.dtype or ["float32", "float64"]:
            for case in cases:
                result = probe(case, direction, dtype, methods, args.rounds, args.budget,
                               time.process_time if args.cpu_time else time.perf_counter)
                peer = result["torch"][1]
                cells = [f"{name}={median * 1e3:.3f}({best * 1e3:.3f})"
                         + ("" if name == "torch" else f" x{peer / median:.2f}")
                         for name, (best, median) in result.items()]
                print(f"{direction[:6]:6s} {dtype:7s} {case.name:32s} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
