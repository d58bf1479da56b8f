"""Describe the machine and write the results: Markdown table, JSON, CSV and a PNG plot."""

from __future__ import annotations

import csv
import datetime
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

import tconv_sparse as ts
from tconv_sparse.core.config import num_threads

from tconv_sparse.bench.runners import FAIL, NOISY_SPREAD, OK, PEER, SPARSE_REFERENCES, TOLERANCE, format_time

__all__ = [
    "machine_info",
    "format_machine",
    "format_table",
    "write_json",
    "write_csv",
    "plot",
]

_PACKAGES = ("numpy", "scipy", "numba", "torch", "threadpoolctl", "matplotlib")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _thread_pools() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed: BLAS threads unknown and not matched"]
    return [" ".join(filter(None, (
        f"{pool['user_api']}: {pool['internal_api']}", pool.get("version"),
        pool.get("threading_layer") and f"{pool['threading_layer']} threading",
        f"{pool['num_threads']} threads ({Path(pool['filepath']).name})",
    ))) for pool in threadpool_info()]


def _allocator() -> str:
    libc, version = platform.libc_ver()
    settings = " ".join(f"{key}={value}" for key, value in sorted(os.environ.items())
                        if key.startswith("MALLOC_"))
    if libc != "glibc":
        return f"{libc or 'unknown libc'} malloc {settings}".strip()
    return (f"glibc {version} malloc ({settings or 'default settings'}): large arrays are mmap'd and "
            "returned to the OS when freed, so every timed call pays the page faults of its own "
            "output and temporaries; all contenders are timed in this one process, after a warm-up "
            "call, under the same allocator")


def machine_info() -> dict:
    """CPU, thread counts, library versions, BLAS and allocator of this process.

    PyTorch's thread count is reported when PyTorch has been imported (the
    runners set it to the library's thread count).
    """
    torch = sys.modules.get("torch")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "library_threads": num_threads(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"tconv_sparse": ts.__version__,
                     **{package: _version(package) for package in _PACKAGES}},
        "thread_pools": _thread_pools(),
        "allocator": _allocator(),
    }


def format_machine(info: dict) -> list[str]:
    """The machine description as lines of text (Markdown list items)."""
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items()
                         if version is not None)
    threads = f"tconv_sparse (Numba) {info['library_threads']} threads"
    if info["torch_threads"] is not None:
        threads += f", torch {info['torch_threads']} threads"
    return [
        f"- date: {info['date']}",
        f"- CPU: {info['cpu']}; {info['logical_cpus']} logical CPUs, {info['usable_cpus']} usable",
        f"- threads: {threads}",
        f"- platform: {info['platform']}, Python {info['python']}",
        f"- versions: {versions}",
        *(f"- thread pool: {pool}" for pool in info["thread_pools"]),
        f"- allocator: {info['allocator']}",
    ]


def _format_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"


def _cell(measurement, fastest: bool) -> str:
    if measurement.status == OK:
        text = format_time(measurement.median)
        if measurement.ratio is not None and measurement.method != PEER:
            text += f" ({_format_ratio(measurement.ratio)})"
        return f"**{text}**" if fastest else text
    if measurement.status == FAIL:
        return f"FAIL (err {measurement.error:.1e})"
    return measurement.status


def _spread_cell(row) -> str:
    """The largest spread (IQR / median) of the row's timed measurements, marked when noisy."""
    spreads = [m.spread for m in row if m.spread is not None]
    if not spreads:
        return "n/a"
    worst = max(spreads)
    return f"**{100 * worst:.0f}% noisy**" if worst > NOISY_SPREAD else f"{100 * worst:.0f}%"


def format_table(results) -> str:
    """Markdown tables, one per direction: median time per case, dtype and method.

    Each cell holds the median time and, in parentheses, the ratio to the
    PyTorch median (below 1: faster than PyTorch). The fastest tconv_sparse
    method of each row is in bold. Methods that failed the correctness check
    show ``FAIL`` and the error; refused cases ``n/a``. The last column is
    the row's spread: the largest interquartile range of the timed calls
    over their median, marked ``noisy`` above :data:`NOISY_SPREAD`. Notes under
    each table give non-default references and the reasons behind
    ``n/a``/``error``.
    """
    lines = []
    for direction in dict.fromkeys(m.direction for m in results):
        rows = [m for m in results if m.direction == direction]
        methods = list(dict.fromkeys(m.method for m in rows))
        lines += [f"### {direction}", "",
                  "| case | dtype | " + " | ".join(methods) + " | spread |",
                  "|---|---|" + "---|" * (len(methods) + 1)]
        notes = []
        for key in dict.fromkeys((m.case.name, m.dtype) for m in rows):
            row = {m.method: m for m in rows if (m.case.name, m.dtype) == key}
            timed = [m for m in row.values() if m.status == OK and m.method != PEER]
            fastest = min(timed, key=lambda m: m.median) if timed else None
            cells = [_cell(row[method], row[method] is fastest) if method in row else "" for method in methods]
            lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + f" | {_spread_cell(row.values())} |")
            first = next(iter(row.values()))
            if first.reference not in SPARSE_REFERENCES.values():
                notes.append(f"{key[0]} {key[1]}: checked against {first.reference}")
            notes += [f"{key[0]} {key[1]} {m.method}: {m.status}: {m.message}"
                      for m in row.values() if m.status not in (OK, FAIL)]
        lines.append("")
        lines += [f"- {note}" for note in notes]
        if notes:
            lines.append("")
    lines.append(
        "Median time per call; (Nx) = time / PyTorch time, below 1 is faster than PyTorch; bold = "
        "fastest tconv_sparse method of the row. Every result was checked before timing against "
        "the sparse matrix (C @ x, C.T @ y in float64) unless noted; max relative error allowed: "
        + ", ".join(f"{dtype} {tolerance:.0e}" for dtype, tolerance in TOLERANCE.items()) + ". "
        "spread = the row's largest interquartile range of the timed calls / median; "
        f"noisy above {100 * NOISY_SPREAD:.0f}% (rerun it on an idle machine)."
    )
    return "\n".join(lines)


def write_json(path, results, metadata: dict) -> None:
    """Write ``metadata`` (machine, command, settings) and every measurement as JSON."""
    document = {**metadata, "results": [m.record() for m in results]}
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def write_csv(path, results) -> None:
    """Write one CSV row per measurement (the per-call times are in the JSON only)."""
    records = [m.record() for m in results]
    for record in records:
        del record["times_s"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


def plot(path, results) -> None:
    """Dot plot of the median time (log scale) per case and method, one panel per direction.

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    """
    from matplotlib.figure import Figure

    directions = list(dict.fromkeys(m.direction for m in results))
    labels = {d: list(dict.fromkeys(f"{m.case.name} {m.dtype}" for m in results if m.direction == d))
              for d in directions}
    figure = Figure(figsize=(10, 1.5 + 0.32 * sum(len(v) for v in labels.values())),
                    layout="constrained")
    axes = figure.subplots(len(directions), 1, squeeze=False,
                           height_ratios=[len(labels[d]) + 1 for d in directions])[:, 0]
    markers = "oDs^v<>ph*"
    timed_methods = list(dict.fromkeys(m.method for m in results if m.status == OK))
    styles = {method: {"marker": markers[number % len(markers)], "color": f"C{number % 10}",
                       "markersize": 6}
              for number, method in enumerate(timed_methods)}
    styles[PEER] = {"marker": "x", "color": "black", "markersize": 8}
    handles = {}
    for axis, direction in zip(axes, directions):
        rows = [m for m in results if m.direction == direction and m.status == OK]
        positions = {label: index for index, label in enumerate(labels[direction])}
        for method in dict.fromkeys(m.method for m in rows):
            timed = [m for m in rows if m.method == method]
            handles[method], = axis.plot([m.median for m in timed],
                                         [positions[f"{m.case.name} {m.dtype}"] for m in timed],
                                         linestyle="none", label=method, alpha=0.85, **styles[method])
        axis.set_xscale("log")
        axis.set_yticks(range(len(positions)), list(positions), fontsize=8)
        axis.invert_yaxis()
        axis.grid(True, axis="x", which="both", alpha=0.3)
        axis.set_title(f"{direction}: median time per call (failed or refused methods omitted)")
        axis.set_xlabel("seconds (log scale)")
    # one legend for every panel, outside them, of the methods that have a timed result
    legend = [method for method in timed_methods if method in handles]
    figure.legend([handles[method] for method in legend], legend, loc="outside right center", fontsize=8)
    figure.savefig(path, dpi=120)
