"""``tconv-sparse warmup`` and the first-use compile notice (issue 12, item 3).

Each check runs in child processes on a fresh, empty ``NUMBA_CACHE_DIR``, so
what is compiled, cached or announced is decided by this test alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tconv_sparse import cli
from tconv_sparse.cli import warmup

ROOT = Path(__file__).resolve().parents[1]

#: calls scatter twice for float64 and prints the compile notices and whether it was compiled before
_CHILD = """
import json, warnings
import numpy as np, tconv_sparse as ts
from tconv_sparse.backends.compiling import compiled
from tconv_sparse.core.config import CompileNotice
before = compiled("scatter", True, np.float64)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(2):
        ts.conv_transpose(np.ones((1, 2, 3, 3)), np.ones((2, 1, 3, 3)), stride=2, method="scatter")
notices = [str(w.message) for w in caught if issubclass(w.category, CompileNotice)]
print(json.dumps({"before": before, "after": compiled("scatter", True, np.float64), "notices": notices}))
"""


def _child(cache: Path, code: str = _CHILD) -> dict:
    """Run ``code`` in a child process on the Numba cache ``cache``; the JSON of its last line."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "NUMBA_CACHE_DIR": str(cache),
                               "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_use_notice_once_then_cached(tmp_path):
    first = _child(tmp_path / "cache")
    assert first["before"] is False and first["after"] is True
    assert first["notices"] == ["compiling the scatter kernels of conv_transpose for float64 (first use, "
                                "cached afterwards; tconv-sparse warmup compiles everything ahead of time)"]
    again = _child(tmp_path / "cache")  # a fresh process on the cache the first one filled
    assert again == {"before": True, "after": True, "notices": []}


def test_warmup_compiles_the_chosen_part(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))  # the spawned workers inherit it
    assert cli.main(["warmup", "--method", "scatter", "--dtype", "float64"]) == 0
    err = capsys.readouterr().err
    assert "[1/1] conv_transpose scatter float64" in err and "1 of 1 compiled" in err
    assert _child(cache) == {"before": True, "after": True, "notices": []}


def test_warmup_jobs_cover_every_method_and_dtype():
    everything = warmup.jobs()
    assert len(everything) == len(set(everything)) == 8 * len(warmup.DTYPES)
    assert {job[1] for job in everything} == {"sparse", "direct", "im2col", "scatter", "gather", "zero_insert"}


#: ``gather`` on a stride-1 zero-padded geometry (run as the forward ``direct`` kernel on the
#: adjoint geometry), then on a stride-2 one (its own ``_gather`` kernel), float32
_GATHER_CHILD = """
import json, warnings
import numpy as np, tconv_sparse as ts
from tconv_sparse.backends.direct import _direct, _gather
from tconv_sparse.core.config import CompileNotice
y, w = np.ones((1, 2, 6, 6), np.float32), np.ones((2, 1, 3, 3), np.float32)
seen = []
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for stride in (1, 2):
        ts.conv_transpose(y, w, stride=stride, padding=1, method="gather")
        seen.append([len(_direct.signatures), len(_gather.signatures)])
notices = [str(w.message) for w in caught if issubclass(w.category, CompileNotice)]
print(json.dumps({"notices": notices, "compiled": seen}))
"""


def test_the_notice_names_the_kernel_a_call_compiles(tmp_path):
    """A stride-1 ``gather`` runs (and compiles) the ``direct`` kernel: its notice says so, and the
    stride-2 call that then compiles ``_gather`` has a notice of its own."""
    result = _child(tmp_path / "cache", _GATHER_CHILD)
    assert result["compiled"] == [[1, 0], [1, 1]]
    tail = " for float32 (first use, cached afterwards; tconv-sparse warmup compiles everything ahead of time)"
    assert result["notices"] == ["compiling the direct kernels of conv" + tail,
                                 "compiling the gather kernels of conv_transpose" + tail]


def test_import_loads_no_compiler_and_no_heavy_scipy_module(tmp_path):
    """``import tconv_sparse`` compiles nothing (Numba is not even imported) and leaves SciPy's
    optimize, special, fft and spatial (0.3 s together) to the first damp rule that uses them."""
    code = ("import json, sys, tconv_sparse; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] "
            "in ('numba', 'llvmlite') or m.split('.')[:2] in (['scipy', s] for s in "
            "('optimize', 'special', 'fft', 'spatial')))))")
    assert _child(tmp_path / "cache", code) == []
