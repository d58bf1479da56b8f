"""Plans: ConvOperator as the face of a plan (.T/.H, conv/conv_transpose, planning, wisdom), the
plan cache of conv/conv_transpose, and empty batches."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.core import config
from tconv_sparse.plan import FORWARD_METHODS, TRANSPOSE_METHODS, cache, measure, wisdom
from conftest import random_array

DTYPES = (np.float32, np.float64, np.complex64, np.complex128)
TOL = {np.float32: 1e-4, np.complex64: 1e-4, np.float64: 1e-10, np.complex128: 1e-10}
GEOMETRIES = [
    ((3, 2, 3, 3), (7, 6), dict(stride=2, padding=1)),
    ((4, 2, 5), (17,), dict(stride=3, padding=((2, 1),), dilation=2, groups=2, padding_mode="circular")),
    ((2, 1, 2, 3, 2), (5, 6, 4), dict(stride=(1, 2, 2), padding=1, padding_mode="reflect")),
]


def _close(a, b, dtype):
    scale = max(1.0, float(np.abs(b).max(initial=0)))
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL[dtype] * scale)


@pytest.fixture(autouse=True)
def _private_wisdom(tmp_path, monkeypatch):
    monkeypatch.setenv("TCONV_SPARSE_WISDOM", str(tmp_path / "wisdom.json"))
    wisdom.forget()
    yield
    wisdom.forget()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(GEOMETRIES)))
def test_operator_views_equal_functions_and_matrices(index, dtype):
    weight_shape, input_shape, kwargs = GEOMETRIES[index]
    rng = np.random.default_rng(index)
    weight = random_array(rng, weight_shape, dtype)
    C = ts.conv_matrix(weight, input_shape, **kwargs).toarray()
    op = ts.ConvOperator(weight, input_shape, **kwargs)
    out_shape = op.dimsd[1:]
    assert op.dims == (weight_shape[1] * kwargs.get("groups", 1), *input_shape)
    assert op.dimsd == (weight_shape[0], *out_shape) and op.T.dims == op.dimsd and op.H.dimsd == op.dims
    x, y = random_array(rng, (2, *op.dims), dtype), random_array(rng, (2, *op.dimsd), dtype)
    u, v = x[0].ravel(), y[0].ravel()
    for forward in FORWARD_METHODS:
        got = ts.ConvOperator(weight, input_shape, method=forward, **kwargs)
        _close(got.conv(x), ts.conv(x, weight, method="sparse", **kwargs), dtype)
        _close(got.conv(x[0]), (C @ u).reshape(op.dimsd), dtype)
        _close(got @ u, C @ u, dtype)
        _close(got.T.H @ u, C.conj() @ u, dtype)
    for transpose in TRANSPOSE_METHODS:
        got = ts.ConvOperator(weight, input_shape, method=transpose, **kwargs)
        expected = ts.conv_transpose(y, weight, output_size=input_shape, method="sparse", **kwargs)
        _close(got.conv_transpose(y), expected, dtype)
        _close(got.T @ v, C.T @ v, dtype)
        _close(got.H @ v, C.conj().T @ v, dtype)
        _close(got.rmatvec(v), C.conj().T @ v, dtype)
        _close(got.T.rmatvec(u), C.conj() @ u, dtype)
        _close(got.H.rmatmat(x.reshape(2, -1).T), (C @ x.reshape(2, -1).T), dtype)
        _close(got.T.matmat(y.reshape(2, -1).T), C.T @ y.reshape(2, -1).T, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_view_matrices(dtype):
    weight_shape, input_shape, kwargs = GEOMETRIES[1]
    weight = random_array(np.random.default_rng(1), weight_shape, dtype)
    op = ts.ConvOperator(weight, input_shape, **kwargs)
    C = ts.conv_matrix(weight, input_shape, **kwargs)
    assert (op.T.matrix != C.T).nnz == 0 and op.T.matrix.format == "csr"
    assert (op.H.matrix != C.conj().T).nnz == 0
    assert (op.H.T.matrix != C.conj()).nnz == 0
    assert op.T.T is op and op.H.H is op and op.T.H.H.T is op
    assert op.T is op.T and op.H.T is op.T.H


def test_operator_copies_its_weight():
    weight = np.ones((1, 1, 3))
    op = ts.ConvOperator(weight, (5,), padding=1)
    before = op @ np.ones(5)
    weight[...] = 7.0
    np.testing.assert_array_equal(op @ np.ones(5), before)
    assert not np.shares_memory(op.weight, weight)


def test_operator_layout_errors():
    op = ts.ConvOperator(np.ones((2, 1, 3)), (5,))
    with pytest.raises(ValueError, match="must have shape"):
        op.conv(np.ones((2, 5)))
    with pytest.raises(ValueError, match="must have shape"):
        op.conv_transpose(np.ones((1, 3)))
    with pytest.raises(ValueError, match="planning must be one of"):
        ts.ConvOperator(np.ones((2, 1, 3)), (5,), planning="patient")
    with pytest.raises(TypeError, match="planning"):
        ts.ConvOperator(np.ones((2, 1, 3)), (5,), planning=1)


def test_method_properties():
    op = ts.ConvOperator(np.ones((1, 1, 3, 3)), (8, 8), method=("direct", "gather"))
    assert (op.method_forward, op.method_transpose) == ("direct", "gather")
    tiny = ts.ConvOperator(np.ones((1, 1, 3, 3)), (8, 8))
    assert (tiny.method_forward, tiny.method_transpose) == ("sparse", "sparse")
    large = ts.ConvOperator(np.ones((1, 1, 3, 3)), (256, 256))
    assert large.method_forward in ("direct", "im2col") and large.method_transpose in ("gather", "im2col")


# ---------------------------------------------------------------------- measured planning
def test_measure_picks_the_fastest_it_timed():
    op = ts.ConvOperator(np.random.default_rng(0).standard_normal((4, 4, 3, 3)), (24, 24), stride=2,
                         padding=1, planning="measure")
    forward, transpose = op.method_forward, op.method_transpose
    assert len(op.timings) == 2
    for (transposed, batch, dtype, threads), timings in op.timings.items():
        assert batch == 1 and dtype == np.float64
        assert set(timings) == set(measure.CANDIDATES[transposed])
        chosen = transpose if transposed else forward
        assert timings[chosen] <= 1.1 * min(timings.values())
    x = np.ones((4, 24, 24))
    np.testing.assert_allclose(op.conv(x), ts.conv(x, op.weight, stride=2, padding=1), atol=1e-12)
    entries = json.loads(wisdom.wisdom_path().read_text())["entries"]
    assert sorted(entries.values()) == sorted([forward, transpose])


_CHILD = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np, tconv_sparse as ts
    from tconv_sparse.plan import measure
    if sys.argv[1] == "reuse":
        def refuse(*args):
            raise AssertionError("timed although the wisdom file knows the answer")
        measure.time_method = refuse
    from tconv_sparse.core.config import CompileNotice
    warnings.simplefilter("error")
    warnings.simplefilter("ignore", CompileNotice)  # compiling the candidates is not the point
    op = ts.ConvOperator(np.ones((2, 2, 3, 3)), (16, 16), padding=1, planning="measure")
    print(json.dumps([op.method_forward, op.method_transpose, len(op.timings)]))
""")


def _child(mode, env):
    done = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_wisdom_survives_a_new_process(tmp_path):
    env = {**os.environ, "TCONV_SPARSE_WISDOM": str(tmp_path / "sub" / "w.json")}
    first = _child("measure", env)
    assert first[2] == 2
    second = _child("reuse", env)
    assert second[:2] == first[:2] and second[2] == 0


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": 1, "version": "0.0.0-other",
                                                               "entries": {}}), json.dumps([1, 2])])
def test_corrupt_or_foreign_wisdom_is_ignored_with_a_warning(content):
    path = wisdom.wisdom_path()
    path.write_text(content)
    with pytest.warns(wisdom.WisdomWarning, match="ignoring"):
        assert wisdom.lookup("anything") is None
    wisdom.record("key", "gather")
    stored = json.loads(path.read_text())
    assert stored["entries"] == {"key": "gather"} and stored["version"] == ts.__version__


def test_concurrent_writers_keep_every_entry(tmp_path):
    env = {**os.environ, "TCONV_SPARSE_WISDOM": str(tmp_path / "w.json")}
    code = ("import sys\nfrom tconv_sparse.plan import wisdom\n"
            "for i in range(40):\n    wisdom.record(f'{sys.argv[1]}-{i}', 'gather')\n")
    children = [subprocess.Popen([sys.executable, "-c", code, name], env=env) for name in "abcd"]
    assert all(child.wait(timeout=300) == 0 for child in children)
    entries = json.loads((tmp_path / "w.json").read_text())["entries"]
    assert set(entries) == {f"{name}-{i}" for name in "abcd" for i in range(40)}


def test_unwritable_wisdom_warns_and_keeps_the_choice(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("TCONV_SPARSE_WISDOM", str(blocker / "w.json"))
    with pytest.warns(wisdom.WisdomWarning, match="could not save"):
        wisdom.record("k", "im2col")
    assert wisdom.lookup("k") == "im2col"


# ---------------------------------------------------------------------- the plan cache
def test_same_geometry_calls_validate_once(monkeypatch):
    cache.clear()
    built = []
    original = ts.Geometry.transposed.__func__

    def counting(cls, *args, **kwargs):
        built.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(ts.Geometry, "transposed", classmethod(counting))
    y, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    results = [ts.conv_transpose(y, w, stride=2, padding=1) for _ in range(5)]
    assert len(built) == 1
    for result in results:
        np.testing.assert_array_equal(result, results[0])


def test_cache_keys_tell_types_and_weights_apart():
    cache.clear()
    y, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    ts.conv_transpose(y, w, stride=2)
    for bad in (2.0, True, "2"):
        with pytest.raises(ValueError):
            ts.conv_transpose(y, w, stride=bad)
    before = ts.conv_transpose(y, w, stride=2)
    w[0, 0, 1, 1] = 10.0  # the weight enters by value: an in-place change is a new plan
    after = ts.conv_transpose(y, w, stride=2)
    np.testing.assert_array_equal(after, ts.conv_transpose(y, w, stride=2, method="sparse"))
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(ts.conv_transpose(y, w, stride=[2, 2]), after)


def test_cache_is_bounded():
    cache.clear()
    for n in range(cache.MAX_PLANS + 10):
        ts.conv(np.ones((1, n + 3)), np.ones((1, 1, 3)))
    assert len(cache._plans) <= cache.MAX_PLANS and len(cache._geometries) <= cache.MAX_PLANS
    assert len(cache._calls) <= cache.MAX_PLANS


def test_repeated_calls_skip_the_lookups(monkeypatch):
    """The second identical call goes straight to the runner; each gives a new array."""
    cache.clear()
    looked_up = []
    original = ts.functional.function_plan
    monkeypatch.setattr(ts.functional, "function_plan", lambda *a: looked_up.append(a) or original(*a))
    rng = np.random.default_rng(1)
    y, w = random_array(rng, (2, 3, 4, 4), np.float64), random_array(rng, (3, 2, 3, 3), np.float64)
    first, second = (ts.conv_transpose(y, w, stride=2, padding=(1, 1)) for _ in range(2))
    assert len(looked_up) == 1 and first is not second
    np.testing.assert_array_equal(first, second)
    first[...] = 0  # a new array each time, not a kept buffer
    np.testing.assert_array_equal(second, ts.conv_transpose(y, w, stride=2, padding=(1, 1), method="sparse"))
    x, forward = (10 * y[0]).astype(np.int64), np.swapaxes(w, 0, 1)  # unbatched integer data
    unbatched = [ts.conv(x, forward) for _ in range(2)]
    assert len(looked_up) == 3  # the sparse call above, then one for the repeated conv
    assert unbatched[1].dtype == np.float64 and unbatched[1].shape == (2, 2, 2)
    np.testing.assert_array_equal(unbatched[0], unbatched[1])
    np.testing.assert_allclose(unbatched[1], ts.conv(x[None], forward, method="sparse")[0], rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("transposed", [False, True])
def test_repeated_calls_see_what_changed(transposed):
    """Data of another shape, dtype, layout or rank, the bias, the thread count and the memory
    limit are all part of a repeated call: each change gives what a first call would."""
    cache.clear()
    function = ts.conv_transpose if transposed else ts.conv
    rng = np.random.default_rng(3)
    w, data = random_array(rng, (2, 2, 3, 3), np.float64), random_array(rng, (1, 2, 6, 6), np.float64)

    def check(x, bias=None, **keywords):
        expected = function(x, w, bias, method="sparse", stride=2, **keywords)
        for _ in range(2):
            result = function(x, w, bias, stride=2, **keywords)
            assert result.dtype == expected.dtype and result.shape == expected.shape
            np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)

    for x in (data, data.astype(np.float32), data[..., ::-1], data[0], np.repeat(data, 3, axis=0),
              data[:, :, :4, :4], data.astype(np.complex128) * 1j):
        check(x)
    for bias in (np.arange(2.0), -3 * np.arange(2.0), np.arange(2, dtype=np.float32), [1.0, 2.0]):
        check(data, bias=bias)  # a bias enters a repeated call by shape and dtype, its values are used
    with pytest.raises(ValueError, match="bias"):
        function(data, w, np.ones(3), stride=2)
    with config.numba_threads(1):
        check(data)
    previous = ts.set_max_bytes(16)  # below either output (64 bytes and more)
    try:
        with pytest.raises(ValueError, match="memory limit"):
            function(data, w, stride=2)
    finally:
        ts.set_max_bytes(previous)
    check(data)


@pytest.mark.parametrize("name, bad", [("stride", 2.0), ("stride", True), ("stride", (2, 2.0)),
                                       ("stride", (True, 2)), ("stride", np.bool_(True)), ("padding", (1.0, 1)),
                                       ("padding", [True, 1]), ("dilation", 1.0), ("groups", True),
                                       ("padding_mode", b"zeros")])
def test_equal_but_invalid_arguments_raise_after_a_repeated_call(name, bad):
    cache.clear()
    y, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    valid = dict(stride=2, padding=(1, 1), dilation=1, groups=1, padding_mode="zeros")
    for function in (ts.conv, ts.conv_transpose):
        for _ in range(3):
            function(y, w, **valid)
        with pytest.raises(ValueError, match=name):
            function(y, w, **dict(valid, **{name: bad}))


def test_large_weights_are_not_hashed_but_still_right():
    w = np.random.default_rng(0).standard_normal((64, 64, 3, 3))  # 288 KiB > MAX_WEIGHT_BYTES
    x = np.random.default_rng(1).standard_normal((1, 64, 6, 6))
    first = ts.conv(x, w)
    w *= 2
    np.testing.assert_allclose(ts.conv(x, w), 2 * first, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- empty batches
@pytest.mark.parametrize("method", FORWARD_METHODS)
def test_empty_batch_conv(method):
    result = ts.conv(np.zeros((0, 2, 5, 5)), np.ones((3, 2, 3, 3)), bias=np.ones(3), method=method)
    assert result.shape == (0, 3, 3, 3) and result.dtype == np.float64


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
def test_empty_batch_conv_transpose(method):
    result = ts.conv_transpose(np.zeros((0, 3, 2, 2), np.float32), np.ones((3, 2, 3, 3), np.float32),
                               stride=2, method=method)
    assert result.shape == (0, 2, 5, 5) and result.dtype == np.float32


@pytest.mark.parametrize("method", ["auto", "sparse", ("direct", "gather"), "im2col"])
def test_zero_columns(method):
    op = ts.ConvOperator(np.ones((3, 2, 3, 3)), (6, 6), stride=2, method=method)
    assert op.matmat(np.zeros((op.shape[1], 0))).shape == (op.shape[0], 0)
    assert op.rmatmat(np.zeros((op.shape[0], 0))).shape == (op.shape[1], 0)
    assert op.T.matmat(np.zeros((op.shape[0], 0))).shape == (op.shape[1], 0)
    assert op.conv(np.zeros((0, 2, 6, 6))).shape == (0, 3, 2, 2)
    assert op.conv_transpose(np.zeros((0, 3, 2, 2))).shape == (0, 2, 6, 6)


def test_threads_do_not_share_a_plan_badly():
    from concurrent.futures import ThreadPoolExecutor

    y, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    expected = ts.conv_transpose(y, w, stride=2, method="sparse")
    ts.conv_transpose(y, w, stride=2)  # the plan exists (thread safety of kernels: tests/test_hardening*)
    with ThreadPoolExecutor(4) as pool, warnings.catch_warnings():
        results = list(pool.map(lambda _: ts.conv_transpose(y, w, stride=2), range(64)))
    for result in results:
        np.testing.assert_array_equal(result, expected)


# ------------------------------------------------------- weight transforms made once
def test_weight_transforms_are_made_once_per_plan(monkeypatch):
    """The canonical cut, the finite split and the adjoint flip run on the first call only."""
    import tconv_sparse.backends as backends

    calls = []
    original = backends.split_nonfinite
    monkeypatch.setattr(backends, "split_nonfinite", lambda w: calls.append(1) or original(w))
    op = ts.ConvOperator(np.ones((2, 1, 3, 3)), (12, 12), padding=1, method=("direct", "gather"))
    y = np.ones((1, 2, 12, 12))
    for _ in range(5):
        op.conv(np.ones((1, 1, 12, 12)))
        op.conv_transpose(y)
    assert len(calls) == 2   # one per direction
    assert op.plan.prepared("direct", False, np.dtype(np.float64)) is op.plan.prepared(
        "direct", False, np.dtype(np.float64))


def test_a_new_memory_limit_is_checked_on_the_next_call():
    op = ts.ConvOperator(np.ones((1, 1, 3, 3)), (64, 64), method="direct")
    x = np.ones((1, 1, 64, 64))
    op.conv(x)
    old = ts.set_max_bytes(1000)
    try:
        with pytest.raises(ValueError, match="memory limit"):
            op.conv(x)
    finally:
        ts.set_max_bytes(old)
    op.conv(x)


STRIDE_ONE = [((3, 2, 3), (9,), {"padding": ((0, 2),)}),
              ((2, 2, 3, 2), (7, 6), {"padding": 1, "dilation": (2, 1), "groups": 2}),
              ((4, 1, 2, 3, 3), (4, 5, 6), {"padding": ((1, 0), (2, 2), (0, 1)), "groups": 2}),
              ((1, 1, 5, 5), (8, 8), {"padding": "same"})]


@pytest.mark.parametrize("weight_shape, input_shape, kwargs", STRIDE_ONE)
def test_adjoint_geometry_is_the_transpose(rng, weight_shape, input_shape, kwargs):
    """Matrix identity: C of the adjoint geometry and flipped weight is C.T."""
    from tconv_sparse.backends.adjoint import adjoint_geometry, adjoint_weight
    from tconv_sparse.core.geometry import Geometry

    weight = rng.standard_normal(weight_shape)
    g = Geometry.forward(weight_shape, input_shape, **kwargs)
    a = adjoint_geometry(g)
    flipped = adjoint_weight(weight, g.groups)
    C = ts.conv_matrix(weight, input_shape, **kwargs).toarray()
    adjoint = ts.conv_matrix(flipped, a.input_shape, padding=a.padding, dilation=a.dilation,
                             groups=a.groups).toarray()
    np.testing.assert_array_equal(adjoint, C.T)


def test_adjoint_geometry_only_where_it_exists():
    from tconv_sparse.backends.adjoint import adjoint_geometry
    from tconv_sparse.core.geometry import Geometry

    assert adjoint_geometry(Geometry.forward((1, 1, 3), (9,), stride=2)) is None
    assert adjoint_geometry(Geometry.forward((1, 1, 3), (9,), padding=1, padding_mode="circular")) is None
    assert adjoint_geometry(Geometry.forward((1, 1, 3), (9,), padding=4)) is None


def test_runner_equals_apply(rng):
    op = ts.ConvOperator(rng.standard_normal((2, 3, 3, 3)), (10, 10), stride=2, padding=1)
    y = rng.standard_normal((1, 2, 5, 5))
    for method_data, transposed in ((rng.standard_normal((1, 3, 10, 10)), False), (y, True)):
        run = op.plan.runner(np.float64, 1, transposed)
        np.testing.assert_array_equal(run(method_data), op.plan.apply(method_data, transposed))
