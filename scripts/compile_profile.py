"""Where compile time goes: per Numba function, the time and count of its compilations.

Run it in a fresh process with an empty cache, e.g.::

    NUMBA_CACHE_DIR=$(mktemp -d) python scripts/compile_profile.py conv_transpose gather float32

Arguments: direction, method, dtype (as in ``tconv-sparse bench --cold``; the
case is :data:`tconv_sparse.bench.cold.COLD_CASE`). Prints, per compiled
function, the number of specializations and the compile time excluding the
functions it compiled inside it (nested compilations of callees), largest first, and the part
of it spent in LLVM (optimisation passes and machine code, Numba's LLVM lock).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

from numba.core import event


class _Timer(event.Listener):
    def __init__(self):
        self.stack, self.own, self.count = [], defaultdict(float), defaultdict(int)
        self.llvm = defaultdict(float)

    def on_start(self, ev):
        self.stack.append([ev.data["dispatcher"].py_func.__qualname__, time.perf_counter(), 0.0])

    def on_end(self, ev):
        name, start, inner = self.stack.pop()
        total = time.perf_counter() - start
        self.own[name] += total - inner
        self.count[name] += 1
        if self.stack:
            self.stack[-1][2] += total


class _LLVMTimer(event.Listener):
    """Adds the time spent holding Numba's LLVM lock (optimisation and machine code) to the
    function whose compilation is innermost at that moment."""

    def __init__(self, timer):
        self.timer, self.start = timer, None

    def on_start(self, ev):
        self.start = time.perf_counter()

    def on_end(self, ev):
        if self.timer.stack:
            self.timer.llvm[self.timer.stack[-1][0]] += time.perf_counter() - self.start


def main(direction: str, method: str, dtype: str) -> None:
    import tconv_sparse as ts
    from tconv_sparse.bench.cold import COLD_CASE, case_arrays

    data, weight = case_arrays(direction, dtype)
    keywords = dict(stride=COLD_CASE["stride"], padding=COLD_CASE["padding"], method=method)
    if direction == "conv_transpose":
        keywords["output_size"] = COLD_CASE["large"]
    timer = _Timer()
    start = time.perf_counter()
    with event.install_listener("numba:compile", timer), \
            event.install_listener("numba:llvm_lock", _LLVMTimer(timer)):
        getattr(ts, direction)(data, weight, **keywords)
    print(f"first call {time.perf_counter() - start:.2f} s; own compile time per function "
          f"(of which LLVM), {sum(timer.count.values())} compilations:")
    for name, seconds in sorted(timer.own.items(), key=lambda item: -item[1]):
        print(f"  {seconds:7.2f} s ({timer.llvm[name]:5.2f})  {timer.count[name]:3d} x  {name}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
