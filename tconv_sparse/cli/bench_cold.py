"""``tconv-sparse bench --cold``: start-up rows, each (direction, method, dtype) in fresh processes.

Every row of :mod:`tconv_sparse.bench.cold` runs in its own fresh
subprocesses with a fresh empty ``NUMBA_CACHE_DIR``; ``--method``,
``--direction`` and ``--dtype`` filter the rows (default: every method,
both directions, float32; ``--full`` adds float64) and ``--no-torch`` drops
the peer rows. The table goes to stdout and ``cold.md`` / ``cold.json`` to
``--out``; Ctrl-C keeps the rows that finished (exit status 130).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict

from tconv_sparse.bench import cases, cold, runners

__all__ = ["cold_plan", "run_cold"]


def cold_plan(args) -> list[tuple[str, str, str]]:
    """The ``(direction, method, dtype)`` rows the options select (``"torch"`` is the peer).

    Examples
    --------
    >>> from argparse import Namespace
    >>> from tconv_sparse.cli.bench_cold import cold_plan
    >>> cold_plan(Namespace(direction=["conv"], method=["direct"], dtype=None, full=False,
    ...                     no_torch=False))
    [('conv', 'direct', 'float32'), ('conv', 'torch', 'float32')]
    """
    selected = set(args.method or [])
    rows = []
    for direction in args.direction or cases.DIRECTIONS:
        methods = [m for m in runners.library_methods(direction) if not selected or m in selected]
        if not args.no_torch and (not selected or methods or runners.PEER in selected):
            methods.append(runners.PEER)
        for dtype in args.dtype or (cases.DTYPES if args.full else cases.QUICK_DTYPES):
            rows += [(direction, method, dtype) for method in methods]
    return rows


def _measure(plan, progress):
    """The rows of ``plan``, and whether Ctrl-C stopped the run."""
    rows = []
    try:
        for done, (direction, method, dtype) in enumerate(plan):
            progress.line(f"[{done + 1}/{len(plan)}] {direction} {method} {dtype} (fresh process, empty cache)")
            row = (cold.torch_row(direction, dtype) if method == runners.PEER
                   else cold.cold_row(direction, method, dtype))
            rows.append(row)
            progress.step(done + 1)
    except KeyboardInterrupt:
        return rows, True
    return rows, False


def run_cold(args, command: str) -> int:
    """Run the cold rows (``command``: the command line, for the header); 0, 1 when a row failed,
    130 when interrupted (what finished is written)."""
    from tconv_sparse.core.progress import Progress

    if args.threads is not None:
        os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    plan = cold_plan(args)
    if not plan:
        print("tconv-sparse bench: error: nothing to run: no method matches the selection", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with Progress(len(plan)) as progress:
        rows, interrupted = _measure(plan, progress)
    elapsed = time.perf_counter() - start
    peers = {(r.direction, r.dtype): r for r in rows if r.method == runners.PEER}
    header = ["## tconv-sparse bench --cold", "", f"`{command}`", "",
              f"- case: {cold.COLD_CASE}; each row in fresh processes, a fresh empty NUMBA_CACHE_DIR per row",
              f"- {len(rows)} of {len(plan)} rows in {elapsed:.0f} s" + (" (interrupted)" if interrupted else ""),
              ""]
    table = cold.format_cold_table(rows, peers)
    print("\n".join(header) + "\n" + table, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cold.md").write_text("\n".join(header) + "\n" + table + "\n", encoding="utf-8")
    (args.out / "cold.json").write_text(json.dumps(
        {"command": command, "case": cold.COLD_CASE, "elapsed_s": elapsed, "interrupted": interrupted,
         "rows": [{**asdict(r), "compile_s": r.compile_s} for r in rows]}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote cold.md, cold.json to {args.out}", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if any(r.error for r in rows) else 0

