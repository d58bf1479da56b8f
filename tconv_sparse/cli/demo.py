"""``tconv-sparse demo``: the questions behind this library, answered with real numbers.

:func:`run_demo` prints a report in six parts and saves its figures:

1. shapes: why CS231n's 2x2 input becomes 4x4 and Keras' 5x5 (the
   ``tconv-sparse explain`` report of the CS231n case: size formulas, the
   equivalent PyTorch / Keras / JAX calls, the symbolic output, the overlap map);
2. the 1-D matrix example: ``C``, ``C.T`` and ``C.T @ [a, b]`` with named taps;
3. the scatter and the zero-insertion methods giving the same numbers, and
   every method of :func:`~tconv_sparse.conv` / :func:`~tconv_sparse.conv_transpose`
   agreeing with the sparse definition ``C @ x`` / ``C.T @ y``, padding modes
   included;
4. a short speed table, from the benchmark harness of ``tconv-sparse bench``;
5. transposed convolution against deconvolution on a synthetic image, by PSNR;
6. the figures written, or why none were.

Only NumPy, SciPy and Numba are needed; without matplotlib the figures are
skipped with a note, and the image is generated in code (:func:`synthetic_image`).
The first run includes Numba's compilation of every kernel (cached on disk
for later runs); worker processes do it, one per usable CPU, while parts 1
and 2 print.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

import tconv_sparse as ts

from tconv_sparse.analysis.explain import explain_transposed_conv
from tconv_sparse.cli.demo_figures import Figures, deconvolution_figure, matrix_figure, overlap_figure
from tconv_sparse.cli.demo_images import gaussian_psf, psnr, synthetic_image
from tconv_sparse.plan import FORWARD_METHODS, TRANSPOSE_METHODS, backend_module
from tconv_sparse.analysis.symbolic import symbolic_conv_transpose

__all__ = ["synthetic_image", "psnr", "run_demo", "add_arguments", "run"]

#: default output folder of the figures
DEFAULT_OUT = "tconv-sparse-demo"

#: Part 3: ``(label, batch, weight shape, forward input spatial shape, keyword arguments)``; the
#: transposed convolution maps the forward output back to the input shape (``output_size``)
_AGREEMENT_CASES = (
    ("CS231n 2-D: 2x2 -> 4x4, k3 s2 p1", 2, (3, 2, 3, 3), (4, 4), {"stride": 2, "padding": 1}),
    ('Keras 2-D "valid": 2x2 -> 5x5, k3 s2', 2, (3, 2, 3, 3), (5, 5), {"stride": 2, "padding": "valid"}),
    ("2-D 16x16 -> 32x32, k4 s2 p1", 2, (4, 3, 4, 4), (32, 32), {"stride": 2, "padding": 1}),
    ("1-D dilation 2, stride 3, padding (2, 1)", 2, (2, 3, 3), (27,),
     {"stride": 3, "padding": ((2, 1),), "dilation": 2}),
    ("3-D groups 2, k3 s2 p1", 1, (4, 1, 3, 3, 3), (6, 7, 5), {"stride": 2, "padding": 1, "groups": 2}),
    ('2-D padding_mode "reflect", k3 s2 p1', 2, (2, 2, 3, 3), (12, 12),
     {"stride": 2, "padding": 1, "padding_mode": "reflect"}),
    ('2-D padding_mode "circular", k3 s1 p1', 2, (2, 2, 3, 3), (6, 6), {"padding": 1, "padding_mode": "circular"}),
)
#: Parts 1 and 3: the seed's hand calculation, input ``[[1, 2], [3, 4]]`` and kernel ``1..9``
_SEED_EXAMPLE = (np.arange(1.0, 5.0).reshape(2, 2), np.arange(1.0, 10.0).reshape(3, 3))
#: Part 4: one decoder-like layer, ``regime, batch, channels, out_channels, shape, kernel, stride``
_SPEED_CASE = ("demo", 8, 16, 16, (64, 64), 3, 2)
#: Part 5: image size, Gaussian point-spread function (size, sigma), noise level, blur geometry
_IMAGE_SIZE, _PSF_SIZE, _PSF_SIGMA, _NOISE = 128, 7, 1.5, 0.01
_BLUR = {"padding": _PSF_SIZE // 2, "padding_mode": "reflect"}


# ------------------------------------------------------------------ report
class _Report:
    """Prints the report, section by section, with the seconds each section took."""

    def __init__(self, stream):
        self.stream = stream
        self.start = self.section_start = time.perf_counter()

    def __call__(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def section(self, title: str) -> None:
        self.section_start = time.perf_counter()
        self(f"\n{title}\n{'-' * len(title)}")

    def done(self) -> None:
        self(f"   [{time.perf_counter() - self.section_start:.1f} s]")


def _indented(text: str, indent: str = "   ") -> str:
    return "\n".join(indent + line for line in text.splitlines())


# ------------------------------------------------------------------ 1. shapes
def _shapes(say: _Report, figures: Figures) -> None:
    say.section("1. Shapes: why CS231n's 2x2 input becomes 4x4 and Keras' becomes 5x5")
    say("   Kernel 3x3, stride 2, input 2x2. `tconv-sparse explain --input 2x2 --kernel 3x3 --stride 2 "
        "--padding 1 --output-padding 1` says:\n")
    say(_indented(explain_transposed_conv((3, 3), (2, 2), stride=2, padding=1, output_padding=1)))
    say("\n   Keras' 5x5 is the whole canvas (\"valid\": nothing cropped); CS231n's 4x4 crops padding 1 at "
        "the start\n   and keeps the last row and column with output_padding=1.")
    from tconv_sparse.analysis.canvas_figures import plot_canvas_windows
    from tconv_sparse.analysis.plotting import plot_conv_arithmetic

    figures.save("cs231n_2x2_to_4x4.png", lambda: plot_conv_arithmetic(
        (3, 3), (2, 2), stride=2, padding=1, output_padding=1))
    figures.save("keras_2x2_to_5x5.png", lambda: plot_conv_arithmetic((3, 3), (2, 2), stride=2, padding="valid"))
    figures.save("cs231n_vs_keras.png", lambda: plot_canvas_windows(
        *_SEED_EXAMPLE, {"CS231n: padding=1, output_padding=1": {"padding": 1, "output_padding": 1},
                         'Keras: padding="valid"': {"padding": "valid"}}, stride=2))
    say.done()


# ------------------------------------------------------------------ 2. the 1-D matrix
def _matrix_example(say: _Report, figures: Figures) -> None:
    say.section("2. The 1-D matrix example (CS231n): input [a, b], kernel [x, y, z], stride 2")
    valid = symbolic_conv_transpose(3, 2, stride=2)
    say("   No padding (Keras \"valid\"): C is 2 x 5, one row per input of the transposed convolution.")
    say(_indented(str(valid), "     "))
    padded = symbolic_conv_transpose(3, 2, stride=2, padding=1, output_padding=1)
    say("\n   Padding 1 (the forward convolution read [0, g0, g1, g2, g3, 0]) and output_padding 1: "
        "C is 2 x 4,\n   the padded columns are gone.")
    say(_indented(str(padded), "     "))
    say("   The padded answer is the 5-output one without its first entry a*x, which fell on the padding.")
    figures.save("matrix_1d.png", lambda: matrix_figure(figures.plt, valid, padded))
    say.done()


# ------------------------------------------------------------------ 3. methods agree
def _grid(array) -> str:
    return _indented(np.array2string(np.asarray(array), separator=" "), "     ")


def _relative_error(result, expected) -> float:
    return float(np.max(np.abs(result - expected)) / np.max(np.abs(expected)))


def _case_data(case, rng) -> tuple:
    """``(weight, x, y)`` of an agreement case: the forward input ``x`` and the transposed input ``y``."""
    _, batch, weight_shape, shape, kwargs = case
    out_shape = ts.conv_output_shape(shape, weight_shape[2:], **{
        key: value for key, value in kwargs.items() if key in ("stride", "padding", "dilation")})
    channels_in = weight_shape[1] * kwargs.get("groups", 1)
    return (rng.standard_normal(weight_shape), rng.standard_normal((batch, channels_in, *shape)),
            rng.standard_normal((batch, weight_shape[0], *out_shape)))


def _apply(case, function: str, method: str, weight, x, y):
    """``conv(x)`` or ``conv_transpose(y)`` (back to the forward input's shape) with ``method``."""
    _, _, _, shape, kwargs = case
    if function == "conv_transpose":
        return ts.conv_transpose(y, weight, output_size=shape, method=method, **kwargs)
    return ts.conv(x, weight, method=method, **kwargs)


def _hand_calculation(method: str) -> np.ndarray:
    """The seed's example (:data:`_SEED_EXAMPLE`), stride 2, no padding."""
    y, kernel = _SEED_EXAMPLE
    return ts.conv_transpose(y[None], kernel[None, None], stride=2, padding="valid", method=method)


def _agreement_table(say: _Report, rng) -> None:
    """Max relative error of every method against ``C.T @ y`` and ``C @ x`` for each case."""
    methods = _methods()
    counts = [sum(f == name for f, _ in methods) for name in ("conv_transpose", "conv")]
    width = max(len(label) for label, *_ in _AGREEMENT_CASES)
    say(f"   {'':<{width}}  {'conv_transpose vs C.T @ y':^{13 * counts[0]}}   {'conv vs C @ x':^{13 * counts[1]}}")
    say(f"   {'case':<{width}}  " + "".join(f"{m:>13}" for _, m in methods[:counts[0]]) + "  "
        + "".join(f"{m:>13}" for _, m in methods[counts[0]:]))
    worst = 0.0
    for case in _AGREEMENT_CASES:
        label, batch, _, shape, kwargs = case
        weight, x, y = _case_data(case, rng)
        matrix = ts.conv_matrix(weight, shape, **kwargs)
        expected = {"conv_transpose": (matrix.T @ y.reshape(batch, -1).T).T,
                    "conv": (matrix @ x.reshape(batch, -1).T).T}
        cells = []
        for function, method in methods:
            try:
                result = _apply(case, function, method, weight, x, y)
            except ValueError:
                cells.append(f"{'n/a':>13}")
                continue
            error = _relative_error(result.reshape(batch, -1), expected[function])
            worst = max(worst, error)
            cells.append(f"{error:>13.1e}")
        say(f"   {label:<{width}}  " + "".join(cells[:counts[0]]) + "  " + "".join(cells[counts[0]:]))
    say(f"   largest relative error: {worst:.1e} (float64 rounding is about 1e-16; n/a: the method "
        "refuses the case)")


def _methods_agree(say: _Report, figures: Figures, rng) -> None:
    say.section("3. Scatter and zero-insertion give the same numbers; every method is C.T")
    scatter, zero_insert = _hand_calculation("scatter"), _hand_calculation("zero_insert")
    say("   The seed's hand calculation: input [[1, 2], [3, 4]], kernel [[1, 2, 3], [4, 5, 6], [7, 8, 9]], "
        "stride 2, no padding.")
    say("   scatter (each input times the kernel, added into the output at input * stride):")
    say(_grid(scatter[0]))
    say("   zero insertion (one zero between inputs, pad 2, slide the FLIPPED kernel with stride 1):")
    say(_grid(zero_insert[0]))
    say(f"   identical: {np.array_equal(scatter, zero_insert)}; the kernel flip is the seed's observation "
        "that the letters had to be reversed.\n")
    from tconv_sparse.analysis.canvas_figures import plot_scatter_vs_zero_insertion

    figures.save("scatter_vs_zero_insertion.png", lambda: plot_scatter_vs_zero_insertion(*_SEED_EXAMPLE, stride=2))
    say("   Every method against the definition, C = conv_matrix(w) in float64: max relative error.")
    _agreement_table(say, rng)
    say("   The reflect and circular rows are padding modes of the forward convolution; their transposes "
        "fold the\n   border back (mirror-add, wrap-add). PyTorch's ConvTranspose accepts padding_mode "
        "\"zeros\" only.")
    say.done()


# ------------------------------------------------------------------ 4. speed
def _speed(say: _Report, figures: Figures) -> None:
    from tconv_sparse.bench import report, runners
    from tconv_sparse.bench.cases import DIRECTIONS, ConvCase

    case = ConvCase(*_SPEED_CASE)
    say.section(f"4. Speed: one decoder layer, {case.name}, float64")
    say("   Each method is first checked against C @ x / C.T @ y, then timed (median of repeated calls); "
        "`tconv-sparse bench`\n   runs the whole grid. (Nx) is the time relative to PyTorch when it is "
        "installed.\n")
    results = runners.run_benchmarks([(direction, case, "float64") for direction in DIRECTIONS],
                                     runners.QUICK_TIMING)
    say(_indented(report.format_table(results)))
    figures.write("speed.png", lambda path: report.plot(path, results))
    say.done()


# ------------------------------------------------------------------ 5. deconvolution
def _deconvolution_estimates(truth, rng, maxiter=None) -> dict:
    """``name -> (estimate, seconds)``: the blurred, noisy data ``h``, ``C.T h`` and the solvers.

    ``maxiter`` caps every solver (the warm-up's quick run); ``None`` keeps the demo's settings.
    """
    weight = gaussian_psf(_PSF_SIZE, _PSF_SIGMA)[None, None]
    h = ts.conv(truth[None], weight, method="sparse", **_BLUR)
    h = h + _NOISE * rng.standard_normal(h.shape)
    cap = {} if maxiter is None else {"maxiter": maxiter, "tol": 0}
    estimates = {"blurred data h": (h, 0.0)}

    def timed(name, compute):
        start = time.perf_counter()
        estimates[name] = (compute(), time.perf_counter() - start)

    def solve(data=h, **options):
        return ts.deconvolve(data, weight, truth.shape, **_BLUR, **{**options, **cap}).x

    timed("conv_transpose: C.T h", lambda: ts.conv_transpose(h, weight, method="sparse", **_BLUR))
    timed("deconvolve lsqr, damp 0.1 (Tikhonov)", lambda: solve(damp=0.1))
    timed("deconvolve lsqr, laplacian, damp 0.05", lambda: solve(damp=0.05, regularizer="laplacian"))
    timed("deconvolve richardson_lucy, 30 iterations",
          lambda: solve(np.clip(h, 0, None), solver="richardson_lucy", maxiter=30, tol=0))
    timed("deconvolve pdhg, total variation, damp 0.07",
          lambda: solve(solver="pdhg", damp=0.07, regularizer="tv", tol=3e-4))
    return estimates


def _deconvolution(say: _Report, figures: Figures, rng) -> None:
    say.section("5. Transposed convolution is not deconvolution")
    say(f"   A {_IMAGE_SIZE}x{_IMAGE_SIZE} synthetic image g, blurred by a {_PSF_SIZE}x{_PSF_SIZE} Gaussian "
        f"(sigma {_PSF_SIGMA}, reflecting border),\n   plus noise of standard deviation {_NOISE}: "
        "h = C g + noise. Which estimate of g is best?\n")
    psf_1d = gaussian_psf(_PSF_SIZE, _PSF_SIGMA).sum(axis=0)
    line = ts.singular_values(psf_1d[None, None], _IMAGE_SIZE, **_BLUR)
    say(f"   One row of this blur (1-D, {_IMAGE_SIZE} samples) has singular values from {line[0]:.3f} down "
        f"to {line[-1]:.1e}: C.T multiplies\n   each singular component by its value (a second blur), the "
        "inverse divides by it (and amplifies the noise),\n   so deconvolution needs regularisation.\n")
    truth = synthetic_image(_IMAGE_SIZE)
    estimates = _deconvolution_estimates(truth, rng)
    width = max(len(name) for name in estimates)
    say(f"   {'estimate':<{width}}  {'PSNR dB':>8}  {'time s':>7}")
    for name, (estimate, seconds) in estimates.items():
        say(f"   {name:<{width}}  {psnr(estimate[0], truth):8.2f}  {seconds:7.2f}")
    say("   C.T h scores below the blurred data itself: it blurs again. The solvers of ts.deconvolve use "
        "only C and C.T\n   and recover detail; the regulariser decides how much.")
    figures.save("deconvolution.png", lambda: deconvolution_figure(figures.plt, truth, estimates, psnr))
    say.done()


# ------------------------------------------------------------------ compiling in parallel
def _methods() -> list[tuple[str, str]]:
    """``(function name, method)`` for every method except ``"auto"``."""
    return ([("conv_transpose", m) for m in TRANSPOSE_METHODS if m != "auto"]
            + [("conv", m) for m in FORWARD_METHODS if m != "auto"])


def _warm_up(jobs) -> None:
    """Make the demo's calls of each ``(function, method)`` job on small data (for
    ``("deconvolve", ...)`` those of part 5), so that Numba compiles and caches every kernel that
    the demo's own process will then load."""
    import warnings

    from tconv_sparse.core.config import CompileNotice

    warnings.simplefilter("ignore", CompileNotice)  # this worker exists to compile
    rng = np.random.default_rng(0)
    for function, method in jobs:
        if function == "deconvolve":
            _deconvolution_estimates(synthetic_image(16), rng, maxiter=2)
            continue
        if function == "conv_transpose":
            _hand_calculation(method)
        for case in _AGREEMENT_CASES:
            try:
                _apply(case, function, method, *_case_data(case, rng))
            except ValueError:
                continue


def _warm_up_groups() -> list:
    """The jobs of :func:`_warm_up` grouped by backend module, largest group first.

    The kernels of one module share Numba helpers, so one worker compiles a whole group;
    part 5's solvers multiply by the sparse matrix and join the ``"sparse"`` group.
    """
    groups = {}
    for function, method in _methods():
        module = backend_module(method, transposed=function == "conv_transpose")
        groups.setdefault(module, []).append((function, method))
    groups.setdefault(backend_module("sparse", transposed=True), []).append(("deconvolve", "every solver"))
    return sorted(groups.values(), key=len, reverse=True)


def _start_compiling():
    """Compile the kernels of the demo in worker processes, one per usable CPU, or ``None`` on one CPU.

    Numba compiles one kernel at a time per process; its on-disk cache lets the
    demo's own process load what the workers compiled. On a warm cache the
    workers only load it. Returns the pool, its futures and the start time.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cpus < 2:
        return None
    groups = _warm_up_groups()
    pool = ProcessPoolExecutor(min(cpus, len(groups)), mp_context=multiprocessing.get_context("spawn"))
    return pool, [pool.submit(_warm_up, group) for group in groups], time.perf_counter()


def _finish_compiling(compiling, say, live=None) -> None:
    """Wait for the workers of :func:`_start_compiling`, with a live line on ``live`` (stderr) while
    waiting, then report the compile time apart from the sections' times. A failed warm-up shows
    up in part 3 instead."""
    if compiling is None:
        return
    pool, futures, started = compiling
    live = sys.stderr if live is None else live
    waiting = time.perf_counter()
    interactive = getattr(live, "isatty", lambda: False)()
    pending = wait(futures, timeout=0).not_done
    while pending:
        line = (f"   compiling the Numba kernels of parts 3-5 (first run only): {len(futures) - len(pending)}"
                f"/{len(futures)} groups, {time.perf_counter() - started:.0f} s")
        print(f"\r{line}" if interactive else line, end="" if interactive else "\n", file=live, flush=True)
        pending = wait(pending, timeout=0.5 if interactive else 10.0).not_done
    if interactive:
        print("\r\033[K", end="", file=live, flush=True)
    pool.shutdown()
    total, waited = time.perf_counter() - started, time.perf_counter() - waiting
    say(f"\n   [Numba kernels of parts 3-5 compiled (or loaded from the cache) in {total:.1f} s, by "
        f"worker processes while parts 1-2 ran; {waited:.1f} s of it waited for here]")


# ------------------------------------------------------------------ 6. figures and the whole run
@contextlib.contextmanager
def _notices_as_lines(say):
    """Print compile notices as lines of the report while the block runs (a first run compiles
    the kernels of parts 1-2 in this process), not as warnings with a source line; other
    warnings are shown as before."""
    from tconv_sparse.core.config import CompileNotice

    with warnings.catch_warnings():  # restores showwarning on exit
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if issubclass(category, CompileNotice):
                say(f"   {message}")
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


def run_demo(out=DEFAULT_OUT, *, stream=None, seed: int = 0) -> list[Path]:
    """Print the demo report and save its figures.

    Parameters
    ----------
    out : str or pathlib.Path
        Folder for the figures (created when a figure is saved).
    stream : file-like, optional
        Where the report goes (default: ``sys.stdout``).
    seed : int
        Seed of every random array.

    Returns
    -------
    list of pathlib.Path
        The figures written (empty without matplotlib).

    Notes
    -----
    While parts 1 and 2 print, worker processes (one per usable CPU, started
    with ``spawn``) compile the Numba kernels the later parts need, so call
    this under ``if __name__ == "__main__":`` in a script.
    """
    compiling = _start_compiling()
    say = _Report(sys.stdout if stream is None else stream)
    with _notices_as_lines(say):
        figures = Figures(Path(out))
        rng = np.random.default_rng(seed)
        title = f"tconv-sparse {ts.__version__} demo: transposed convolution made precise"
        say(f"{title}\n{'=' * len(title)}")
        say("A convolution is a sparse matrix C; the transposed convolution is C.T. Every number below is "
            "computed now.\nThe first run also compiles the Numba kernels (cached for later runs).")
        if figures.plt is None:
            say("Note: matplotlib is not installed, so no figures are drawn "
                "(pip install matplotlib, or tconv-sparse[plot]).")
        _shapes(say, figures)
        _matrix_example(say, figures)
        _finish_compiling(compiling, say)
        _methods_agree(say, figures, rng)
        _speed(say, figures)
        _deconvolution(say, figures, rng)
        say.section("6. Figures")
        if figures.plt is None:
            say("   skipped: matplotlib is not installed (pip install matplotlib)")
        else:
            figures.save("overlap_maps.png", lambda: overlap_figure(figures.plt))
            say(f"   {len(figures.written)} figures written to {figures.out.resolve()}:")
            for path in figures.written:
                say(f"     {path.name}")
        say(f"\nDone in {time.perf_counter() - say.start:.0f} s. Next: tconv-sparse explain --help, "
            "tconv-sparse bench, and the documentation's gallery.")
    return figures.written


# ------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    """Register the ``demo`` options on an argparse (sub-)parser."""
    parser.add_argument("--out", default=DEFAULT_OUT, type=Path, metavar="DIR",
                        help="folder for the figures (default: %(default)s)")


def run(args) -> int:
    """Run the demo; return the exit status (2 for an ``--out`` folder that cannot be written)."""
    from tconv_sparse.cli.outputs import OptionError, check_folder

    try:
        check_folder("--out", args.out)
    except OptionError as error:
        print(f"tconv-sparse demo: error: {error}", file=sys.stderr)
        return 2
    run_demo(args.out)
    return 0
