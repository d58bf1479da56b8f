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

__all__ = ["IDLE_BYTES", "give", "take"]

#: the most bytes of idle blocks kept (besides an eighth of the memory limit)
IDLE_BYTES = 64 * 2**20

#: idle blocks (1-D uint8 arrays), oldest first
_IDLE: list[np.ndarray] = []
_LOCK = threading.Lock()


def take(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, like :func:`numpy.empty`,
    on an idle block of at least its size (and at most twice it) when one is kept.

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
    with _LOCK:
        fits = [i for i, block in enumerate(_IDLE) if nbytes <= block.size <= 2 * nbytes]
        block = _IDLE.pop(min(fits, key=lambda i: _IDLE[i].size)) if fits else None
    if block is None:
        block = np.empty(max(nbytes, 1), dtype=np.uint8)
    return block[:nbytes].view(dtype).reshape(shape)


def give(array: np.ndarray) -> None:
    """Keep the block under ``array`` (from :func:`take`) for later calls; nothing may use
    ``array``, or any view of it, afterwards."""
    block = array.base
    if not (isinstance(block, np.ndarray) and block.dtype == np.uint8 and block.ndim == 1
            and block.base is None):
        raise ValueError("give() takes an array returned by take()")
    bound = min(IDLE_BYTES, get_max_bytes() // 8)
    with _LOCK:
        if any(idle is block for idle in _IDLE):
            raise ValueError("give() was given the same buffer twice")
        if block.size <= bound:
            _IDLE.append(block)
        total = sum(idle.size for idle in _IDLE)
        while total > bound:  # also after the memory limit was lowered
            total -= _IDLE.pop(0).size


def idle_bytes() -> int:
    """Bytes held in idle blocks."""
    with _LOCK:
        return sum(block.size for block in _IDLE)
