"""``tconv-sparse bench``: time every method against PyTorch on the benchmark grid.

The quick default (one case per regime, float32, both directions) finishes
in about a minute on two cores; ``--full`` runs the whole grid in float32 and
float64. Progress goes to stderr; the machine description and the table go
to stdout and, with the JSON, CSV and PNG plot, to ``--out``.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tconv_sparse.bench import cases, runners

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    """Add the ``bench`` options to ``parser``."""
    method_names = sorted({*runners.library_methods("conv"), *runners.library_methods("conv_transpose"),
                           *runners.PLANNED, runners.PEER})
    parser.add_argument("--full", action="store_true",
                        help="the whole grid, float32 and float64, with longer timing "
                             "(default: one case per regime, float32)")
    parser.add_argument("--method", action="append", choices=method_names, metavar="NAME",
                        help="run only this method (repeatable; one of %(choices)s); PyTorch still "
                             "runs as the peer unless --no-torch")
    parser.add_argument("--case", action="append", metavar="SUBSTRING",
                        help="run the cases of the whole grid whose name contains SUBSTRING "
                             "(repeatable), e.g. 'decoder' or 'k3s2'")
    parser.add_argument("--direction", action="append", choices=cases.DIRECTIONS,
                        help="only this operation (repeatable; default both)")
    parser.add_argument("--dtype", action="append", choices=cases.DTYPES,
                        help="only this dtype (repeatable; default float32, both with --full)")
    parser.add_argument("--no-torch", action="store_true", help="do not run the PyTorch peer")
    parser.add_argument("--out", default="bench-out", type=Path, metavar="DIR",
                        help="output folder for bench.md, bench.json, bench.csv, bench.png "
                             "(default: %(default)s)")


def _plan(args) -> tuple[list, dict]:
    """The ``(direction, case, dtype)`` triples and the contenders of each direction."""
    selected = set(args.method or [])
    factories = {}
    for direction in args.direction or cases.DIRECTIONS:
        methods = [m for m in (*runners.library_methods(direction), *runners.PLANNED)
                   if not selected or m in selected]
        peer = not args.no_torch and (not selected or bool(methods) or runners.PEER in selected)
        if methods or peer:
            factories[direction] = runners.contenders(direction, methods, peer)
    dtypes = args.dtype or (cases.DTYPES if args.full else cases.QUICK_DTYPES)
    plan = [(direction, case, dtype) for direction in factories
            for case in cases.find_cases(args.case, full=args.full) for dtype in dtypes]
    return plan, factories


def _command(args) -> str:
    """The command line that reproduces this run."""
    words = ["tconv-sparse", "bench", *(["--full"] if args.full else [])]
    for option in ("method", "case", "direction", "dtype"):
        for value in getattr(args, option) or []:
            words += [f"--{option}", value]
    words += [*(["--no-torch"] if args.no_torch else []), "--out", str(args.out)]
    return shlex.join(words)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args) -> int:
    """Run the benchmark; 0 when every result was correct, 1 on a FAIL or error, 2 on an empty selection."""
    from tconv_sparse.bench import report

    plan, factories = _plan(args)
    if not plan:
        print("tconv-sparse bench: nothing to run: no case or no method matches the selection", file=sys.stderr)
        return 2
    runners.match_threads()  # before describing the machine, so the header shows the threads used
    if any(runners.PEER in chosen for chosen in factories.values()):
        try:
            runners.import_torch()
        except runners.Unavailable as error:
            _progress(f"note: {error}; the torch column will read n/a")
    timing = runners.FULL_TIMING if args.full else runners.QUICK_TIMING
    command, machine = _command(args), report.machine_info()
    header = ["## tconv-sparse bench", "", f"`{command}`", "", *report.format_machine(machine), ""]
    print("\n".join(header), flush=True)

    start = time.perf_counter()
    results = runners.run_benchmarks(plan, timing, factories=factories.__getitem__, progress=_progress)
    elapsed = time.perf_counter() - start
    table = report.format_table(results)
    print(table)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.md").write_text("\n".join(header) + "\n" + table + "\n", encoding="utf-8")
    report.write_json(args.out / "bench.json", results, {
        "command": command, "machine": machine, "timing": asdict(timing),
        "tolerance": runners.TOLERANCE, "elapsed_s": elapsed,
    })
    report.write_csv(args.out / "bench.csv", results)
    written = ["bench.md", "bench.json", "bench.csv"]
    try:
        report.plot(args.out / "bench.png", results)
        written.append("bench.png")
    except ImportError:
        _progress("note: matplotlib is not installed; no plot (pip install matplotlib)")
    _progress(f"done in {elapsed:.0f} s; wrote {', '.join(written)} to {args.out}")
    return 1 if any(m.status in (runners.FAIL, runners.ERROR) for m in results) else 0
