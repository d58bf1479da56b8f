"""Measured planning: time the candidate methods once, keep the fastest.

For one (direction, batch size, dtype, thread count) of a plan, every
candidate method runs once untimed (compilation, matrix build and caches
are never timed), then is timed on random data of the right layout until it
has run at least :data:`REPEATS` times and :data:`MIN_SECONDS` in all (at most
:data:`MAX_REPEATS` times); the method with the smallest median wins. The
timings stay on the plan (``Plan.timings``) and the winner goes to the wisdom
file (:mod:`tconv_sparse.plan.wisdom`), keyed by the library version, the
geometry, dtype, batch and threads, so later processes skip the measurement.

The candidates are the methods that can be fastest: ``direct``/``gather``,
``im2col``, and ``sparse`` when its matrix fits in a quarter of the memory
limit. ``scatter`` and ``zero_insert``, the literal formulations, are never
faster than ``gather`` on the benchmark grid and are not timed.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from tconv_sparse.core.config import get_max_bytes, num_threads
from tconv_sparse.core.matrix import matrix_bytes
from tconv_sparse.plan import wisdom

__all__ = ["CANDIDATES", "REPEATS", "MAX_REPEATS", "MIN_SECONDS", "wisdom_key", "choose", "time_method"]

#: methods timed per direction (``transposed`` -> names)
CANDIDATES = {False: ("direct", "im2col", "sparse"), True: ("gather", "im2col", "sparse")}
#: fewest timed runs, most timed runs, and least total time per candidate
REPEATS, MAX_REPEATS, MIN_SECONDS = 3, 50, 0.02


def wisdom_key(plan, transposed: bool, batch: int, dtype, threads: int) -> str:
    """The wisdom-file key of one choice: direction, geometry, dtype, batch and threads."""
    return (f"{'conv_transpose' if transposed else 'conv'}|{plan.geometry!r}|{np.dtype(dtype).str}|"
            f"batch={batch}|threads={threads}")


def _candidates(plan, transposed: bool, dtype) -> list:
    fits = matrix_bytes(plan.geometry, dtype, transposed) <= get_max_bytes() / 4
    return [m for m in CANDIDATES[transposed] if m != "sparse" or fits]


def _sample(plan, transposed: bool, batch: int, dtype) -> np.ndarray:
    g = plan.geometry
    channels, spatial = (g.out_channels, g.output_shape) if transposed else (g.in_channels, g.input_shape)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((batch, channels, *spatial))
    if np.dtype(dtype).kind == "c":
        data = data + 1j * rng.standard_normal(data.shape)
    return np.ascontiguousarray(data, dtype=dtype)


def time_method(plan, method: str, data: np.ndarray, transposed: bool) -> float:
    """Median seconds of one call of ``method`` on ``data`` after one untimed call."""
    plan.run(method, data, transposed)
    times, total = [], 0.0
    while len(times) < REPEATS or (total < MIN_SECONDS and len(times) < MAX_REPEATS):
        start = time.perf_counter()
        plan.run(method, data, transposed)
        times.append(time.perf_counter() - start)
        total += times[-1]
    return statistics.median(times)


def choose(plan, transposed: bool, batch: int, dtype) -> str:
    """The remembered or measured fastest method for this choice (timings go to ``plan.timings``)."""
    threads = num_threads()
    key = wisdom_key(plan, transposed, batch, dtype, threads)
    method = wisdom.lookup(key)
    if method in CANDIDATES[transposed]:
        return method
    data = _sample(plan, transposed, batch, dtype)
    timings = {m: time_method(plan, m, data, transposed) for m in _candidates(plan, transposed, dtype)}
    plan.timings[(transposed, batch, np.dtype(dtype), threads)] = timings
    method = min(timings, key=timings.get)
    wisdom.record(key, method)
    return method
