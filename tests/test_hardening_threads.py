"""Issue 14, items 9 and 10: threads never change a result, and calls from several Python
threads are safe on every Numba threading layer, which the package never starts.

No kernel is compiled with ``parallel=True`` (the chunks of a call run on a pool
of Python threads, :func:`tconv_sparse.core.config.run_chunks`), so even
``workqueue``, which aborts the process when two threads launch parallel
kernels at once, is never involved, and nothing is serialised or warned
about. Each run of the eight-thread test is a child process, so a crash fails
the test instead of killing pytest.

Every fixed method gives bit-for-bit the same result on one and on two
threads (item 9). ``method="auto"`` is documented as the exception: its choice
may depend on the thread count; the method it picks is itself thread-count
independent.
"""

from __future__ import annotations

import threading
import time

import numba
import numpy as np
import pytest

import tconv_sparse as ts
from conftest import random_array
from limited import run_json
from tconv_sparse.functional import FORWARD_METHODS, TRANSPOSE_METHODS

_CHILD = """
import json, threading, warnings
import numpy as np
import numba
import tconv_sparse as ts
from tconv_sparse.core import config
config.PARALLEL_MIN_ELEMENTS = config.PARALLEL_MIN_SECONDS = 0  # the pool runs the chunks even on this small data
warnings.simplefilter("always")
caught = []
warnings.showwarning = lambda message, *args, **kwargs: caught.append(str(message))
rng = np.random.default_rng(0)
weight = rng.standard_normal((4, 2, 3, 3))
x = rng.standard_normal((2, 2, 24, 20))
y = ts.conv(x, weight, stride=2, padding=1, method="sparse")
expected = {"conv": ts.conv(x, weight, stride=2, padding=1, method="sparse"),
            "conv_transpose": ts.conv_transpose(y, weight, stride=2, padding=1, output_padding=1,
                                                method="sparse")}
calls = [("conv", m) for m in ("sparse", "direct", "im2col", "auto")] + [
    ("conv_transpose", m) for m in ("sparse", "scatter", "gather", "zero_insert", "im2col", "auto")]
errors, barrier = [], threading.Barrier(8)

def work(index):
    barrier.wait()
    for repeat in range(3):
        for direction, method in calls[index % 3:] + calls[:index % 3]:
            if direction == "conv":
                result = ts.conv(x, weight, stride=2, padding=1, method=method)
            else:
                result = ts.conv_transpose(y, weight, stride=2, padding=1, output_padding=1,
                                           method=method)
            if not np.allclose(result, expected[direction], atol=1e-10):
                errors.append((direction, method))
    operator = ts.ConvOperator(weight, (24, 20), stride=2, padding=1, method="sparse")
    operator.matvec(x[0].ravel()); operator.rmatvec(y[0].ravel())

threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
from numba.np.ufunc import parallel
print(json.dumps(dict(errors=errors, launched=parallel._is_initialized, threads=config.num_threads(),
                      numba_threads=numba.config.NUMBA_NUM_THREADS, warnings=caught)))
"""


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_eight_threads_call_every_method_concurrently(layer):
    env = {} if layer == "default" else {"NUMBA_THREADING_LAYER": layer}
    report = run_json(_CHILD, env=env, timeout=1800)
    assert report["errors"] == []
    # no Numba threading layer was started at all (its OpenMP pool slows PyTorch's float64
    # convolutions in the same process 3-30x), and the thread count is still NUMBA_NUM_THREADS
    assert report["launched"] is False and report["threads"] == report["numba_threads"]
    assert [w for w in report["warnings"] if "workqueue" in w] == []  # nothing to serialise


#: (weight shape, data shape of the transposed convolution): one output plane (scatter's
#: private buffers), and several channels and samples (one task per plane)
_THREAD_CASES = [((1, 1, 3, 3), (1, 1, 23, 19)), ((4, 3, 4, 4), (2, 4, 13, 11))]


def _on_threads(count, function):
    previous = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        return function()
    finally:
        numba.set_num_threads(previous)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("case", _THREAD_CASES)
def test_fixed_methods_are_bitwise_independent_of_the_thread_count(case, dtype):
    rng = np.random.default_rng(9)
    weight_shape, y_shape = case
    weight, y = random_array(rng, weight_shape, dtype), random_array(rng, y_shape, dtype)
    keywords = dict(stride=2, padding=1)
    x = ts.conv_transpose(y, weight, method="sparse", **keywords)
    calls = [(ts.conv_transpose, y, m) for m in TRANSPOSE_METHODS if m != "auto"] + [
        (ts.conv, x, m) for m in FORWARD_METHODS if m != "auto"]
    for function, data, method in calls:
        results = [_on_threads(count, lambda: function(data, weight, method=method, **keywords))
                   for count in (1, 2)]
        assert results[0].tobytes() == results[1].tobytes(), (function.__name__, method)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_auto_is_the_fixed_method_it_chose_on_each_thread_count():
    """As documented: ``auto`` may choose differently per thread count, and gives exactly the
    result of the method it chose."""
    rng = np.random.default_rng(10)
    weight, y = rng.standard_normal((4, 3, 4, 4)), rng.standard_normal((2, 4, 13, 11))
    for count in (1, 2):
        def check():
            operator = ts.ConvOperator(weight, (26, 22), stride=2, padding=1)
            chosen = operator.method_transpose
            expected = ts.conv_transpose(y, weight, stride=2, padding=1, output_size=(26, 22), method=chosen)
            assert operator.conv_transpose(y).tobytes() == expected.tobytes(), (count, chosen)
        _on_threads(count, check)


def test_small_calls_stay_on_the_calling_thread(monkeypatch):
    """With an output (the last argument) below ``PARALLEL_MIN_ELEMENTS`` elements a call is one
    kernel call on the calling thread (the pool's hand-off costs more than a second core saves);
    from it on, with two threads, the chunks are shared with the pool."""
    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_ELEMENTS", 1 << 14)
    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 0)  # no timing: the size alone decides
    calls = []

    def kernel(data, out, chunk, chunks):
        calls.append((threading.get_ident(), chunk, chunks))

    def run(size):
        calls.clear()
        _on_threads(2, lambda: config.run_chunks(kernel, 4, np.zeros(1), np.zeros(size)))
        return calls

    assert run((1 << 14) - 1) == [(threading.get_ident(), 0, 1)]
    if numba.config.NUMBA_NUM_THREADS >= 2:
        large = run(1 << 14)
        assert sorted(chunk for _, chunk, _ in large) == [0, 1, 2, 3]
        assert {chunks for *_, chunks in large} == {4}


def test_calls_timed_below_the_threshold_stay_on_the_calling_thread(monkeypatch):
    """Each kind of call (kernel and argument shapes) runs its first ``TIMED_CALLS`` calls on the
    calling thread, timed; a kind faster than ``PARALLEL_MIN_SECONDS`` stays there for good, and
    the choice of another kind, or of other shapes, is its own."""
    import time

    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 1e-3)
    monkeypatch.setattr(config, "_TIMINGS", {})
    calls = []

    def quick(data, out, chunk, chunks):
        calls.append((threading.get_ident(), chunk, chunks))

    def slow(data, out, chunk, chunks):
        time.sleep(2e-3)
        calls.append((threading.get_ident(), chunk, chunks))

    def run(kernel, size=1 << 14):
        calls.clear()
        _on_threads(2, lambda: config.run_chunks(kernel, 4, np.zeros(1), np.zeros(size)))
        return list(calls)

    alone = [(threading.get_ident(), 0, 1)]
    for _ in range(config.TIMED_CALLS + 3):
        assert run(quick) == alone
    for _ in range(config.TIMED_CALLS):
        assert run(slow) == alone
    assert run(slow, (1 << 14) + 1) == alone  # other shapes are timed afresh
    assert run(quick) == alone
    if numba.config.NUMBA_NUM_THREADS >= 2:
        assert sorted(chunk for _, chunk, _ in run(slow)) == [0, 1, 2, 3]  # now timed shared
    quick_timing = config._TIMINGS[(quick, (1, "d"), (1 << 14, "d"))]
    assert quick_timing[0] == config.TIMED_CALLS and quick_timing[1] < 1e-3 and quick_timing[2] == 0


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs a helper thread")
def test_a_kind_runs_the_way_it_was_timed_faster(monkeypatch):
    """After ``TIMED_CALLS`` calls alone and as many shared, all timed, a kind runs the faster
    way; it is timed both ways again after ``RETIMED_AFTER_CALLS`` calls, or as soon as
    ``TIMED_CALLS`` calls in a row take ``RETIMED_ABOVE`` times the other way's (what a second
    thread gains changes with the host's placement of a virtual machine's cores)."""
    import time

    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 1e-6)
    monkeypatch.setattr(config, "_TIMINGS", {})
    monkeypatch.setattr(config, "RETIMED_AFTER_CALLS", 4 * config.TIMED_CALLS)
    calls, sleep = [], {}

    def kernel(out, chunk, chunks):  # sleeps sleep[chunks] in all, over its chunks
        time.sleep(sleep[chunks] / chunks)
        calls.append(chunks)

    def ways(count):
        ran = []
        for _ in range(count):
            calls.clear()
            _on_threads(2, lambda: config.run_chunks(kernel, 4, np.zeros(1 << 14)))
            ran.append("shared" if calls == [4] * 4 else "alone" if calls == [1] else calls)
        return ran

    timed, n = ["alone"] * config.TIMED_CALLS + ["shared"] * config.TIMED_CALLS, config.TIMED_CALLS
    sleep.update({1: 2e-3, 4: 16e-3})  # sharing makes the call slower (8 ms): it stays alone
    assert ways(2 * n + 2) == timed + ["alone"] * 2
    sleep.update({1: 16e-3, 4: 2e-3})  # alone slower than shared was: timed again after n calls
    assert ways(n + 2 * n + 2) == ["alone"] * n + timed + ["shared"] * 2
    sleep.update({1: 0.2e-3})  # alone faster, shared no slower: timed again after the period
    rest = config.RETIMED_AFTER_CALLS - (2 * n + 2)
    assert ways(rest) == ["shared"] * rest
    assert ways(2 * n + 2) == timed + ["alone"] * 2
    assert config._TIMINGS[(kernel, (1 << 14, "d"))][4] == 2 * n + 2


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs a helper thread")
def test_an_operation_runs_all_its_kernels_the_way_it_was_timed_faster(monkeypatch):
    """``run_measured`` times whole operations alone and shared, as ``run_chunks`` times kernel
    calls, and runs every kernel call of an operation the faster way (the kernels of one
    operation pass their data to each other through the caches); an operation inside another,
    or a small one, just runs."""
    import time

    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 1e-6)
    monkeypatch.setattr(config, "_TIMINGS", {})
    calls, sleep, out = [], {}, np.zeros(1 << 14)

    def kernel(out, chunk, chunks):  # sleeps sleep[chunks] in all, over its chunks
        time.sleep(sleep[chunks] / chunks)
        calls.append(chunks)

    def operation():
        config.run_chunks(kernel, 4, out)
        assert config.run_measured(("inner",), out.size, config.run_chunks, kernel, 4, out) is None
        return "done"

    def ways(count, size=out.size):
        ran = []
        for _ in range(count):
            calls.clear()
            assert _on_threads(2, lambda: config.run_measured(("outer",), size, operation)) == "done"
            ran.append("shared" if calls == [4] * 8 else "alone" if calls == [1, 1] else calls)
        return ran

    timed, n = ["alone"] * config.TIMED_CALLS + ["shared"] * config.TIMED_CALLS, config.TIMED_CALLS
    sleep.update({1: 2e-3, 4: 16e-3})  # sharing makes the operation slower: it stays alone
    assert ways(2 * n + 2) == timed + ["alone"] * 2
    sleep.update({1: 16e-3, 4: 2e-3})  # alone slower than shared was: timed again after n calls
    assert ways(n + 2 * n + 2) == ["alone"] * n + timed + ["shared"] * 2
    assert ("inner",) not in config._TIMINGS
    before = dict(config._TIMINGS)
    assert ways(1, size=(1 << 14) - 1) == ["shared"]  # not an operation: the kernel's own choice
    assert config._TIMINGS[(("outer",),)] == before[(("outer",),)]


def test_the_timings_are_bounded(monkeypatch):
    """The table of timed kinds is emptied when it is full, so a stream of new shapes cannot
    grow it without bound."""
    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 1.0)
    monkeypatch.setattr(config, "_TIMINGS", {})
    monkeypatch.setattr(config, "_MOST_KINDS", 3)

    def kernel(out, chunk, chunks):
        pass

    for size in range(1 << 14, (1 << 14) + 7):
        _on_threads(2, lambda: config.run_chunks(kernel, 4, np.zeros(size)))
        assert 1 <= len(config._TIMINGS) <= 3


_TWO = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs a helper thread")


def _large_call(kernel, chunks=4):
    """``run_chunks`` on two threads with an output large enough to be shared."""
    from tconv_sparse.core import config

    _on_threads(2, lambda: config.run_chunks(kernel, chunks, np.zeros(1), np.zeros(1 << 14)))


@_TWO
def test_a_call_does_not_wait_for_helpers_that_have_not_started(monkeypatch):
    """The calling thread claims chunks too: when it has done them all before a helper started,
    the call returns at once instead of waiting for it. Here the only helper is held before it
    ever looks for work, so a wait for it would never end."""
    from tconv_sparse.core import config

    release, started = threading.Event(), threading.Event()
    helper = config._Team._helper

    def held(team, index):
        started.set()
        release.wait()
        helper(team, index)

    monkeypatch.setattr(config._Team, "_helper", held)
    monkeypatch.setattr(config, "_TEAM", config._Team(1))
    assert started.wait(timeout=10)
    chunks_done, finished = [], threading.Event()

    def call():
        _large_call(lambda data, out, chunk, chunks: chunks_done.append(chunk))
        finished.set()

    caller = threading.Thread(target=call)
    caller.start()
    try:
        assert finished.wait(timeout=10), "run_chunks waited for a helper that never started"
        assert sorted(chunks_done) == [0, 1, 2, 3]
    finally:
        release.set()
        caller.join()


@_TWO
def test_a_call_from_another_thread_runs_alone_while_the_helpers_are_busy(monkeypatch):
    """One call at a time has the helpers; a call from another thread meanwhile runs on its own
    thread (whole, as chunk 0 of 1) instead of waiting for them."""
    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 0)
    on_helper, release = threading.Event(), threading.Event()

    def blocking(data, out, chunk, chunks):
        if threading.current_thread().name.startswith("tconv_sparse"):
            on_helper.set()
            release.wait()
        else:
            on_helper.wait(timeout=1)  # leave a chunk for the helper

    first = threading.Thread(target=_large_call, args=(blocking,))
    first.start()
    try:
        assert on_helper.wait(timeout=10), "no helper took a chunk"
        calls = []
        _large_call(lambda data, out, chunk, chunks: calls.append((threading.get_ident(), chunk, chunks)))
        assert calls == [(threading.get_ident(), 0, 1)]
    finally:
        release.set()
        first.join()


@_TWO
def test_an_error_in_any_chunk_is_raised_after_every_chunk_ran(monkeypatch):
    """An exception in a chunk, on a helper or on the calling thread, is raised by ``run_chunks``
    once every chunk has run (no helper is still writing when it returns), and the next call is
    whole."""
    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 0)
    for failing in range(4):
        ran = []

        def kernel(data, out, chunk, chunks):
            time.sleep(1e-3)
            ran.append(chunk)
            if chunk == failing:
                raise ZeroDivisionError(f"chunk {chunk}")

        with pytest.raises(ZeroDivisionError, match=f"chunk {failing}"):
            _large_call(kernel)
        assert sorted(ran) == [0, 1, 2, 3]
        ran.clear()
        _large_call(lambda data, out, chunk, chunks: ran.append(chunk))
        assert sorted(ran) == [0, 1, 2, 3]


@_TWO
def test_parked_helpers_sleep_and_wake_for_the_next_call(monkeypatch):
    """``park_helpers`` (called before BLAS products) sends spinning helpers to sleep at once;
    the next call wakes them and they share its chunks again."""
    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 0)
    monkeypatch.setattr(config, "HELPER_SPIN_SECONDS", 10.0)  # only parking ends the spinning
    _large_call(lambda *args: None)
    team = config._team()
    config.park_helpers()
    deadline = time.monotonic() + 10
    while team.sleeping < team.helpers and time.monotonic() < deadline:
        time.sleep(1e-3)
    assert team.sleeping == team.helpers
    threads = set()

    def kernel(data, out, chunk, chunks):
        time.sleep(5e-3)
        threads.add(threading.get_ident())

    for _ in range(20):
        _large_call(kernel)
        if len(threads) == 2:
            break
    assert len(threads) == 2, "no woken helper took a chunk"


@_TWO
def test_a_helper_that_missed_a_call_runs_the_next_one_once(monkeypatch):
    """A helper that slept through a call (it fell asleep just after that call looked for
    sleepers) sees the start word changed and may wake while the next call has posted its work
    but not yet raised the start word. It then runs that call's chunks early, and must report
    them once: running the same work again would claim nothing and overwrite its report with
    zero chunks, and the caller would wait for the chunks it did forever."""
    import itertools

    from tconv_sparse.core import config

    team = config._Team(1)
    monkeypatch.setattr(config, "_TEAM", team)
    deadline = time.monotonic() + 10
    while team.sleeping < 1 and time.monotonic() < deadline:  # the helper sleeps after its spin
        time.sleep(1e-3)
    assert team.sleeping == 1
    missed = team.task[0] + 1  # a call the helper sleeps through: started, never notified
    team.task = (missed, 1, lambda: 0)
    team.words[team.GO] = missed
    chunks, ran, done = 4, [], threading.Event()

    def caller():
        claim = itertools.count()

        def work(start=None):  # run_chunks' protocol: the helper calls it without ``start``
            if start is not None:
                with team.cond:  # the helper wakes (here on purpose; in life, at any moment)
                    team.cond.notify_all()
                time.sleep(0.05)  # and takes every chunk before this call raises the start word
            mine, chunk = 0, next(claim)
            if start is not None:
                start()
            while chunk < chunks:
                ran.append(chunk)
                mine, chunk = mine + 1, next(claim)
            return mine

        with team.lock:
            team.run(work, 1, chunks)
        done.set()

    thread = threading.Thread(target=caller, daemon=True)
    thread.start()
    assert done.wait(timeout=10), "the call waited for chunks its helper reported as none"
    assert sorted(ran) == [0, 1, 2, 3]


def test_a_forked_child_runs_calls_without_the_parents_helpers():
    """The helper threads do not survive ``fork``: a child process starts its own."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    from tconv_sparse.core import config

    _large_call(lambda *args: None)  # the parent's helpers exist
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(_child_call, ()) == [0, 1, 2, 3]


def _child_call():
    from tconv_sparse.core import config

    config.PARALLEL_MIN_SECONDS = 0
    chunks = []
    _large_call(lambda data, out, chunk, chunks_: chunks.append(chunk))
    return sorted(chunks)


@_TWO
def test_helpers_are_asleep_when_the_interpreter_exits(monkeypatch):
    """The exit handler parks the helpers and waits for them to sleep, so none runs compiled
    code while the interpreter shuts down; a process exits cleanly right after a shared call."""
    import subprocess
    import sys

    from tconv_sparse.core import config

    monkeypatch.setattr(config, "HELPER_SPIN_SECONDS", 10.0)  # only parking ends the spinning
    _large_call(lambda *args: None)
    team = config._team()
    team.park_at_exit()
    assert team.sleeping == team.helpers
    script = ("import numpy as np\nfrom tconv_sparse.core import config\nconfig.PARALLEL_MIN_SECONDS = 0\n"
              "config.run_chunks(lambda out, chunk, chunks: None, 4, np.zeros(1 << 14))\n")
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 0


def test_thread_caps_do_not_start_numba_threading():
    """``numba_threads`` (this thread) and ``limit_threads`` (every thread) cap the count the
    kernels use without ``numba.set_num_threads``; ``numba.set_num_threads`` is still followed."""
    from tconv_sparse.core import config

    full = config.num_threads()
    with config.numba_threads(1):
        assert config.num_threads() == 1
        seen = []
        other = threading.Thread(target=lambda: seen.append(config.num_threads()))
        other.start()
        other.join()
        assert seen == [full]  # the cap is this thread's
        with config.numba_threads(5):
            assert config.num_threads() == 1  # nested caps only lower the count
    assert config.num_threads() == full
    previous = config.limit_threads(1)
    try:
        seen = []
        other = threading.Thread(target=lambda: seen.append(config.num_threads()))
        other.start()
        other.join()
        assert config.num_threads() == 1 and seen == [1]
    finally:
        config.limit_threads(previous)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="count must be None or an int of at least 1"):
            config.limit_threads(bad)
    if numba.config.NUMBA_NUM_THREADS >= 2:
        assert _on_threads(1, config.num_threads) == 1  # numba.set_num_threads, once launched


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_parked_helpers_sleep(monkeypatch):
    """Helpers spin for the next call after a shared call, and sleep once parked (before a BLAS
    product, so that two pools never spin against each other)."""
    import time

    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 0)
    monkeypatch.setattr(config, "HELPER_SPIN_SECONDS", 10.0)  # a slow machine cannot cool them
    try:
        config.run_chunks(lambda out, chunk, chunks: None, 4, np.zeros(1 << 14))
        time.sleep(0.05)
        assert config._TEAM.sleeping == 0
    finally:
        config.park_helpers()  # also when the assertion fails: no helper spins on for 10 s
    deadline = time.monotonic() + 5
    while config._TEAM.sleeping < config._TEAM.helpers and time.monotonic() < deadline:
        time.sleep(1e-3)
    assert config._TEAM.sleeping == config._TEAM.helpers
