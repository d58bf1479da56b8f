"""``tconv-sparse bench``: time every method against PyTorch on the benchmark grid.

The quick default (one case per regime, float32, both directions) finishes
in about a minute on two cores; ``--full`` runs the whole grid in float32 and
float64. Progress goes to stderr (a tqdm bar when tqdm is installed); the
machine description, the load during the run and the table go to stdout and,
with the JSON, CSV and PNG plot, to ``--out``, which is checked before the
run. Ctrl-C stops the run: what finished is printed and written, exit status 130.
"""

from __future__ import annotations

import shlex
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

from tconv_sparse.bench import cases, runners
from tconv_sparse.cli.outputs import OptionError, check_folder
from tconv_sparse.core.config import CompileNotice

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
    parser.add_argument("--cold", action="store_true",
                        help="start-up instead of speed: each (direction, method, dtype) in fresh processes "
                             "with a fresh empty Numba cache, printing compile time and first-call time, "
                             "PyTorch's import and first call as the peer")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="threads of the Numba kernels, BLAS and PyTorch (default: Numba's, "
                             "NUMBA_NUM_THREADS)")
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
    words = ["tconv-sparse", "bench", *(["--full"] if args.full else []), *(["--cold"] if args.cold else [])]
    for option in ("method", "case", "direction", "dtype"):
        for value in getattr(args, option) or []:
            words += [f"--{option}", value]
    words += [*(["--no-torch"] if args.no_torch else []),
              *(["--threads", str(args.threads)] if args.threads is not None else []), "--out", str(args.out)]
    return shlex.join(words)


def _error(message: str) -> int:
    print(f"tconv-sparse bench: error: {message}", file=sys.stderr)
    return 2


def _note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _run_plan(plan, factories, timing, monitor):
    """``(results, interrupted)``: every measurement that finished, and whether Ctrl-C stopped the run."""
    from tconv_sparse.core.progress import Progress

    with Progress(len(plan)) as progress:
        def on_step(done, total):
            monitor.sample()
            progress.step(done)

        try:
            return runners.run_benchmarks(plan, timing, factories=factories.__getitem__, progress=progress.line,
                                          on_step=on_step), False
        except runners.Interrupted as interrupt:
            return interrupt.results, True


def _write(out, header, table, results, metadata) -> list[str]:
    """Write bench.md, bench.json and, when something finished, bench.csv and bench.png."""
    from tconv_sparse.bench import report

    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.md").write_text("\n".join(header) + "\n" + table + "\n", encoding="utf-8")
    report.write_json(out / "bench.json", results, metadata)
    written = ["bench.md", "bench.json"]
    if results:
        report.write_csv(out / "bench.csv", results)
        written.append("bench.csv")
        try:
            report.plot(out / "bench.png", results)
            written.append("bench.png")
        except ImportError:
            _note("note: matplotlib is not installed; no plot (pip install matplotlib)")
    return written


def run(args) -> int:
    """Run the benchmark; 0 when every result was correct, 1 on a FAIL or error, 2 on a bad option or an
    empty selection, 130 when interrupted (what finished is written)."""
    from tconv_sparse.bench import report
    from tconv_sparse.bench.load import LoadMonitor

    try:
        check_folder("--out", args.out)
        if args.threads is not None:
            runners.use_threads(args.threads)
    except OptionError as error:
        return _error(str(error))
    except ValueError as error:
        return _error(f"--threads: {error}")
    if args.cold:
        from tconv_sparse.cli.bench_cold import run_cold

        return run_cold(args, _command(args))
    plan, factories = _plan(args)
    if not plan:
        return _error("nothing to run: no case or no method matches the selection")
    runners.match_threads()  # before describing the machine, so the header shows the threads used
    if any(runners.PEER in chosen for chosen in factories.values()):
        try:
            runners.import_torch()
        except runners.Unavailable as error:
            _note(f"note: {error}; the torch column will read n/a")
    timing = runners.FULL_TIMING if args.full else runners.QUICK_TIMING
    command, machine, monitor = _command(args), report.machine_info(), LoadMonitor()
    header = ["## tconv-sparse bench", "", f"`{command}`", "", *report.format_machine(machine)]
    print("\n".join(header + monitor.lines() + [""]), flush=True)
    if monitor.warning():
        _note(f"warning: {monitor.warning()}")

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompileNotice)  # the warm-up calls compile, untimed
        results, interrupted = _run_plan(plan, factories, timing, monitor)
    elapsed = time.perf_counter() - start
    monitor.sample()
    steps = len({(m.direction, m.case.name, m.dtype) for m in results})
    header += monitor.lines()
    if interrupted:
        header.append(f"- **interrupted** (Ctrl-C) after {elapsed:.0f} s: the table holds the {len(results)} "
                      f"measurements that finished, in {steps} of {len(plan)} steps")
    header.append("")
    table = report.format_table(results)
    print(table)
    if monitor.warning():
        _note(f"warning: {monitor.warning()}")
    written = _write(args.out, header, table, results, {
        "command": command, "machine": machine, "load": monitor.summary(), "timing": asdict(timing),
        "tolerance": runners.TOLERANCE, "elapsed_s": elapsed, "interrupted": interrupted,
    })
    if interrupted:
        _note(f"interrupted after {elapsed:.0f} s; wrote what finished ({len(results)} measurements) "
              f"to {args.out}: {', '.join(written)}")
        return 130
    _note(f"done in {elapsed:.0f} s; wrote {', '.join(written)} to {args.out}")
    return 1 if any(m.status in (runners.FAIL, runners.ERROR) for m in results) else 0
