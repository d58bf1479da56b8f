"""Spin-waits for the helper threads of :func:`tconv_sparse.core.config.run_chunks`.

A helper that sleeps between calls costs a wake-up at the start of the next
call (50-100 µs on a virtual machine that halts idle cores), and so does a
caller that sleeps while its helpers finish. These kernels let both wait by
watching a word of shared memory instead, with the GIL released: an atomic
acquire load per turn and, on x86, a ``pause`` instruction (which keeps the
spinning core from starving its hyper-thread sibling). Each wait is bounded by
a number of turns; :class:`~tconv_sparse.core.config` falls back to a blocking
wait after it.

Imported on the first call that shares work between threads (it imports
Numba).
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from tconv_sparse.core.config import jit

__all__ = ["await_newer", "await_total", "compile_all"]

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _address(context, builder, array_type, array, index):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index])


@intrinsic
def _load_acquire(typingctx, words, index):
    """``words[index]``, read with acquire ordering (never hoisted out of a loop)."""

    def codegen(context, builder, signature, args):
        pointer = _address(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(pointer, "acquire", 8)

    return types.int64(words, types.intp), codegen


@intrinsic
def _store_release(typingctx, words, index, value):
    """``words[index] = value``, written with release ordering."""

    def codegen(context, builder, signature, args):
        pointer = _address(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], pointer, "release", 8)
        return context.get_dummy_value()

    return types.void(words, types.intp, types.int64), codegen


@intrinsic
def _pause(typingctx):
    """The x86 ``pause`` spin-loop hint (nothing elsewhere)."""

    def codegen(context, builder, signature, args):
        if _X86:
            function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                      "llvm.x86.sse2.pause")
            builder.call(function, [])
        return context.get_dummy_value()

    return types.void(), codegen


@jit
def await_newer(words, index, seen, turns, stop, publish, value, grace):
    """Write ``words[publish] = value`` (release; skipped when ``publish < 0``), then spin until
    ``words[index] > seen`` or ``words[stop] != 0``, at most ``turns`` turns, and then for
    ``grace`` turns more (the writer of ``words[index]`` still holds the GIL for a moment);
    return ``words[index]``.

    ``words[index]`` only grows (call numbers), and a helper may have run a call whose number is
    not there yet (it can read the next call's work before the caller raises the word), so
    "newer than the last call run", not "changed", is what a new call means."""
    if publish >= 0:
        _store_release(words, publish, value)
    for _ in range(turns):
        current = _load_acquire(words, index)
        if current > seen or _load_acquire(words, stop) != 0:
            break
        _pause()
    else:
        return _load_acquire(words, index)
    if current > seen:
        for _ in range(grace):
            _pause()
    return current


@jit
def await_total(words, first, step, count, call, total, turns):
    """Spin until the words ``words[first + i * step]``, ``i < count``, that hold ``call << 20 |
    chunks`` (a helper done with call ``call``) add up to ``total`` chunks, at most ``turns``
    turns; return whether they did."""
    for _ in range(turns):
        reached = 0
        for i in range(count):
            word = _load_acquire(words, first + i * step)
            if word >> 20 == call:
                reached += word & 0xFFFFF
        if reached >= total:
            return True
        _pause()
    return False


def compile_all() -> None:
    """Compile (or load from the cache) both waits, as ``tconv-sparse warmup`` does."""
    words = np.zeros(16, dtype=np.int64)
    await_newer(words, 0, 0, 0, 8, -1, 0, 0)
    await_total(words, 0, 8, 2, 1, 1, 0)
