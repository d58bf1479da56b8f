"""LSQR with 200 iterations on a 64x64 single-channel deblurring problem (issue 11's benchmark).

The problem: a 64x64 random image blurred by a 7x7 Gaussian (sigma 1.5,
unit sum, zero padding 3, "same" output) plus Gaussian noise of standard
deviation 0.01, solved by ``ts.deconvolve(h, w, padding=3, solver="lsqr",
damp=0.05, maxiter=200, tol=0)``. Reference rows: SciPy's
``scipy.sparse.linalg.lsqr`` (same damp, 200 iterations, every stopping test
off) on ``ts.ConvOperator`` and on the explicit matrix ``ts.conv_matrix``,
and PyTorch's ``conv2d`` + ``conv_transpose2d`` 200 times (the products alone).

Each checkout (this one, and any given with ``--baseline DIR``, e.g. an
unpacked ``git archive a2de0ad``) is timed in its own subprocess, round after
round, on the same arrays (saved once), so all of them see the same machine
load; each row is the median over rounds of a median over repeats after a
warm-up. On a busy machine compare
the ratios to PyTorch's row, measured in the same process::

    python scripts/bench_lsqr.py --baseline /tmp/base --rounds 3 --repeats 5 [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ITERATIONS, DAMP = 200, 0.05  # tconv_sparse.bench.cases.DEBLUR_ITERATIONS, DEBLUR_DAMP (older checkouts lack them)


def _median_seconds(function, repeats: int) -> float:
    function()  # warm-up: compiles, builds the plan's caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def rows(repeats: int, problem: str) -> dict:
    """Seconds of each row in this process (with this checkout of tconv_sparse) on the ``(h, w)``
    saved in the file ``problem``."""
    import numpy as np
    from scipy.sparse.linalg import lsqr

    import tconv_sparse as ts

    with np.load(problem) as arrays:
        h, w = arrays["h"], arrays["w"]
    op = ts.ConvOperator(w, (64, 64), padding=3)
    matrix = ts.conv_matrix(w, (64, 64), padding=3)
    b = h.ravel()
    scipy_kwargs = {"damp": DAMP, "atol": 0, "btol": 0, "conlim": 0, "iter_lim": ITERATIONS}
    timings = {
        "ts.deconvolve lsqr": lambda: ts.deconvolve(h, w, padding=3, solver="lsqr", damp=DAMP,
                                                    maxiter=ITERATIONS, tol=0),
        "scipy lsqr(ConvOperator)": lambda: lsqr(op, b, **scipy_kwargs),
        "scipy lsqr(conv_matrix)": lambda: lsqr(matrix, b, **scipy_kwargs),
    }
    try:
        import torch
    except ImportError:
        pass
    else:
        if "OMP_NUM_THREADS" in os.environ:
            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        x, weight = torch.from_numpy(h[None]), torch.from_numpy(w)

        def products():
            for _ in range(ITERATIONS):
                torch.nn.functional.conv_transpose2d(torch.nn.functional.conv2d(x, weight, padding=3), weight,
                                                     padding=3)

        timings["torch 200 x (conv2d, conv_transpose2d)"] = products
    result = {name: _median_seconds(function, repeats) for name, function in timings.items()}
    result["methods"] = f"{op.method_forward}/{op.method_transpose} from {os.path.dirname(ts.__file__)}"
    return result


def _worker(checkout: str, repeats: int, threads: int | None, problem: str) -> dict:
    environment = {**os.environ, "PYTHONPATH": checkout}
    if threads is not None:
        environment.update({name: str(threads) for name in (
            "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    command = [sys.executable, __file__, "--worker", problem, "--repeats", str(repeats)]
    output = subprocess.run(command, env=environment, check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="append", default=[], metavar="DIR",
                        help="another checkout to time in the same run (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of Numba, BLAS and PyTorch in the workers (default: theirs)")
    parser.add_argument("--worker", metavar="PROBLEM", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(rows(args.repeats, args.worker)))
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, here)  # this checkout's problem definition, shared with asv
    import numpy as np

    from tconv_sparse.bench.cases import deblur_problem

    checkouts = [here, *map(os.path.abspath, args.baseline)]
    runs = {checkout: [] for checkout in checkouts}
    with tempfile.TemporaryDirectory() as folder:
        problem = os.path.join(folder, "problem.npz")
        h, w = deblur_problem("float64")
        np.savez(problem, h=h, w=w)
        for _ in range(args.rounds):
            for checkout in checkouts:
                runs[checkout].append(_worker(checkout, args.repeats, args.threads, problem))
    print(f"# load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, threads {args.threads or 'default'}; "
          f"medians of {args.rounds} rounds x {args.repeats} repeats; ratio = row / torch row of the same process")
    for checkout, results in runs.items():
        print(f"\n{checkout}  (methods {results[0]['methods']})")
        for name in (key for key in results[0] if key != "methods"):
            seconds = sorted(r[name] for r in results)[len(results) // 2]
            torch_key = "torch 200 x (conv2d, conv_transpose2d)"
            ratios = sorted(r[name] / r[torch_key] for r in results if torch_key in r)
            ratio = f"  {ratios[len(ratios) // 2]:6.2f}x torch" if ratios else ""
            print(f"  {name:42s} {seconds * 1e3:9.2f} ms{ratio}")
    for checkout in checkouts[1:]:
        name = "ts.deconvolve lsqr"
        speedups = sorted(old[name] / new[name] for old, new in zip(runs[checkout], runs[here]))
        print(f"\n{name}: this checkout is {speedups[len(speedups) // 2]:.2f}x faster than {checkout} "
              f"(median over rounds of the same-round ratio)")


if __name__ == "__main__":
    main()
