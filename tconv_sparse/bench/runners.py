"""Run the grid: the contenders, the correctness check, and the timing.

A *contender* is a factory ``factory(direction, case, data, weight)`` that
returns a zero-argument callable computing the result of ``direction`` for
that data: one per ``method`` of :func:`tconv_sparse.conv` /
:func:`tconv_sparse.conv_transpose`, plus PyTorch CPU as the peer. Every
contender of a case runs in this one process on the same arrays. Its first
call is the warm-up (Numba compiles there, never in a timed call) and its
output is checked against the definition ``C @ x`` / ``C.T @ y`` in float64
first; only a contender that agrees is timed. Only the public API of
tconv_sparse is used, so the harness measures whatever the kernels are.

Ctrl-C (SIGINT) stops a run between two contenders: :func:`run_benchmarks`
raises :class:`Interrupted` carrying every measurement that finished, also
when the interrupt arrived inside code that swallowed the ``KeyboardInterrupt``
(a signal handler records it, and the run checks after every contender).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field

import numpy as np

import tconv_sparse as ts
import numba

from tconv_sparse.core.config import limit_threads, num_threads
from tconv_sparse.functional import FORWARD_METHODS, TRANSPOSE_METHODS

from tconv_sparse.bench.cases import ConvCase

__all__ = [
    "PEER",
    "OK",
    "FAIL",
    "UNSUPPORTED",
    "ERROR",
    "SPARSE_REFERENCES",
    "REFERENCE_MAX_NNZ",
    "TOLERANCE",
    "NOISY_SPREAD",
    "Timing",
    "QUICK_TIMING",
    "FULL_TIMING",
    "Unavailable",
    "Interrupted",
    "Measurement",
    "format_time",
    "library_methods",
    "library_runner",
    "torch_runner",
    "import_torch",
    "match_threads",
    "use_threads",
    "contenders",
    "PLANNED",
    "planned_runner",
    "reference",
    "relative_error",
    "time_runner",
    "benchmark_row",
    "run_benchmarks",
]

#: name of the peer contender (PyTorch CPU, ``torch.nn.functional``)
PEER = "torch"
#: statuses of a :class:`Measurement`
OK, FAIL, UNSUPPORTED, ERROR = "ok", "FAIL", "n/a", "error"
#: name of the reference of each direction when ``C`` is built
SPARSE_REFERENCES = {"conv": "C @ x", "conv_transpose": "C.T @ y"}
#: largest ``C`` (nonzeros) built as the reference; above it torch (or im2col) in float64 is
#: the reference. 5e7 nonzeros are about 600 MiB in float64.
REFERENCE_MAX_NNZ = 50_000_000
#: largest accepted ``max|result - reference| / max|reference|`` per dtype
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
#: a measurement whose spread (interquartile range / median) exceeds this is marked noisy
NOISY_SPREAD = 0.2


@dataclass(frozen=True)
class Timing:
    """How often each contender is timed.

    A contender runs at least ``min_repeats`` times, then again while the
    time spent on it is below ``budget`` seconds, at most ``max_repeats``
    times; the median is reported.
    """

    min_repeats: int
    max_repeats: int
    budget: float


QUICK_TIMING = Timing(min_repeats=3, max_repeats=25, budget=0.25)
FULL_TIMING = Timing(min_repeats=5, max_repeats=100, budget=1.0)


class Unavailable(Exception):
    """A contender that cannot run on this machine (PyTorch not importable)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_benchmarks`; ``results`` holds every measurement that finished."""

    def __init__(self, results):
        super().__init__(f"interrupted after {len(results)} measurements")
        self.results = list(results)


@dataclass
class Measurement:
    """The outcome of one contender on one case, direction and dtype.

    Attributes
    ----------
    status : str
        :data:`OK` (checked, then timed), :data:`FAIL` (wrong result, not
        timed), :data:`UNSUPPORTED` (the method refuses the case with a
        ``ValueError``, or the peer is not installed) or :data:`ERROR` (any
        other exception).
    times : list of float
        Seconds per timed call (empty unless ``status == OK``).
    error : float or None
        ``max|result - reference| / max|reference|``.
    reference : str
        What the result was checked against.
    ratio : float or None
        Median time over the peer's median time for the same case.
    """

    direction: str
    case: ConvCase
    dtype: str
    method: str
    status: str = OK
    times: list = field(default_factory=list)
    error: float | None = None
    reference: str = ""
    message: str = ""
    ratio: float | None = None

    @property
    def median(self) -> float | None:
        """Median seconds per call, ``None`` when not timed."""
        return statistics.median(self.times) if self.times else None

    @property
    def iqr(self) -> float | None:
        """Interquartile range of the timed calls in seconds, ``None`` below two calls."""
        if len(self.times) < 2:
            return None
        quartiles = statistics.quantiles(self.times, n=4, method="inclusive")
        return quartiles[2] - quartiles[0]

    @property
    def spread(self) -> float | None:
        """``iqr / median``: the relative spread of the timed calls (``None`` below two calls)."""
        iqr = self.iqr
        return None if iqr is None or not self.median else iqr / self.median

    def record(self) -> dict:
        """Flat, JSON-ready description (``times`` included)."""
        return {
            "direction": self.direction,
            "case": self.case.name,
            "regime": self.case.regime,
            "dtype": self.dtype,
            "method": self.method,
            "status": self.status,
            "median_s": self.median,
            "min_s": min(self.times) if self.times else None,
            "runs": len(self.times),
            "iqr_s": self.iqr,
            "spread": self.spread,
            "ratio_to_torch": self.ratio,
            "max_rel_error": self.error,
            "reference": self.reference,
            "message": self.message,
            "times_s": list(self.times),
        }


def format_time(seconds: float) -> str:
    """``seconds`` with three significant digits in s, ms or µs.

    Examples
    --------
    >>> from tconv_sparse.bench.runners import format_time
    >>> format_time(0.01234), format_time(2.5), format_time(4.2e-5)
    ('12.3 ms', '2.50 s', '42.0 µs')
    """
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            value = seconds / scale
            return f"{value:.{max(0, 3 - len(str(int(value))))}f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def library_methods(direction: str) -> tuple[str, ...]:
    """The ``method`` names of ``direction`` (``"conv"`` or ``"conv_transpose"``)."""
    return TRANSPOSE_METHODS if direction == "conv_transpose" else FORWARD_METHODS


def library_runner(method: str):
    """Contender factory for ``tconv_sparse.<direction>(..., method=method)``."""
    def factory(direction, case, data, weight):
        return functools.partial(getattr(ts, direction), data, weight, method=method,
                                 **case.keywords(direction))
    return factory


#: contenders that apply a plan built once: ``ConvOperator.conv`` / ``.conv_transpose`` ("plan")
#: and the LinearOperator products ``matvec``/``matmat`` and ``rmatvec``/``rmatmat`` ("linop")
PLANNED = ("plan", "linop")


def planned_runner(kind: str):
    """Contender factory for a :class:`~tconv_sparse.ConvOperator` built once, in ``setup``."""
    def factory(direction, case, data, weight):
        operator = ts.ConvOperator(weight, case.shape, stride=case.stride, padding=case.padding)
        transposed = direction == "conv_transpose"
        if kind == "plan":
            return functools.partial(operator.conv_transpose if transposed else operator.conv, data)
        batch, shape = data.shape[0], case.output_shape(direction)
        if batch == 1:
            vector = np.ascontiguousarray(data.reshape(-1))
            product = operator.rmatvec if transposed else operator.matvec
            return lambda: product(vector).reshape(shape)
        columns = np.ascontiguousarray(data.reshape(batch, -1).T)
        product = operator.rmatmat if transposed else operator.matmat
        return lambda: product(columns).T.reshape(shape)
    return factory


def import_torch():
    """Import PyTorch with its intra-op threads set to the library's (``num_threads()``).

    Raises
    ------
    Unavailable
        When PyTorch is not importable.
    """
    try:
        import torch
    except ImportError as error:
        raise Unavailable(f"PyTorch is not importable ({error})") from None
    torch.set_num_threads(num_threads())
    return torch


def torch_runner(direction, case, data, weight):
    """Contender factory for ``torch.nn.functional.<direction><d>d`` on the same arrays."""
    torch = import_torch()
    function = getattr(torch.nn.functional, f"{direction}{len(case.shape)}d")
    data, weight = torch.from_numpy(data), torch.from_numpy(weight)
    keywords = case.keywords(direction)

    def run():
        with torch.inference_mode():
            return function(data, weight, **keywords).numpy()
    return run


def match_threads() -> None:
    """Limit BLAS (used by ``im2col`` and ``zero_insert``) to the library's thread count.

    The Numba kernels use ``num_threads()`` threads and the PyTorch peer is
    set to the same count by :func:`import_torch`; without threadpoolctl the
    BLAS thread count is left as it is (the machine report shows it).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=num_threads(), user_api="blas")


def use_threads(count) -> int:
    """Run the Numba kernels on ``count`` threads (BLAS and PyTorch follow, see :func:`match_threads`).

    Raises
    ------
    ValueError
        Unless ``1 <= count <= numba.config.NUMBA_NUM_THREADS``.
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit:
        raise ValueError(f"threads must be an int from 1 to {limit} (NUMBA_NUM_THREADS), got {count!r}")
    limit_threads(count)  # not numba.set_num_threads: it starts Numba's threading layer (see num_threads)
    return count


def contenders(direction: str, methods=None, peer: bool = True) -> dict:
    """``name -> factory`` for ``direction``: the library's methods (all, or those in
    ``methods``) and, if ``peer``, PyTorch."""
    chosen = {method: library_runner(method) for method in library_methods(direction)
              if methods is None or method in methods}
    chosen.update({kind: planned_runner(kind) for kind in PLANNED if methods is None or kind in methods})
    if peer:
        chosen[PEER] = torch_runner
    return chosen


def reference(direction: str, case: ConvCase, data, weight,
              max_nnz: int = REFERENCE_MAX_NNZ) -> tuple[np.ndarray, str]:
    """The float64 result every contender is checked against, and what it is.

    The definition ``C @ x`` / ``C.T @ y`` with ``C = conv_matrix(weight)``
    when ``C`` has at most ``max_nnz`` nonzeros; otherwise PyTorch in float64,
    or ``im2col`` in float64 when PyTorch is not importable.
    """
    data, weight = data.astype(np.float64), weight.astype(np.float64)
    if case.nnz <= max_nnz:
        matrix = ts.conv_matrix(weight, case.shape, **case.keywords("conv"))
        columns = data.reshape(case.batch, -1).T
        result = (matrix.T if direction == "conv_transpose" else matrix) @ columns
        return result.T.reshape(case.output_shape(direction)), SPARSE_REFERENCES[direction]
    why = f"C would have {case.nnz:.3g} nonzeros > {max_nnz:.3g}"
    try:
        return torch_runner(direction, case, data, weight)(), f"torch float64 ({why})"
    except Unavailable:
        return library_runner("im2col")(direction, case, data, weight)(), f"im2col float64 ({why})"


def relative_error(result, expected: np.ndarray) -> float:
    """``max|result - expected| / max|expected|`` (``inf`` for a wrong shape)."""
    result = np.asarray(result)
    if result.shape != expected.shape:
        return math.inf
    scale = np.max(np.abs(expected), initial=0.0)
    difference = np.max(np.abs(result - expected), initial=0.0)
    return float(difference / scale) if scale else float(difference)


def time_runner(run, timing: Timing) -> list[float]:
    """Seconds per call of ``run`` (already warmed up), garbage collection off, as ``timeit``."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        times = []
        start = time.perf_counter()
        while len(times) < timing.min_repeats or (
                len(times) < timing.max_repeats and time.perf_counter() - start < timing.budget):
            begin = time.perf_counter()
            run()
            times.append(time.perf_counter() - begin)
        return times
    finally:
        if enabled:
            gc.enable()


def _measure(measurement: Measurement, factory, case, data, weight, expected, timing) -> None:
    try:
        run = factory(measurement.direction, case, data, weight)
        result = run()  # warm-up: JIT compilation happens here
    except (Unavailable, ValueError) as error:
        measurement.status, measurement.message = UNSUPPORTED, str(error)
        return
    except Exception as error:  # noqa: BLE001 - any failure is reported in the table
        measurement.status, measurement.message = ERROR, f"{type(error).__name__}: {error}"
        return
    measurement.error = relative_error(result, expected)
    del result
    tolerance = TOLERANCE[measurement.dtype]
    if not measurement.error <= tolerance:
        measurement.status = FAIL
        measurement.message = (f"max relative error {measurement.error:.2e} against "
                               f"{measurement.reference} exceeds {tolerance:.0e}; not timed")
        return
    measurement.times = time_runner(run, timing)


def _fill_ratios(rows) -> None:
    peer = next((row for row in rows if row.method == PEER and row.times), None)
    for row in rows:
        if peer is not None and row.times:
            row.ratio = row.median / peer.median


def _never() -> bool:
    return False


def benchmark_row(direction: str, case: ConvCase, dtype: str, factories: dict, timing: Timing, *,
                  reference_max_nnz: int = REFERENCE_MAX_NNZ, progress=None, stop=_never) -> list[Measurement]:
    """Check and time every contender of ``factories`` on one case, direction and dtype.

    Parameters
    ----------
    direction : {"conv_transpose", "conv"}
    case : ConvCase
    dtype : {"float32", "float64"}
    factories : dict
        ``name -> factory(direction, case, data, weight)``, see :func:`contenders`.
    timing : Timing
    reference_max_nnz : int
        Passed to :func:`reference`.
    progress : callable, optional
        Called with one line of text after each contender.
    stop : callable, optional
        Checked after each contender; when it returns true the row stops as on Ctrl-C (the
        contender just measured is dropped: its interrupt may have been swallowed).

    Returns
    -------
    list of Measurement
        One per contender, with ``ratio`` filled in when the peer was timed.

    Raises
    ------
    Interrupted
        On Ctrl-C (or ``stop()``), with the contenders that finished.
    """
    rows = []
    try:
        data, weight = case.data(direction, dtype)
        expected, reference_name = reference(direction, case, data, weight, reference_max_nnz)
        for method, factory in factories.items():
            measurement = Measurement(direction, case, dtype, method, reference=reference_name)
            _measure(measurement, factory, case, data, weight, expected, timing)
            if stop():
                raise KeyboardInterrupt
            rows.append(measurement)
            if progress is not None:
                done = (f"{format_time(measurement.median)} ({len(measurement.times)} runs)"
                        if measurement.times else f"{measurement.status}: {measurement.message}")
                progress(f"    {method:<12} {done}")
    except KeyboardInterrupt:
        _fill_ratios(rows)
        raise Interrupted(rows) from None
    _fill_ratios(rows)
    return rows


class _InterruptFlag:
    """True once SIGINT arrived: the handler records it, then raises ``KeyboardInterrupt`` as usual."""

    def __init__(self):
        self.interrupted = False

    def __call__(self) -> bool:
        return self.interrupted

    def handler(self, signum, frame):
        self.interrupted = True
        raise KeyboardInterrupt


@contextlib.contextmanager
def _sigint_recorded():
    """An :class:`_InterruptFlag` set by SIGINT within the block (main thread only)."""
    flag = _InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGINT, flag.handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def run_benchmarks(plan, timing: Timing, *, factories=contenders, reference_max_nnz=REFERENCE_MAX_NNZ,
                   progress=None, on_step=None) -> list[Measurement]:
    """Run :func:`benchmark_row` for every ``(direction, case, dtype)`` of ``plan``.

    Parameters
    ----------
    plan : sequence of (str, ConvCase, str)
    timing : Timing
    factories : callable
        ``factories(direction) -> {name: factory}``; default :func:`contenders`.
    reference_max_nnz : int
        Passed to :func:`reference`.
    progress : callable, optional
        Called with one line of text per step.
    on_step : callable, optional
        Called with ``(steps done, steps in all)`` after each step.

    Returns
    -------
    list of Measurement

    Raises
    ------
    Interrupted
        On Ctrl-C, with every measurement that finished.
    """
    match_threads()
    results = []
    with _sigint_recorded() as interrupted:
        try:
            for index, (direction, case, dtype) in enumerate(plan, 1):
                if progress is not None:
                    progress(f"[{index}/{len(plan)}] {direction} {case.name} {dtype}")
                results += benchmark_row(direction, case, dtype, factories(direction), timing,
                                         reference_max_nnz=reference_max_nnz, progress=progress,
                                         stop=interrupted)
                if on_step is not None:
                    on_step(index, len(plan))
        except Interrupted as error:
            raise Interrupted(results + error.results) from None
        except KeyboardInterrupt:
            raise Interrupted(results) from None
    return results
