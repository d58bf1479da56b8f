"""Time the PyTorch bridge against PyTorch's own transposed convolution, in one process.

For each case of :mod:`tconv_sparse.bench.torch_bridge` (the asv suite's
``benchmarks/torch_bridge.py`` times the same), ``tconv_sparse.torch.conv_transpose``
and ``F.conv_transpose{1,2,3}d`` (and, for 2-D, ``tconv_sparse.torch.ConvTranspose2d``
and ``torch.nn.ConvTranspose2d``) run forward, and forward + backward
(``out.sum().backward()`` into the input, the weight and the bias), round-robin after a
warm-up, so that load from other processes hits all alike, in a balanced order (:data:`ORDERS`:
a call never follows itself, which would find its freed output buffer still in the caches, and
follows each other call equally often). Zero padding is PyTorch's only mode: ``ratio`` is the
bridge's median over PyTorch's (the issue's target is <= 1.3).
``circular`` (no PyTorch peer) is the bridge with ``padding_mode="circular"``, and
``circ/torch`` its ratio to PyTorch's zero-padded time. Prints a markdown table.
``--clock cpu`` times the process's CPU time (all threads, spinning ones included)
instead of the wall clock. ``--calls N`` times N back-to-back calls per sample (their
mean), which resolves the microseconds of the smallest case; ``--case`` picks cases by name.

Usage::

    python scripts/bench_torch_bridge.py                     # 2 threads, 9 repeats, wall clock
    python scripts/bench_torch_bridge.py --repeats 15 --threads 1 --clock cpu
    python scripts/bench_torch_bridge.py --case image --calls 2000   # the call overhead
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from tconv_sparse.bench import torch_bridge

#: the rounds' orders of the three contenders, cycled: all six permutations, chained so that no
#: contender runs twice in a row (also from one round to the next, and from the last to the
#: first) and each follows each of the two others in three of the six rounds
ORDERS = ((0, 1, 2), (1, 0, 2), (0, 2, 1), (2, 1, 0), (1, 2, 0), (2, 0, 1))
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _medians(calls, repeats, clock, per_sample=1, warmup=2):
    """Median seconds of each of the three calls, timed round-robin (``per_sample`` calls per round).

    The rounds cycle through :data:`ORDERS`, so that no contender follows
    itself or always the same one (the allocator's and the caches' state after
    a call affects the next).
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    items = list(calls.items())
    for round_ in range(repeats):
        for name, call in (items[index] for index in ORDERS[round_ % len(ORDERS)]):
            start = clock()
            for _ in range(per_sample):
                call()
            times[name].append((clock() - start) / per_sample)
    return {name: statistics.median(values) for name, values in times.items()}


def _format(seconds):
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def rows(repeats, clock=time.perf_counter, per_sample=1, names=None):
    """Yield ``(case name, call, medians)`` for every case (or those ``names`` holds), kind and pass."""
    for case in torch_bridge.CASES:
        if names and case.name.split(":")[0] not in names:
            continue
        y, weight, bias = torch_bridge.tensors(case)
        for kind in torch_bridge.KINDS[:1 if len(case.shape) != 2 else None]:
            forwards = torch_bridge.forwards(case, kind, weight, bias)
            for which in torch_bridge.PASSES:
                calls = {name: torch_bridge.call(forward, y, weight, bias, which == "fwd+bwd")
                         for name, forward in forwards.items()}
                yield case.name, f"{kind} {which}", _medians(calls, repeats, clock, per_sample)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (median; at least 7)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="wall (time.perf_counter) or cpu (time.process_time, all threads)")
    parser.add_argument("--calls", type=int, default=1,
                        help="back-to-back calls per timed sample (their mean; default 1)")
    names = [case.name.split(":")[0] for case in torch_bridge.CASES]
    parser.add_argument("--case", action="append", choices=names,
                        help="only this case (repeatable; default all)")
    args = parser.parse_args(argv)
    if args.repeats < 7:
        parser.error(f"--repeats must be >= 7, got {args.repeats}")
    if args.calls < 1:
        parser.error(f"--calls must be >= 1, got {args.calls}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, {args.clock} clock, "
          f"median of {args.repeats} round-robin repeats of {args.calls} call(s) after warm-up, load "
          f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| case | call | torch (zeros) | bridge (zeros) | ratio | bridge (circular) | circ/torch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, what, median in rows(args.repeats, CLOCKS[args.clock], args.calls, args.case):
        print(f"| {name} | {what} | {_format(median['torch'])} | {_format(median['bridge'])} | "
              f"{median['bridge'] / median['torch']:.2f} | {_format(median['circular'])} | "
              f"{median['circular'] / median['torch']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
