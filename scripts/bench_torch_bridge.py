"""Time the PyTorch bridge against PyTorch's own transposed convolution, in one process.

For each case, ``tconv_sparse.torch.conv_transpose`` and ``F.conv_transpose{1,2,3}d``
(and, for 2-D, ``tconv_sparse.torch.ConvTranspose2d`` and ``torch.nn.ConvTranspose2d``)
run forward, and forward + backward (``out.sum().backward()`` into the input, the weight
and the bias), round-robin after a warm-up so that load from other processes hits all
alike. Zero padding is PyTorch's only mode: ``ratio`` is the bridge's median over
PyTorch's (the issue's target is <= 1.3). ``circular`` (no PyTorch peer) is the bridge with
``padding_mode="circular"``, and ``circ/torch`` its ratio to PyTorch's zero-padded time.
Prints a markdown table.

Usage::

    python scripts/bench_torch_bridge.py                     # 2 threads, 9 repeats
    python scripts/bench_torch_bridge.py --repeats 15 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import tconv_sparse.torch as tst

#: (name, batch, in channels, out channels, input spatial shape, kernel, stride, padding, output_padding)
CASES = (
    ("1x1->1 64x64 k3 s2", 1, 1, 1, (32, 32), 3, 2, 1, 1),
    ("8x16->16 32x32 k3 s2", 8, 16, 16, (16, 16), 3, 2, 1, 1),
    ("8x64->64 32x32 k4 s2", 8, 64, 64, (16, 16), 4, 2, 1, 0),
    ("8x16->16 4096 k5 s2 (1-D)", 8, 16, 16, (2048,), 5, 2, 2, 1),
    ("1x4->4 32^3 k3 s2 (3-D)", 1, 4, 4, (16, 16, 16), 3, 2, 1, 1),
)


def _data(case):
    _, batch, c_in, c_out, shape, k, *_ = case
    generator = torch.Generator().manual_seed(0)
    y = torch.randn(batch, c_in, *shape, generator=generator)
    weight = torch.randn(c_in, c_out, *(k,) * len(shape), generator=generator) / k
    return y, weight, torch.randn(c_out, generator=generator)


def _functions(case):
    """``{contender: forward(y, weight, bias)}`` for the functional rows."""
    _, _, _, _, shape, _, stride, padding, output_padding = case
    arguments = dict(stride=stride, padding=padding, output_padding=output_padding)
    torch_transpose = getattr(F, f"conv_transpose{len(shape)}d")
    return {
        "torch": lambda y, w, b: torch_transpose(y, w, b, **arguments),
        "bridge": lambda y, w, b: tst.conv_transpose(y, w, b, **arguments),
        "circular": lambda y, w, b: tst.conv_transpose(y, w, b, padding_mode="circular", **arguments),
    }


def _modules(case, weight, bias):
    """``{contender: layer}`` for the 2-D module rows, all with the same parameters."""
    _, _, c_in, c_out, _, k, stride, padding, output_padding = case
    arguments = dict(stride=stride, padding=padding, output_padding=output_padding)
    layers = {"torch": torch.nn.ConvTranspose2d(c_in, c_out, k, **arguments),
              "bridge": tst.ConvTranspose2d(c_in, c_out, k, **arguments),
              "circular": tst.ConvTranspose2d(c_in, c_out, k, padding_mode="circular", **arguments)}
    for layer in layers.values():
        layer.load_state_dict({"weight": weight, "bias": bias})
    return {name: (lambda layer: lambda y, w, b: layer(y))(layer) for name, layer in layers.items()}


def _calls(forwards, y, weight, bias, backward):
    """Zero-argument calls: forward only, or forward + backward into ``y``, ``weight``, ``bias``."""
    if not backward:
        return {name: (lambda f: lambda: f(y, weight, bias))(f) for name, f in forwards.items()}
    leaves = [t.detach().requires_grad_() for t in (y, weight, bias)]

    def step(forward):
        for leaf in leaves:
            leaf.grad = None
        forward(*leaves).sum().backward()

    return {name: (lambda f: lambda: step(f))(f) for name, f in forwards.items()}


def _medians(calls, repeats, warmup=2):
    """Median seconds of each call, timed round-robin (one call of each per round)."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _format(seconds):
    return f"{seconds * 1e3:.3g} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.3g} µs"


def rows(repeats):
    """Yield ``(case, what, medians)`` for every case, function/module and direction."""
    for case in CASES:
        y, weight, bias = _data(case)
        kinds = [("conv_transpose", _functions(case))]
        if len(case[4]) == 2:
            kinds.append(("ConvTranspose2d", _modules(case, weight, bias)))
        for kind, forwards in kinds:
            for backward in (False, True):
                what = f"{kind} {'fwd+bwd' if backward else 'fwd'}"
                yield case[0], what, _medians(_calls(forwards, y, weight, bias, backward), repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (median; at least 7)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    args = parser.parse_args(argv)
    if args.repeats < 7:
        parser.error(f"--repeats must be >= 7, got {args.repeats}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, median of "
          f"{args.repeats} round-robin repeats after warm-up\n")
    print("| case | call | torch (zeros) | bridge (zeros) | ratio | bridge (circular) | circ/torch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, what, median in rows(args.repeats):
        print(f"| {name} | {what} | {_format(median['torch'])} | {_format(median['bridge'])} | "
              f"{median['bridge'] / median['torch']:.2f} | {_format(median['circular'])} | "
              f"{median['circular'] / median['torch']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
