"""Library-wide settings: the one place for Numba JIT flags and memory limits.

Every Numba kernel in the package is decorated with :func:`jit` or
:func:`jit_parallel`, so compile flags (``cache=True`` so users pay compile time
once, ``fastmath`` off so results are reproducible, ``nogil`` so threads can
overlap) live here and nowhere else.

The memory limit caps every allocation whose size the library can predict
(sparse matrices, dense outputs, index maps, and every method's work buffers:
im2col columns, phase-split planes, zero-inserted inputs). It defaults to half
of the physical memory and can be changed with the environment variable
``TCONV_SPARSE_MAX_BYTES`` (a number of bytes, e.g. ``8e9``; an invalid value
makes the import fail with a ``ValueError``) or :func:`set_max_bytes`, or per
call with the ``max_bytes=`` keyword of :func:`tconv_sparse.conv_matrix`.

Threads. Numba's ``tbb`` and ``omp`` threading layers (Numba picks the first
installed, in that order) let several Python threads launch parallel kernels at
once. The ``workqueue`` layer, Numba's fallback when neither is installed (or
chosen with ``NUMBA_THREADING_LAYER=workqueue``), aborts the process when two
threads do; with it, the package's parallel kernels run one at a time behind a
lock (a ``RuntimeWarning`` says so once). ``pip install tbb`` (the ``threads``
extra) makes them concurrent again.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import types
import warnings

import numba
from numba.np.ufunc import parallel as _parallel

from tconv_sparse.core.validation import BYTES_RULE, parse_max_bytes

__all__ = ["WORK_CHUNK_BYTES", "get_max_bytes", "jit", "jit_parallel", "serial_twin", "num_threads", "numba_threads",
           "set_max_bytes", "serialised_kernels"]

_JIT_FLAGS = {"nopython": True, "cache": True, "nogil": True, "fastmath": False}


def jit(function):
    """Compile ``function`` with the package's serial Numba flags."""
    return numba.jit(**_JIT_FLAGS)(function)


#: held around every parallel kernel launch while the threading layer may be ``workqueue``
_LAUNCH_LOCK = threading.Lock()
#: ``None`` until the first parallel kernel has run, then whether launches are serialised
_serialise = None


def serialised_kernels() -> bool | None:
    """Whether parallel kernels run one at a time (Numba's ``workqueue`` layer), ``None``
    before the first parallel kernel has chosen the threading layer."""
    return _serialise


def _after_first_launch() -> None:
    global _serialise
    _serialise = numba.threading_layer() == "workqueue"
    if _serialise:
        warnings.warn(
            "Numba's threading layer is 'workqueue', which aborts the process when two threads "
            "launch parallel kernels at once; tconv_sparse serialises its parallel kernels, so "
            "calls from several threads run one at a time. Install tbb (pip install tbb) or use "
            "an OpenMP build of Numba (NUMBA_THREADING_LAYER=omp) to run them concurrently.",
            RuntimeWarning, stacklevel=3,
        )


class _ParallelKernel:
    """A ``parallel=True`` dispatcher, launched under :data:`_LAUNCH_LOCK` while the
    threading layer is (or may be) ``workqueue``; attributes are the dispatcher's."""

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        functools.update_wrapper(self, dispatcher.py_func)

    def __call__(self, *args):
        if _serialise is False:
            return self.dispatcher(*args)
        with _LAUNCH_LOCK:
            result = self.dispatcher(*args)
            if _serialise is None:
                _after_first_launch()
        return result

    def __getattr__(self, name):
        return getattr(self.dispatcher, name)


def jit_parallel(function):
    """Compile ``function`` with the package's flags and ``parallel=True``.

    The result is called from Python (a parallel kernel is an entry point, never
    called from another kernel); launches are serialised on the ``workqueue``
    threading layer (see the module notes).
    """
    return _ParallelKernel(numba.jit(parallel=True, **_JIT_FLAGS)(function))


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


def _environment_max_bytes(text: str) -> int:
    """Parse ``TCONV_SPARSE_MAX_BYTES`` (a number of bytes >= 1, e.g. ``8e9``)."""
    message = f"TCONV_SPARSE_MAX_BYTES must be {BYTES_RULE}, got {text!r}"
    try:
        value = int(text) if text.strip().isdigit() else float(text)
    except ValueError:
        raise ValueError(message) from None
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(message)
    return int(value)


def _default_max_bytes() -> int:
    from_env = os.environ.get("TCONV_SPARSE_MAX_BYTES")
    if from_env:
        return _environment_max_bytes(from_env)
    return _physical_memory_bytes() // 2


_max_bytes = _default_max_bytes()


#: the size of one chunk of a chunked work buffer (im2col columns, zero insertion, spectra):
#: large enough that BLAS and NumPy run at full speed, small enough to stay in the last-level
#: cache's neighbourhood; smaller when the memory limit leaves less
WORK_CHUNK_BYTES = 16 * 2**20


def get_max_bytes() -> int:
    """Return the current memory limit in bytes for predictable allocations."""
    return _max_bytes


def set_max_bytes(limit) -> int:
    """Set the memory limit in bytes (an int, or a finite float such as ``8e9``); return the
    previous limit.

    The limit caps every allocation the library can predict: outputs, sparse
    matrices, index maps and the methods' work buffers (methods chunk their
    work to stay under it, or refuse with the estimate).

    Examples
    --------
    >>> import tconv_sparse as ts
    >>> old = ts.set_max_bytes(2**30)
    >>> ts.get_max_bytes()
    1073741824
    >>> _ = ts.set_max_bytes(old)
    """
    global _max_bytes
    previous, _max_bytes = _max_bytes, parse_max_bytes(limit)
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
