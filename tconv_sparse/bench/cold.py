"""Cold start: compile time and first-call time, each (direction, method, dtype) in fresh processes.

A *row* runs one call of ``tconv_sparse.<direction>(..., method=method)`` on
:data:`COLD_CASE` twice in a fresh Python process: first with a fresh, empty
``NUMBA_CACHE_DIR`` (a temporary folder, so everything the call needs
compiles), then in a second fresh process on the cache the first one filled.
It reports the import time of ``tconv_sparse`` (over NumPy and SciPy), the
cold first call, the cached first call, their difference (the compile time),
a warm call, and how many Numba specializations the call compiled. The peer
row is PyTorch in a fresh process: ``import torch`` and its first
``conv_transpose2d`` / ``conv2d`` on the same arrays. The ratio compares the
start-up a user meets, import plus first call, with PyTorch's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

__all__ = ["COLD_CASE", "ColdRow", "cold_row", "torch_row", "format_cold_table", "count_specializations"]

#: the layer of every cold row: a float32 decoder layer of 8 -> 3 channels, kernel 4, stride 2
#: (transposed: ``(1, 8, 16, 16)`` to ``(1, 3, 32, 32)``; forward: the way back, same weight)
COLD_CASE = {"weight": (8, 3, 4, 4), "small": (16, 16), "large": (32, 32), "stride": 2, "padding": 1}

#: the child of a library row; argv: direction, method, dtype
_LIBRARY_CHILD = """
import json, sys, time
import numpy as np, scipy.sparse
start = time.perf_counter()
import tconv_sparse as ts
imported = time.perf_counter()
from tconv_sparse.bench.cold import COLD_CASE, case_arrays, count_specializations
direction, method, dtype = sys.argv[1:4]
data, weight = case_arrays(direction, dtype)
function = getattr(ts, direction)
keywords = dict(stride=COLD_CASE["stride"], padding=COLD_CASE["padding"], method=method)
if direction == "conv_transpose":
    keywords["output_size"] = COLD_CASE["large"]
first = time.perf_counter()
function(data, weight, **keywords)
second = time.perf_counter()
function(data, weight, **keywords)
third = time.perf_counter()
print(json.dumps({"import_s": imported - start, "first_s": second - first, "warm_s": third - second,
                  "specializations": count_specializations()}))
"""

#: the child of the peer row; argv: direction, dtype
_TORCH_CHILD = """
import json, sys, time
import numpy as np
start = time.perf_counter()
try:
    import torch
except ImportError:
    print(json.dumps(None)); sys.exit(0)
imported = time.perf_counter()
from tconv_sparse.bench.cold import COLD_CASE, case_arrays
direction, dtype = sys.argv[1:3]
data, weight = (torch.from_numpy(a) for a in case_arrays(direction, dtype))
function = getattr(torch.nn.functional, direction + "2d")
keywords = dict(stride=COLD_CASE["stride"], padding=COLD_CASE["padding"])
if direction == "conv_transpose":
    keywords["output_padding"] = 1
first = time.perf_counter()
with torch.inference_mode():
    function(data, weight, **keywords)
second = time.perf_counter()
with torch.inference_mode():
    function(data, weight, **keywords)
third = time.perf_counter()
print(json.dumps({"import_s": imported - start, "first_s": second - first, "warm_s": third - second,
                  "specializations": None}))
"""


def case_arrays(direction: str, dtype: str):
    """``(data, weight)`` of :data:`COLD_CASE` for ``direction`` (fixed seed).

    Examples
    --------
    >>> from tconv_sparse.bench.cold import case_arrays
    >>> [a.shape for a in case_arrays("conv_transpose", "float32")]
    [(1, 8, 16, 16), (8, 3, 4, 4)]
    """
    import numpy as np

    rng = np.random.default_rng(0)
    weight = COLD_CASE["weight"]
    channels, shape = (weight[0], COLD_CASE["small"]) if direction == "conv_transpose" else \
        (weight[1], COLD_CASE["large"])
    data = rng.standard_normal((1, channels, *shape)).astype(dtype)
    return data, rng.standard_normal(weight).astype(dtype)


def count_specializations() -> int:
    """Numba specializations compiled (or loaded from the cache) so far by the package's kernels.

    Examples
    --------
    >>> from tconv_sparse.bench.cold import count_specializations
    >>> count_specializations() >= 0
    True
    """
    seen, total = set(), 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("tconv_sparse") or module is None:
            continue
        for value in vars(module).values():
            dispatcher = getattr(value, "_dispatcher", None) if type(value).__name__ == "_Kernel" else None
            if dispatcher is not None and id(dispatcher) not in seen:
                seen.add(id(dispatcher))
                total += len(dispatcher.overloads)
    return total


@dataclass
class ColdRow:
    """One row: seconds of a fresh process (``None`` where the contender is not installed)."""

    direction: str
    method: str
    dtype: str
    import_s: float | None = None
    cold_first_s: float | None = None
    cached_first_s: float | None = None
    warm_s: float | None = None
    specializations: int | None = None
    error: str | None = None

    @property
    def compile_s(self) -> float | None:
        """Cold first call minus cached first call."""
        if self.cold_first_s is None or self.cached_first_s is None:
            return None
        return max(self.cold_first_s - self.cached_first_s, 0.0)

    @property
    def start_s(self) -> float | None:
        """What a user meets from an empty cache: the import plus the cold first call."""
        if self.import_s is None or self.cold_first_s is None:
            return None
        return self.import_s + self.cold_first_s


def _child(code: str, arguments, cache_dir: str, timeout: float):
    environment = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    done = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True,
                          env=environment, timeout=timeout, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise RuntimeError(lines[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def cold_row(direction: str, method: str, dtype: str, timeout: float = 600.0) -> ColdRow:
    """Run one library row: a fresh process on an empty cache, then one on the cache it filled."""
    row = ColdRow(direction, method, dtype)
    with tempfile.TemporaryDirectory(prefix="tconv-cold-") as cache_dir:
        try:
            cold = _child(_LIBRARY_CHILD, (direction, method, dtype), cache_dir, timeout)
            cached = _child(_LIBRARY_CHILD, (direction, method, dtype), cache_dir, timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            row.error = str(error)
            return row
    row.import_s, row.cold_first_s, row.specializations = cold["import_s"], cold["first_s"], \
        cold["specializations"]
    row.cached_first_s, row.warm_s = cached["first_s"], cached["warm_s"]
    return row


def torch_row(direction: str, dtype: str, timeout: float = 600.0) -> ColdRow:
    """The peer row: ``import torch`` and its first call in a fresh process (all ``None`` without
    PyTorch)."""
    row = ColdRow(direction, "torch", dtype)
    with tempfile.TemporaryDirectory(prefix="tconv-cold-") as cache_dir:
        try:
            result = _child(_TORCH_CHILD, (direction, dtype), cache_dir, timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            row.error = str(error)
            return row
    if result is not None:
        row.import_s, row.cold_first_s, row.warm_s = result["import_s"], result["first_s"], result["warm_s"]
        row.cached_first_s = row.cold_first_s
    return row


def _seconds(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_cold_table(rows, peers) -> str:
    """A Markdown table of ``rows``; ``peers`` maps ``(direction, dtype)`` to the torch row.

    Examples
    --------
    >>> from tconv_sparse.bench.cold import ColdRow, format_cold_table
    >>> row = ColdRow("conv", "direct", "float32", 0.4, 2.5, 0.1, 0.001, 12)
    >>> peer = ColdRow("conv", "torch", "float32", 1.5, 0.4, 0.4, 0.0002)
    >>> print(format_cold_table([row], {("conv", "float32"): peer}).splitlines()[2])
    | conv | direct | float32 | 0.40 | 2.50 | 0.10 | 2.40 | 0.0010 | 12 | 1.5x |
    """
    lines = ["| direction | method | dtype | import s | cold first call s | cached first call s | compile s "
             "| warm call s | specializations | import + first call vs torch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        peer = peers.get((row.direction, row.dtype))
        ratio = "n/a" if row.method == "torch" or peer is None or None in (row.start_s, peer.start_s) \
            else f"{row.start_s / peer.start_s:.1f}x"
        if row.error:
            lines.append(f"| {row.direction} | {row.method} | {row.dtype} | error: {row.error} "
                         "| | | | | | |")
            continue
        warm = "n/a" if row.warm_s is None else f"{row.warm_s:.4f}"
        count = "" if row.specializations is None else str(row.specializations)
        lines.append(f"| {row.direction} | {row.method} | {row.dtype} | {_seconds(row.import_s)} "
                     f"| {_seconds(row.cold_first_s)} | {_seconds(row.cached_first_s)} "
                     f"| {_seconds(row.compile_s)} | {warm} | {count} | {ratio} |")
    return "\n".join(lines)
