"""Work buffers kept between calls (:mod:`tconv_sparse.core.scratch`): reused blocks never leak
stale data into a result, idle memory is bounded, and misuse is refused."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tconv_sparse as ts
from conftest import assert_close, random_array
from tconv_sparse.core import scratch


@pytest.fixture
def empty_pool(monkeypatch):
    monkeypatch.setattr(scratch, "_IDLE", {})
    monkeypatch.setattr(scratch, "_BY_SIZE", {})
    monkeypatch.setattr(scratch, "_idle_bytes", 0)
    monkeypatch.setattr(scratch, "MIN_BYTES", 0)  # the small arrays of these tests are kept too
    return scratch._IDLE


def _poison(nbytes_list):
    """Give back blocks of these sizes full of NaN bytes, as a bad earlier call could leave them."""
    for nbytes in nbytes_list:
        block = scratch.take((nbytes,), np.uint8)
        block[:] = 0xFF  # every float made of these bytes is a NaN
        scratch.give(block)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize("direction, method", [("conv", "direct"), ("conv", "im2col"),
                                               ("conv_transpose", "gather"), ("conv_transpose", "im2col")])
def test_reused_buffers_full_of_nans_never_reach_a_result(empty_pool, direction, method, dtype):
    """Every method that takes work buffers writes all of each one it reads (margins included):
    with every idle block full of NaN bytes, and on the second call of a shape too (its own
    blocks back), the result equals the sparse definition."""
    rng = np.random.default_rng(3)
    weight = random_array(rng, (4, 3, 3, 3), dtype)
    keywords = dict(stride=2, padding=1)
    shape = (2, 3, 23, 19) if direction == "conv" else (2, 4, 12, 10)
    if direction == "conv_transpose":
        keywords["output_padding"] = 1
    function = getattr(ts, direction)
    for _ in range(3):
        data = random_array(rng, shape, dtype)
        _poison([2**k for k in range(6, 18)] * 2 + [3 * 2**k for k in range(6, 17)])
        assert_close(function(data, weight, method=method, **keywords),
                     function(data, weight, method="sparse", **keywords), dtype)


def test_a_block_is_handed_out_again_only_after_it_was_given_back(empty_pool):
    a = scratch.take((1000,), np.float64)
    b = scratch.take((1000,), np.float64)
    assert not np.shares_memory(a, b)
    address = a.ctypes.data
    scratch.give(a)
    c = scratch.take((50, 20), np.float64)
    assert c.ctypes.data == address and c.shape == (50, 20) and c.flags.c_contiguous
    d = scratch.take((2000,), np.float32)  # 8000 bytes too, no block idle
    assert not np.shares_memory(d, b) and not np.shares_memory(d, c)


def test_blocks_more_than_twice_the_request_are_not_used(empty_pool):
    big = scratch.take((10_000,), np.uint8)
    scratch.give(big)
    small = scratch.take((4_000,), np.uint8)
    assert not np.shares_memory(small, big)
    exact = scratch.take((6_000,), np.uint8)
    assert np.shares_memory(exact, big)


def test_idle_bytes_are_bounded(empty_pool, monkeypatch):
    """At most IDLE_BYTES (and an eighth of the memory limit) stay idle, the oldest dropped."""
    monkeypatch.setattr(scratch, "IDLE_BYTES", 10_000)
    blocks = [scratch.take((3_000,), np.uint8) for _ in range(5)]
    for block in blocks:
        scratch.give(block)
    assert scratch.idle_bytes() == 9_000
    assert list(empty_pool) == [id(block.base) for block in blocks[2:]]
    scratch.give(scratch.take((20_000,), np.uint8))  # larger than the bound alone: not kept
    assert scratch.idle_bytes() == 9_000
    old = ts.set_max_bytes(16_000)
    try:
        scratch.give(scratch.take((2_500,), np.uint8))  # 16000 // 8 = 2000 bytes kept at most
        assert scratch.idle_bytes() <= 2_000
    finally:
        ts.set_max_bytes(old)


def test_small_buffers_are_plain_arrays(empty_pool, monkeypatch):
    monkeypatch.setattr(scratch, "MIN_BYTES", 1000)
    small = scratch.take((10, 12), np.float64)  # 960 bytes
    assert small.base is None
    scratch.give(small)
    scratch.give(np.empty(100))
    assert scratch.idle_bytes() == 0
    scratch.give(scratch.take((1000,), np.uint8))
    assert scratch.idle_bytes() == 1000


def test_misuse_is_refused(empty_pool):
    with pytest.raises(ValueError, match="take"):
        scratch.give(np.empty(10))
    with pytest.raises(ValueError, match="take"):
        scratch.give(np.empty(100)[10:])
    a = scratch.take((10,), np.float64)
    scratch.give(a)
    with pytest.raises(ValueError, match="twice"):
        scratch.give(a)


def test_threads_never_share_a_block(empty_pool):
    """Blocks taken at the same time by several threads never overlap."""
    errors, barrier = [], threading.Barrier(4)

    def work(value):
        barrier.wait()
        for _ in range(300):
            block = scratch.take((257,), np.float64)
            block[:] = value
            if not np.all(block == value):
                errors.append(value)
            scratch.give(block)

    threads = [threading.Thread(target=work, args=(float(v),)) for v in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
