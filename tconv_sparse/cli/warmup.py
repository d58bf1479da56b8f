"""``tconv-sparse warmup``: compile the Numba kernels ahead of time, in parallel processes.

Each job is one ``(direction, method, dtype)``: a worker process (one per
usable CPU, started with ``spawn``) makes the small calls that compile every
kernel that method runs for that dtype, and Numba's on-disk cache keeps them
for every later process. ``--method`` and ``--dtype`` choose a part (default:
every method of both directions and every dtype). Progress goes to stderr (a
tqdm bar when tqdm is installed, plain lines otherwise); exit status 0 when
every job compiled, 1 otherwise.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from tconv_sparse.functional import FORWARD_METHODS, TRANSPOSE_METHODS

__all__ = ["DTYPES", "add_arguments", "jobs", "compile_job", "run"]

#: the dtypes the kernels are compiled for
DTYPES = ("float32", "float64", "complex64", "complex128")
#: ``(weight shape, transposed-convolution input shape)`` of the warm-up calls: several channels
#: and samples, and one output plane (``scatter``'s private buffers)
_CALLS = (((4, 2, 3, 3), (2, 4, 6, 5)), ((1, 1, 3, 3), (1, 1, 6, 5)))


def add_arguments(parser) -> None:
    """Add the ``warmup`` options to ``parser``."""
    methods = sorted({*FORWARD_METHODS, *TRANSPOSE_METHODS} - {"auto"})
    parser.add_argument("--method", action="append", choices=methods, metavar="NAME",
                        help="compile only this method (repeatable; one of %(choices)s; default all)")
    parser.add_argument("--dtype", action="append", choices=DTYPES,
                        help="compile only for this dtype (repeatable; default all)")


def jobs(methods=None, dtypes=None) -> list[tuple[str, str, str]]:
    """The ``(direction, method, dtype)`` jobs of a selection (``None``: everything).

    Examples
    --------
    >>> from tconv_sparse.cli.warmup import jobs
    >>> jobs(["direct", "sparse"], ["float32"])
    [('conv_transpose', 'sparse', 'float32'), ('conv', 'sparse', 'float32'), ('conv', 'direct', 'float32')]
    """
    selected = []
    for direction, names in (("conv_transpose", TRANSPOSE_METHODS), ("conv", FORWARD_METHODS)):
        selected += [(direction, method) for method in names
                     if method != "auto" and (not methods or method in methods)]
    return [(direction, method, dtype) for dtype in (dtypes or DTYPES) for direction, method in selected]


def compile_job(direction: str, method: str, dtype: str) -> float:
    """Make the calls that compile ``method`` of ``direction`` for ``dtype``; return the seconds.

    Examples
    --------
    >>> from tconv_sparse.cli.warmup import compile_job
    >>> compile_job("conv_transpose", "zero_insert", "float64") >= 0
    True
    """
    import tconv_sparse as ts
    from tconv_sparse.core import _spin
    from tconv_sparse.core.config import CompileNotice

    start = time.perf_counter()
    _spin.compile_all()  # the waits of the helper threads, which calls use from their fourth on
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompileNotice)
        for weight_shape, small in _CALLS:
            weight = rng.standard_normal(weight_shape).astype(dtype)
            y = rng.standard_normal(small).astype(dtype)
            data = y if direction == "conv_transpose" else ts.conv_transpose(y, weight, stride=2, padding=1)
            for batch in (data[:1], data):  # one sample (a vector for sparse) and a batch
                getattr(ts, direction)(batch, weight, stride=2, padding=1, method=method)
    return time.perf_counter() - start


def _workers(count: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, count))


def run(args) -> int:
    """Compile the selected jobs; 0 when every job compiled, 1 otherwise."""
    from tconv_sparse.core.progress import Progress

    todo = jobs(args.method, args.dtype)
    start, failed = time.perf_counter(), 0
    workers = _workers(len(todo))
    with Progress(len(todo)) as progress, ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        progress.line(f"compiling {len(todo)} kernel sets in {workers} processes (cached for later runs)")
        futures = {pool.submit(compile_job, *job): job for job in todo}
        for done, future in enumerate(as_completed(futures), 1):
            direction, method, dtype = futures[future]
            try:
                progress.line(f"[{done}/{len(todo)}] {direction} {method} {dtype}: {future.result():.1f} s")
            except Exception as error:  # noqa: BLE001 - report every job, then fail
                failed += 1
                progress.line(f"[{done}/{len(todo)}] {direction} {method} {dtype}: FAILED ({error})")
            progress.step(done)
    print(f"warmup: {len(todo) - failed} of {len(todo)} compiled in {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    return 1 if failed else 0
