"""Cost of ``damp="auto"`` against one damped LSQR solve of the same problem (issue 15 item 1).

For every geometry and rule: the time of ``ts.deconvolve(h, w, damp="auto",
damp_rule=rule, noise_std=...)`` (the choice of ``damp`` plus the final
solve) and of one ``ts.deconvolve(h, w, damp=<the damp it chose>)``, best
of ``--repeat`` runs each, in one process; prints a markdown table with their
ratio. Usage: ``python scripts/bench_damp.py [--size 64] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tconv_sparse as ts
from tconv_sparse.cli.demo import synthetic_image
from tconv_sparse.solvers.damp_rules import choose_damp

NOISE = 0.03


def _geometries(size):
    """``name -> (weight, input g, conv kwargs)``: blurs of the demo image (and of one of its rows)."""
    taps = np.exp(-0.5 * (np.arange(7) - 3.0) ** 2 / 1.5 ** 2)
    blur = np.multiply.outer(taps, taps)
    blur = (blur / blur.sum())[None, None]
    mixing = np.array([[1.0, 0.3], [0.2, 1.0], [1.0, -0.4], [0.5, 1.0]])[:, :, None, None] * blur[0, 0]
    same = dict(padding="same")
    image = synthetic_image(size)[None]
    row = synthetic_image(64)[40][None]
    return {
        "circular (exact)": (blur, image, dict(same, padding_mode="circular")),
        "zeros": (blur, image, same),
        "reflect": (blur, image, dict(same, padding_mode="reflect")),
        "stride 2": (blur, image, dict(stride=2, padding=3)),
        "4 ch, groups 2": (mixing, np.repeat(image, 4, axis=0), dict(same, groups=2)),
        "dilation 2": (blur, image, dict(same, dilation=2)),
        "1-D 64, zeros (gcv, lcurve: dense svd)": ((taps / taps.sum())[None, None], row, same),
    }


def _best_time(function, repeat):
    best, value = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{args.size}x{args.size} demo image (and a 64-sample row), noise_std={NOISE}, best of {args.repeat}, one process\n")
    print("| geometry | rule | damp | auto (s) | one solve (s) | ratio | GK steps x columns | solve iterations |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (weight, g, kwargs) in _geometries(args.size).items():
        h = ts.conv(g, weight, **kwargs)
        h = h + NOISE * rng.standard_normal(h.shape)
        shape = g.shape[1:]
        ts.deconvolve(h, weight, shape, damp="auto", **kwargs)   # warm-up: kernels, plan, matrix
        for rule in ("gcv", "discrepancy", "lcurve"):
            noise_std = NOISE if rule == "discrepancy" else None   # noise_std also stops the solve early
            auto, result = _best_time(lambda: ts.deconvolve(h, weight, shape, damp="auto", damp_rule=rule,
                                                            noise_std=noise_std, **kwargs), args.repeat)
            one, solved = _best_time(lambda: ts.deconvolve(h, weight, shape, damp=result.damp, noise_std=noise_std,
                                                           **kwargs), args.repeat)
            choice = choose_damp(ts.ConvOperator(weight, shape, **kwargs), h, rule=rule, noise_std=noise_std)
            columns = 3 if rule == "gcv" else 1   # GCV: h and two Hutchinson probes
            print(f"| {name} | {rule} | {result.damp:.3g} | {auto:.3f} | {one:.3f} | {auto / one:.1f} | "
                  f"{choice.steps} x {columns if choice.steps else 0} | {solved.iterations} |", flush=True)

if __name__ == "__main__":
    main()
