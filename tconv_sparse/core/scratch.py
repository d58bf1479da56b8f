"""Work buffers kept between calls, so repeated calls do not fault in fresh pages.

A method's work buffers (phase-split planes, padded planes, im2col columns) are
as large as its input or output. Allocated afresh on every call, each one is
new memory to the kernel: glibc's ``malloc`` serves allocations this large with
``mmap`` or trims them off the heap again when they are freed, so every call
pays a page fault per 4 KiB page it writes, about 0.5 ms per MiB on a virtual
machine. :func:`take` instead hands out a block that an earlier call gave back
with :func:`give`, whose pages are already mapped.

Idle blocks are bounded: at most :data:`IDLE_BYTES` and an eighth of the memory
limit (:func:`~tconv_sparse.core.config.get_max_bytes`), the oldest dropped
first. A buffer must not outlive the call that took it; it is given back only
where nothing returned to the caller views it. A buffer that is never given
back (an exception on the way) is simply freed by the garbage collector.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from tconv_sparse.core.config import get_max_bytes

__all__ = ["IDLE_BYTES", "MIN_BYTES", "give", "idle_bytes", "take"]

#: the most bytes of idle blocks kept (besides an eighth of the memory limit)
IDLE_BYTES = 64 * 2**20

#: smaller buffers are plain :func:`numpy.empty` arrays: in a process that has run a few calls
#: ``malloc`` serves them from its heap without faults, in under a microsecond, while taking and
#: giving back a kept block costs about four (a 280 KiB buffer measured 5-10% slower kept)
MIN_BYTES = 2**20

#: idle blocks (1-D uint8 arrays) by ``id`` (unique: they are alive while idle), oldest first
_IDLE: dict[int, np.ndarray] = {}
#: the ids of the idle blocks of each size, for the common case of an exact fit
_BY_SIZE: dict[int, list[int]] = {}
_LOCK = threading.Lock()
_idle_bytes = 0


def _remove(key: int) -> np.ndarray:
    global _idle_bytes
    block = _IDLE.pop(key)
    same = _BY_SIZE[block.size]
    same.remove(key)
    if not same:
        del _BY_SIZE[block.size]
    _idle_bytes -= block.size
    return block


def take(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, like :func:`numpy.empty`,
    on an idle block of at least its size (and at most twice it) when one is kept (buffers of
    :data:`MIN_BYTES` or more; smaller ones are :func:`numpy.empty` arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.core import scratch
    >>> a = scratch.take((512, 512), np.float64)
    >>> address = a.ctypes.data
    >>> scratch.give(a)
    >>> b = scratch.take((512, 512), np.float64)  # the same pages again
    >>> b.ctypes.data == address, b.shape, b.dtype.name
    (True, (512, 512), 'float64')
    >>> scratch.give(b)
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    block = None
    if _IDLE:
        with _LOCK:
            same = _BY_SIZE.get(nbytes)
            if same:
                block = _remove(same[-1])
            else:
                fits = [size for size in _BY_SIZE if nbytes <= size <= 2 * nbytes]
                if fits:
                    block = _remove(_BY_SIZE[min(fits)][-1])
    if block is None:
        block = np.empty(nbytes, dtype=np.uint8)
    return block[:nbytes].view(dtype).reshape(shape)


def give(array: np.ndarray) -> None:
    """Keep the block under ``array`` (from :func:`take`) for later calls; nothing may use
    ``array``, or any view of it, afterwards."""
    global _idle_bytes
    if array.nbytes < MIN_BYTES:
        return
    block = array.base
    if not (isinstance(block, np.ndarray) and block.dtype == np.uint8 and block.ndim == 1
            and block.base is None):
        raise ValueError("give() takes an array returned by take()")
    bound = min(IDLE_BYTES, get_max_bytes() // 8)
    key = id(block)
    with _LOCK:
        if key in _IDLE:
            raise ValueError("give() was given the same buffer twice")
        if block.size <= bound:
            _IDLE[key] = block
            _BY_SIZE.setdefault(block.size, []).append(key)
            _idle_bytes += block.size
        while _idle_bytes > bound:  # also after the memory limit was lowered
            _remove(next(iter(_IDLE)))


def idle_bytes() -> int:
    """Bytes held in idle blocks."""
    return _idle_bytes
