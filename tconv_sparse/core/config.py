"""Library-wide settings: the one place for Numba JIT flags and memory limits.

Every Numba kernel in the package is decorated with :func:`jit` or
:func:`jit_parallel`, so compile flags (``cache=True`` so users pay compile time
once, ``fastmath`` off so results are reproducible, ``nogil`` so threads can
overlap) live here and nowhere else.

The memory limit caps every allocation whose size the library can predict
(sparse matrices, dense outputs, im2col buffers). It defaults to half of the
physical memory and can be changed with the environment variable
``TCONV_SPARSE_MAX_BYTES`` or :func:`set_max_bytes`, or per call with the
``max_bytes=`` keyword of :func:`tconv_sparse.conv_matrix`.
"""

from __future__ import annotations

import contextlib
import os
import types

import numba
from numba.np.ufunc import parallel as _parallel

__all__ = ["get_max_bytes", "jit", "jit_parallel", "serial_twin", "num_threads", "numba_threads",
           "set_max_bytes"]

_JIT_FLAGS = {"nopython": True, "cache": True, "nogil": True, "fastmath": False}


def jit(function):
    """Compile ``function`` with the package's serial Numba flags."""
    return numba.jit(**_JIT_FLAGS)(function)


def jit_parallel(function):
    """Compile ``function`` with the package's flags and ``parallel=True``."""
    return numba.jit(parallel=True, **_JIT_FLAGS)(function)


def serial_twin(kernel):
    """The one-thread compilation of a :func:`jit_parallel` kernel's source.

    ``prange`` runs as ``range`` without ``parallel=True``; for tiny problems
    this skips waking the thread pool. The twin has its own qualified name, so
    its on-disk cache entry never mixes with the parallel one.
    """
    source = kernel.py_func
    twin = types.FunctionType(source.__code__, source.__globals__, f"{source.__name__}_serial",
                              source.__defaults__, source.__closure__)
    twin.__qualname__ = f"{source.__qualname__}_serial"
    twin.__doc__ = source.__doc__
    return jit(twin)


def _physical_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def _default_max_bytes() -> int:
    from_env = os.environ.get("TCONV_SPARSE_MAX_BYTES")
    if from_env:
        return int(float(from_env))
    return _physical_memory_bytes() // 2


_max_bytes = _default_max_bytes()


def get_max_bytes() -> int:
    """Return the current memory limit in bytes for predictable allocations."""
    return _max_bytes


def set_max_bytes(limit: int) -> int:
    """Set the memory limit in bytes; return the previous limit.

    Examples
    --------
    >>> import tconv_sparse as ts
    >>> old = ts.set_max_bytes(2**30)
    >>> ts.get_max_bytes()
    1073741824
    >>> _ = ts.set_max_bytes(old)
    """
    global _max_bytes
    if isinstance(limit, bool) or not isinstance(limit, (int,)) or limit <= 0:
        raise ValueError(f"max_bytes must be a positive int, got {limit!r}")
    previous, _max_bytes = _max_bytes, int(limit)
    return previous


def num_threads() -> int:
    """Number of threads the Numba kernels use (``numba.get_num_threads()``).

    After the first call, Numba's own C getter is called directly, skipping
    the thread-pool launch check and its lock that ``numba.get_num_threads``
    pays on every call (a microsecond, on every tiny product).
    """
    global _num_threads
    if _num_threads is None:
        count = numba.get_num_threads()  # launches the pool, which sets the getter
        getter = getattr(_parallel, "_get_num_threads", None)
        _num_threads = getter if callable(getter) else numba.get_num_threads
        return count
    return _num_threads()


_num_threads = None


@contextlib.contextmanager
def numba_threads(count: int):
    """Run the Numba kernels of the ``with`` block on ``count`` threads (this thread only).

    The GEMM paths leave the cores to BLAS: OpenBLAS and the OpenMP pool of
    the Numba kernels both spin-wait between calls, and alternating between
    them on the same cores costs more than the Numba passes gain in parallel.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(min(count, previous))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
