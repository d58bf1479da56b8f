"""Issue 14, items 1 and 3: memory and time scale with the work, and the memory guard counts
every allocation it can predict.

Every reproduction runs in a child process under an address-space limit
(:mod:`limited`), so that on a defective build it fails with ``MemoryError`` in the
child instead of being killed by the operating system.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.backends import chooser
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.config import WORK_CHUNK_BYTES
from limited import run_json

FORWARD = ("sparse", "direct", "im2col", "auto")
TRANSPOSE = ("sparse", "scatter", "gather", "zero_insert", "im2col", "auto")
S = 2**31

#: (input shape, weight shape, keyword arguments): a few outputs, huge stride / dilation / padding
FORWARD_CASES = [
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(stride=2**31)),  # 1x1 output (16 GiB before)
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(stride=65536)),  # 64 GiB before
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(stride=8192)),  # 4 s and 1 GB before
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(stride=2**62)),  # the largest stride
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(dilation=2**40, padding="same")),
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(dilation=2**40, padding=2**40)),
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(stride=2**40, padding=2**40)),  # 3x3 output
    # two outputs per axis read the input, through different taps, with a huge stride:
    # the phase split would need 2**31 phases
    ((1, 2, 6, 6), (4, 2, 2, 2), dict(stride=S, dilation=S - 1, padding=((S - 2, S),) * 2)),
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(stride=2**20, padding=2**20, padding_mode="replicate")),
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(dilation=2**40, padding=2**40, padding_mode="replicate")),
    ((1, 2, 6, 6), (4, 2, 3, 3), dict(stride=2**31, padding=6, padding_mode="circular")),
    ((1, 2, 6), (4, 2, 3), dict(stride=2**31, padding=2, padding_mode="reflect")),
    ((1, 2, 6, 6, 6), (4, 2, 3, 3, 3), dict(stride=(2**31, 1, 2**31), dilation=(1, 2**40, 1),
                                             padding=(1, 2**40, 0))),
]
#: (transposed input shape, weight shape, keyword arguments)
TRANSPOSE_CASES = [
    ((1, 4, 1, 1), (4, 2, 3, 3), dict(stride=2**31)),
    ((1, 4, 1, 1), (4, 2, 3, 3), dict(stride=200000)),  # 298 GiB in the cost model before
    ((1, 4, 2, 2), (4, 2, 3, 3), dict(stride=2**16, padding=2**15 - 1)),  # 5x5 output
    ((1, 4, 2, 2), (4, 2, 3, 3), dict(stride=2**31, padding=2**30 - 1)),
    ((1, 4, 6, 6), (4, 2, 3, 3), dict(dilation=2**40, padding=2**40)),
    ((1, 4, 2, 2), (4, 2, 2, 2), dict(stride=S, dilation=S - 1, padding=((S - 2, S),) * 2,
                                      output_padding=4)),
    ((1, 4, 3, 3), (4, 2, 3, 3), dict(stride=2**20, padding=2**20, output_padding=3,
                                      padding_mode="replicate")),
    ((1, 4, 1, 2, 1), (4, 2, 3, 3, 3), dict(stride=(2**31, 3, 2**31), dilation=(1, 2**40, 1),
                                            padding=(1, 2**40, 0))),
]

#: (transposed, case, method) that refuse with their estimate, as documented: the textbook
#: method materialises the zero-inserted input, (input - 1) * stride + k_eff per axis of the taps
#: that read it (of the whole padded domain for padding modes other than zeros)
ZERO_INSERT_REFUSES = {(True, 5, "zero_insert"), (True, 6, "zero_insert")}

_CHILD = """
import json, resource, sys, time
import numpy as np
sys.path.insert(0, "tests")
import tconv_sparse as ts
from reference import conv_reference, conv_transpose_reference

S = 2**31
rng = np.random.default_rng(0)
# compile every kernel on a small ordinary geometry first, so that the timings below are not JIT
for method in {forward}:
    ts.conv(np.ones((2, 2, 7, 7)), np.ones((4, 2, 3, 3)), stride=2, method=method)
    ts.conv(np.ones((2, 2, 7)), np.ones((4, 2, 3)), stride=2, method=method)
    ts.conv(np.ones((1, 2, 5, 5, 5)), np.ones((4, 2, 3, 3, 3)), stride=2, method=method)
for method in {transpose}:
    ts.conv_transpose(np.ones((2, 4, 3, 3)), np.ones((4, 2, 3, 3)), stride=2, method=method)
    ts.conv_transpose(np.ones((2, 4, 3)), np.ones((4, 2, 3)), stride=2, method=method)
    ts.conv_transpose(np.ones((1, 4, 2, 2, 2)), np.ones((4, 2, 3, 3, 3)), stride=2, method=method)
rows = []
for transposed, cases, methods, function, reference in (
        (False, {forward_cases}, {forward}, ts.conv, conv_reference),
        (True, {transpose_cases}, {transpose}, ts.conv_transpose, conv_transpose_reference)):
    for index, (shape, weight_shape, kwargs) in enumerate(cases):
        data, weight = rng.standard_normal(shape), rng.standard_normal(weight_shape)
        expected = reference(data[0], weight, **kwargs)
        for method in methods:
            start = time.perf_counter()
            try:
                result = function(data, weight, method=method, **kwargs)
                error = float(np.max(np.abs(result[0] - expected), initial=0.0))
                outcome = "ok" if result.shape[1:] == expected.shape else f"shape {{result.shape}}"
            except Exception as exc:
                outcome, error = f"{{type(exc).__name__}}: {{str(exc)[:200]}}", None
            rows.append([transposed, index, method, outcome, error, time.perf_counter() - start])
print(json.dumps(dict(rows=rows, peak_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
"""


def test_huge_stride_dilation_and_padding_scale_with_the_work():
    """Item 1: every method answers a few-output geometry with huge stride, dilation or padding
    in bounded memory and time, with the reference loops' numbers."""
    code = _CHILD.format(forward=FORWARD, transpose=TRANSPOSE, forward_cases=FORWARD_CASES,
                         transpose_cases=TRANSPOSE_CASES)
    report = run_json(code, timeout=1800)
    failures = []
    for transposed, index, method, outcome, error, seconds in report["rows"]:
        if (transposed, index, method) in ZERO_INSERT_REFUSES:
            if not outcome.startswith("ValueError") or "would need an estimated" not in outcome:
                failures.append((transposed, index, method, outcome))
        elif outcome != "ok" or error > 1e-9 or seconds > 20:
            failures.append((transposed, index, method, outcome, error, seconds))
    assert not failures, "\n".join(map(str, failures))
    assert report["peak_kib"] < 1.5 * 2**20  # the whole child, compilers included, under 1.5 GiB


_REFUSED = """
import json, tracemalloc
import numpy as np
import tconv_sparse as ts
W, X = np.ones((4, 2, 3, 3)), np.ones((1, 2, 6, 6))
calls = {{
    "conv_matrix padding": lambda: ts.conv_matrix(W, (6, 6), padding=2**40),
    "conv_matrix replicate": lambda: ts.conv_matrix(W, (6, 6), padding=2**36, padding_mode="replicate"),
    "overlap_map": lambda: ts.overlap_map((3, 3), (100000, 100000), stride=2),
    "conv_transpose 1-D": lambda: ts.conv_transpose(np.ones((1, 4, 2)), W[..., 0], stride=2**33),
}}
for method in {transpose}:
    calls["conv_transpose " + method] = (
        lambda method=method: ts.conv_transpose(np.ones((1, 4, 2, 2)), W, stride=2**31, method=method))
rows = {{}}
tracemalloc.start()
for name, call in calls.items():
    try:
        call()
        rows[name] = "no error"
    except Exception as exc:
        rows[name] = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps(dict(rows=rows, peak=tracemalloc.get_traced_memory()[1])))
"""


def test_predictable_allocations_are_refused_with_their_estimate():
    """Item 3 (and 1): index maps of a huge padding, an overlap map of 3e10 entries and
    transposed outputs that are legitimately huge are refused with the estimate, not attempted."""
    report = run_json(_REFUSED.format(transpose=TRANSPOSE))
    for name, outcome in report["rows"].items():
        assert outcome.startswith("ValueError") and "would need an estimated" in outcome, (name, outcome)
    assert report["peak"] < 64 * 2**20


def _geometry(x_shape, w_shape, transposed=False, **kwargs):
    if transposed:
        return Geometry.transposed(w_shape, x_shape[2:], **kwargs)
    return Geometry.forward(w_shape, x_shape[2:], **kwargs)


def test_cost_model_features_are_closed_form():
    """Item 3: the ``auto`` cost model computes its features without arrays of the stride's size."""
    geometry = _geometry((1, 4, 1, 1), (4, 2, 3, 3), transposed=True, stride=200000)
    tracemalloc.start()
    features = chooser.features(geometry, 1, transposed=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20
    assert features[2] == geometry.nnz == 4 * 2 * 9
    huge = _geometry((1, 2, 6, 6), (4, 2, 2, 2), stride=S, dilation=S - 1, padding=((S - 2, S),) * 2)
    assert all(math.isfinite(value) and value < 1e6 for value in chooser.features(huge, 1, False))


#: the issue's im2col example: a 512 MiB output asked for a 24.6 GiB column buffer
_BIG_IM2COL = ((1, 64, 1024, 1024), (64, 64, 7, 7), dict(padding=3))


def test_im2col_column_buffer_of_one_large_sample_is_chunked():
    """Item 3: im2col chunks output rows of one sample, so its buffers stay near the output."""
    x_shape, w_shape, kwargs = _BIG_IM2COL
    geometry = _geometry(x_shape, w_shape, **kwargs)
    output = data = 1 * 64 * 1024 * 1024 * 8  # 512 MiB each
    work = chooser.work_bytes("im2col", geometry, 1, np.float64, transposed=False)
    # the phase-split copy of the input (with its margin columns) and one chunk of columns
    assert work < 1.1 * data + 2 * WORK_CHUNK_BYTES, work
    transposed = _geometry((1, 64, 1024, 1024), w_shape, transposed=True, **kwargs)
    assert chooser.work_bytes("im2col", transposed, 1, np.float64, transposed=True) < 3 * output


#: (data shape, weight shape, kwargs) of moderate size for the measured-peak checks
PEAK_CASES = [
    ((1, 8, 96, 96), (8, 8, 7, 7), dict(padding=3)),
    ((3, 4, 40, 40), (6, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
    ((2, 4, 50, 50), (4, 4, 4, 4), dict(stride=2, padding=1, padding_mode="reflect")),
    ((1, 2, 4000), (3, 2, 9), dict(stride=3, padding=4, dilation=2)),
    ((1, 2, 12, 14, 16), (2, 2, 3, 3, 3), dict(stride=2, padding=1, padding_mode="circular")),
]


def _measured_peak(function, *args, **kwargs):
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
@pytest.mark.parametrize("index", range(len(PEAK_CASES)))
def test_estimates_bound_the_measured_peak(index, transposed):
    """Item 3: the estimate of every method (output and work buffers) bounds what it allocates,
    so the guard that checks the estimate counts every predictable allocation."""
    shape, weight_shape, kwargs = PEAK_CASES[index]
    rng = np.random.default_rng(index)
    weight = rng.standard_normal(weight_shape)
    function, methods = (ts.conv_transpose, TRANSPOSE[:-1]) if transposed else (ts.conv, FORWARD[:-1])
    if transposed:
        geometry = _geometry(shape, weight_shape, **kwargs)
        data = rng.standard_normal((shape[0], weight_shape[0], *geometry.output_shape))
    else:
        geometry, data = _geometry(shape, weight_shape, **kwargs), rng.standard_normal(shape)
    for method in methods:
        function(data, weight, method=method, **kwargs)  # compile outside the measurement
        result, peak = _measured_peak(function, data, weight, method=method, **kwargs)
        predicted = result.nbytes + chooser.work_bytes(method, geometry, data.shape[0], result.dtype,
                                                       transposed)
        assert peak <= 1.05 * predicted + 2**20, (method, peak, predicted)


def test_zero_insert_stays_near_its_output():
    """Item 3: ``zero_insert`` used 12x its output; now the padded zero-inserted input, the
    output and one bounded column chunk."""
    rng = np.random.default_rng(1)
    y, weight = rng.standard_normal((1, 4, 128, 128)), rng.standard_normal((4, 4, 3, 3))
    ts.conv_transpose(y[..., :8, :8], weight, stride=2, padding=1, method="zero_insert")
    result, peak = _measured_peak(ts.conv_transpose, y, weight, stride=2, padding=1,
                                  method="zero_insert")
    assert peak < 3.5 * result.nbytes, peak / result.nbytes


@pytest.mark.parametrize("method", ["im2col", "zero_insert", "direct"])
def test_methods_chunk_to_stay_under_the_limit_or_refuse(method):
    """Item 3: under a limit below the unchunked buffers, a method chunks its work and stays
    under the limit; under a limit it cannot meet, it refuses with its estimate."""
    rng = np.random.default_rng(2)
    transposed = method == "zero_insert"
    function = ts.conv_transpose if transposed else ts.conv
    data, weight = rng.standard_normal((1, 16, 128, 128)), rng.standard_normal((16, 16, 7, 7))
    function(data[..., :16, :16], weight, padding=3, method=method)
    expected = function(data, weight, padding=3, method="gather" if transposed else "direct")
    limit = 24 * 2**20  # the unchunked im2col buffer is 16 * 49 * 128 * 134 * 8 B = 107 MiB
    previous = ts.set_max_bytes(limit)
    try:
        result, peak = _measured_peak(function, data, weight, padding=3, method=method)
        assert peak <= limit, (peak, limit)
        np.testing.assert_allclose(result, expected, atol=1e-10)
        ts.set_max_bytes(result.nbytes + 2**10)  # the output fits, its work buffers do not
        with pytest.raises(ValueError, match=f"method {method!r} .*would need an estimated"):
            function(data, weight, padding=3, method=method)
    finally:
        ts.set_max_bytes(previous)


def test_auto_picks_a_method_whose_buffers_fit():
    """Item 3: ``auto`` does not pick a method whose work buffers exceed the limit."""
    geometry = _geometry(*_BIG_IM2COL[:2], **_BIG_IM2COL[2])
    previous = ts.set_max_bytes(2 * 2**30)
    try:
        method = chooser.choose_forward(geometry, 1, np.float64)
        assert chooser.work_bytes(method, geometry, 1, np.float64, False) + 2**29 <= 2 * 2**30
    finally:
        ts.set_max_bytes(previous)


def test_peakmem_benchmarks_cover_every_method():
    """Item 3: the asv suite has a ``peakmem_`` benchmark for every method of both directions."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "peakmem.py"
    spec = importlib.util.spec_from_file_location("peakmem", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    covered = set()
    for suite in (module.ConvPeakMemory, module.ConvTransposePeakMemory):
        assert hasattr(suite, "peakmem_call")
        covered |= {(suite.direction, method) for method in suite.params[1]}
        bench = suite()
        bench.setup(suite.params[0][0], "sparse", "float64")
        bench.peakmem_call(suite.params[0][0], "sparse", "float64")
    assert covered >= {("conv", m) for m in FORWARD} | {("conv_transpose", m) for m in TRANSPOSE}
