"""The shared plane helpers of ``backends/_polyphase.py`` against NumPy references, and their
specializations (compile time is paid once per specialization: one per dtype is the budget)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tconv_sparse.backends import _polyphase
from tconv_sparse.core.geometry import Geometry


def _store_reference(phases, offset, first, count, width, columns, out):
    stride_b, stride_c, _ = phases.shape
    for f in range(first, first + count):
        q_b, q_c = divmod(f, width)
        if q_c >= columns:
            continue
        for r_b in range(stride_b):
            for r_c in range(stride_c):
                row, col = q_b * stride_b + r_b, q_c * stride_c + r_c
                if row < out.shape[0] and col < out.shape[1]:
                    out[row, col] = phases[r_b, r_c, offset + f - first]


@pytest.mark.parametrize("stride_b, stride_c", [(1, 1), (2, 2), (3, 2), (2, 3), (1, 3), (2, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_store_plane_matches_reference(stride_b, stride_c, dtype):
    rng = np.random.default_rng(stride_b * 10 + stride_c)
    width, columns, rows_out, cols_out = 9, 7, 13, 7 * stride_c - 1
    tile = 40
    phases = rng.standard_normal((stride_b, stride_c, tile)).astype(dtype)
    for first, count, offset in [(0, 40, 0), (5, 30, 3), (17, 23, 0), (31, 9, 2)]:
        got = np.full((rows_out, cols_out), -1.0, dtype=dtype)
        expected = got.copy()
        _polyphase.store_plane(phases, np.int64(offset), first, count, width, columns, got)
        _store_reference(phases, offset, first, count, width, columns, expected)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("count", [0, 1, 3, 4, 5, 8, 9])
def test_add_terms_matches_reference(count):
    rng = np.random.default_rng(count)
    source = rng.standard_normal(50)
    shifts = rng.integers(-10, 30, size=max(count, 1)).astype(np.int64)
    scales = rng.standard_normal(max(count, 1))
    starts = rng.integers(-5, 20, size=max(count, 1)).astype(np.int64)
    stops = starts + rng.integers(-2, 30, size=max(count, 1))
    offset = 5
    got = np.zeros(60)
    expected = got.copy()
    _polyphase.add_terms(got, offset, source, shifts, scales, starts, stops, np.int64(count))
    for m in range(count):
        for q in range(starts[m], stops[m]):
            if 0 <= q + shifts[m] < len(source):
                expected[offset + q] += scales[m] * source[q + shifts[m]]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_plane_tap_tables_cover_every_plane_tap_once():
    plan = _polyphase.plane_plan(Geometry.forward((2, 3, 4, 5), (11, 13), stride=(2, 3), padding=1))
    phase_ptr, offset, tap, lo, hi = plan.transpose_taps
    assert sorted(tap.tolist()) == list(range(4 * 5))
    assert len(phase_ptr) == 2 * 3 + 1 and phase_ptr[-1] == len(offset) == len(lo) == len(hi) == 20
    assert all(len(table) == 20 for table in plan.forward_taps)
    assert all(table.dtype == np.int64 and table.flags.c_contiguous
               for table in (*plan.transpose_taps, *plan.forward_taps))


#: the child of the specialization test: the polyphase paths on two geometries, then the number of
#: specializations of each shared helper and kernel
_CHILD = """
import json, warnings
import numpy as np
import tconv_sparse as ts
from tconv_sparse.backends import _polyphase, direct, im2col
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
for shape, kernel, stride, mode in [((9, 10), (3, 4), 2, "zeros"), ((33,), (5,), 3, "circular")]:
    x = rng.standard_normal((2, 4, *shape)).astype(np.float32)
    weight = rng.standard_normal((6, 4, *kernel)).astype(np.float32)
    keywords = dict(stride=stride, padding=1, padding_mode=mode)
    y = ts.conv(x, weight, method="direct", **keywords)
    for method in ("gather", "im2col"):
        ts.conv_transpose(y, weight, output_size=shape, method=method, **keywords)
kernels = (_polyphase.store_plane, _polyphase.add_terms, _polyphase.shifted_range, _polyphase._split,
           direct._direct, direct._gather, im2col._to_planes, im2col._from_planes)
print(json.dumps({k.__name__: len(k.signatures) for k in kernels}))
"""


def test_one_specialization_per_dtype(tmp_path):
    """On an empty cache, the direct, gather and im2col-transpose paths compile each kernel once,
    and each shared helper at most once, for one dtype (a literal argument, a non-contiguous view
    or a mixed integer type would compile another copy, and its compile time)."""
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}, check=False)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    kernels = {name: counts.pop(name) for name in ("_split", "_direct", "_gather", "_to_planes", "_from_planes")}
    assert kernels == dict.fromkeys(kernels, 1)
    assert max(counts.values()) <= 1, counts  # helpers inlined into the kernels compile no copy of their own
