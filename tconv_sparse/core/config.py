"""Library-wide settings: the one place for Numba JIT flags and memory limits.

Every Numba kernel in the package is a serial function decorated with
:func:`jit`, so compile flags (``cache=True`` so users pay compile time once,
``fastmath`` off so results are reproducible, ``nogil`` so threads can
overlap) live here and nowhere else. Nothing is compiled at import: each kernel
compiles for the types of its first call, and only the kernels a call needs;
Numba itself is imported by the first call that needs it.

The memory limit caps every allocation whose size the library can predict
(sparse matrices, dense outputs, index maps, and every method's work buffers:
im2col columns, phase-split planes, zero-inserted inputs). It defaults to half
of the physical memory and can be changed with the environment variable
``TCONV_SPARSE_MAX_BYTES`` (a number of bytes, e.g. ``8e9``; an invalid value
makes the import fail with a ``ValueError``) or :func:`set_max_bytes`, or per
call with the ``max_bytes=`` keyword of :func:`tconv_sparse.conv_matrix`.

Threads. No kernel is compiled with ``parallel=True``: :func:`run_chunks`
runs the chunks of one call on up to :func:`num_threads` Python threads (the
kernels release the GIL), so no Numba threading layer is involved and calls
from several Python threads are safe whatever ``NUMBA_THREADING_LAYER`` says.
The work is split into tiles that do not depend on the thread count, so every
fixed method gives bit-for-bit the same result on any number of threads.
``numba.set_num_threads`` (or ``NUMBA_NUM_THREADS``) sets the thread count; the
package itself never starts Numba's threading layer (see :func:`num_threads`).
Calls too short for a second thread to pay for the hand-off stay on the calling
thread (:data:`PARALLEL_MIN_ELEMENTS`, :data:`PARALLEL_MIN_SECONDS`). Between
calls the helper threads spin for a moment on a word of shared memory, with the
GIL released (:mod:`tconv_sparse.core._spin`), so back-to-back calls do not pay
a thread wake-up, and they are sent to sleep before BLAS products
(:func:`park_helpers`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import math
import os
import threading
import time
import types

import numpy as np

from tconv_sparse.core.validation import BYTES_RULE, parse_max_bytes

__all__ = ["WORK_CHUNK_BYTES", "CHUNKS_PER_THREAD", "CompileNotice", "get_max_bytes", "jit", "num_threads",
           "call_settings", "limit_threads", "numba_threads", "park_helpers", "run_chunks", "chunk_count", "task_range", "set_max_bytes"]


class CompileNotice(UserWarning):
    """Warned once per process, method, direction and dtype when a call is about to compile Numba
    kernels (their first use; cached on disk afterwards). Silence it with
    ``warnings.filterwarnings("ignore", category=CompileNotice)``."""


_JIT_FLAGS = {"nopython": True, "cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


class _Kernel:
    """A function compiled by Numba on its first call, with the package's flags.

    Numba itself is imported then, not when the package is: ``import
    tconv_sparse`` stays cheap, and a process that never runs a kernel never
    pays for Numba. Kernels call each other as usual (Numba types a kernel
    through its dispatcher, :attr:`dispatcher`); every other attribute
    (``signatures``, ``overloads``, ...) is the dispatcher's.
    """

    def __init__(self, function, flags=_JIT_FLAGS):
        self.py_func = function
        self._flags = flags
        self._dispatcher = None
        functools.update_wrapper(self, function)

    @property
    def dispatcher(self):
        """The Numba dispatcher (created, and Numba imported, on first use)."""
        if self._dispatcher is None:
            with _KERNEL_LOCK:
                if self._dispatcher is None:
                    self._dispatcher = _numba().jit(**self._flags)(self.py_func)
        return self._dispatcher

    def __call__(self, *args):
        return self.dispatcher(*args)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dispatcher, name)


_KERNEL_LOCK = threading.RLock()


@functools.cache
def _numba():
    """Import Numba, and teach it that a :class:`_Kernel` is typed as its dispatcher."""
    import numba
    from numba.core import types
    from numba.extending import typeof_impl

    typeof_impl.register(_Kernel)(lambda kernel, context: types.Dispatcher(kernel.dispatcher))
    return numba


#: the flags of a helper inlined into the kernels that call it (Numba's ``inline="always"``)
_INLINE_FLAGS = {**_JIT_FLAGS, "inline": "always"}


def jit(function=None, *, inline: bool = False):
    """Compile ``function`` with the package's serial Numba flags, on its first call.

    With ``inline=True`` (``@jit(inline=True)``), for a helper of other
    kernels: Numba inlines its body into each kernel that calls it before
    typing, so it is not also compiled, wrapped and machine-coded as a function
    of its own (the kernel's LLVM module would carry and re-optimise a copy
    anyway). Calls from Python still compile it normally.
    """
    if function is None:
        return functools.partial(jit, inline=inline)
    return _Kernel(function, _INLINE_FLAGS if inline else _JIT_FLAGS)


class _Team:
    """The helper threads of :func:`run_chunks`: started on first use, they wait between calls by
    spinning for :data:`HELPER_SPIN_SECONDS` (then sleep), so a call that follows soon after
    another does not pay their wake-up; the caller waits for them the same way, for up to
    :data:`CALLER_SPIN_SECONDS`. One call at a time owns the team (:attr:`lock`); a call from
    another thread meanwhile runs on its own thread.

    Shared words (int64, one cache line each): ``GO`` holds the newest call's number, ``PARK``
    tells spinning helpers to sleep at once (:func:`park_helpers`), and helper ``i``'s word
    holds ``call << 20 | chunks it ran of that call`` once it is done with a call. A helper
    runs each call once: it waits for a ``GO`` above the last call it ran, never for a change
    of ``GO`` (a helper that slept through a call may read the next call's work before its
    caller raises ``GO``; run again, that work would claim nothing and the helper's word would
    say it ran no chunk, while the caller waits for the ones it did).
    """

    GO, PARK, LINE = 0, 8, 8
    #: chunks a helper's word can count (20 bits); calls of more chunks run on one thread
    MOST_CHUNKS = (1 << 20) - 1

    def __init__(self, helpers: int):
        from tconv_sparse.core import _spin

        self.spin = _spin
        self.helpers = helpers
        self.words = np.zeros(self.LINE * (2 + helpers), dtype=np.int64)
        self.lock = threading.Lock()
        self.cond = threading.Condition()
        self.task = (0, 0, None)  # (call number, helpers wanted, work)
        self.sleeping = 0
        self.turns_per_second = self._calibrate()
        for index in range(helpers):
            threading.Thread(target=self._helper, args=(index,), name=f"tconv_sparse-{index}",
                             daemon=True).start()

    def _calibrate(self) -> float:
        """Spin turns per second on this machine (the waits are bounded in turns)."""
        turns, best = 1 << 14, math.inf
        for _ in range(3):
            start = time.perf_counter()
            self.spin.await_newer(self.words, self.GO, 0, turns, self.PARK, -1, 0, 0)
            best = min(best, time.perf_counter() - start)
        return turns / max(best, 1e-9)

    def _turns(self, seconds: float) -> int:
        return max(0, int(seconds * self.turns_per_second))

    def _slot(self, index: int) -> int:
        return self.LINE * (2 + index)

    def _helper(self, index: int) -> None:
        words, seen, slot, done = self.words, 0, self._slot(index), -1
        while True:
            # publishing the last call's chunks with the GIL released lets the waiting caller
            # take the GIL back at once
            if self.spin.await_newer(words, self.GO, seen, self._turns(HELPER_SPIN_SECONDS), self.PARK,
                                     slot if done >= 0 else -1, done, self._turns(GRACE_SECONDS)) <= seen:
                with self.cond:
                    self.sleeping += 1
                    while words[self.GO] <= seen:
                        self.cond.wait()
                    self.sleeping -= 1
            call, wanted, work = self.task
            seen, done = call, -1
            if index < wanted:
                done = call << 20 | work()

    def run(self, work, helpers: int, chunks: int) -> None:
        """Run ``work(start)`` (which calls ``start()`` before its first chunk and returns the number
        of chunks it ran) on the calling thread and ``helpers`` helpers until all ``chunks`` ran.
        The caller must hold :attr:`lock`."""
        call = self.task[0] + 1
        self.task = (call, helpers, work)
        words = self.words
        words[self.PARK] = 0
        sleeping = self.sleeping  # a helper that falls asleep after this sits this call out

        def start():  # as late as possible: the helpers take the GIL when this thread lets it go
            words[self.GO] = call
            if sleeping:
                with self.cond:
                    self.cond.notify_all()

        left, turns = chunks - work(start), self._turns(CALLER_SPIN_SECONDS)
        while left and not self.spin.await_total(words, self._slot(0), self.LINE, self.helpers, call, left,
                                                 turns):
            time.sleep(CALLER_POLL_SECONDS)  # helpers publish without a lock, so poll (the call is long by now)
            turns = 1

    def park(self) -> None:
        self.words[self.PARK] = 1

    def park_at_exit(self) -> None:
        """Park the helpers and give them a moment to sleep, so none is still running compiled
        code while the interpreter shuts down."""
        self.park()
        deadline = time.monotonic() + 0.05
        while self.sleeping < self.helpers and time.monotonic() < deadline:
            time.sleep(1e-4)


#: the helper threads of :func:`run_chunks`, created on first use
_TEAM = None
_TEAM_LOCK = threading.Lock()

#: how long a helper of :func:`run_chunks` spins for the next call before it sleeps (waking a
#: sleeping thread costs 50-100 µs on a virtual machine that halts idle cores)
HELPER_SPIN_SECONDS = 300e-6

#: how long a call of :func:`run_chunks` spins for its helpers to finish before it sleeps
CALLER_SPIN_SECONDS = 2e-3

#: how often a call that slept after :data:`CALLER_SPIN_SECONDS` looks again
CALLER_POLL_SECONDS = 1e-3

#: how long a helper that saw a call start waits before it takes the GIL (the caller releases it
#: a few microseconds later, as its own first chunk starts; taking a held GIL is a sleep)
GRACE_SECONDS = 4e-6


def _team() -> _Team:
    global _TEAM
    with _TEAM_LOCK:
        if _TEAM is None:
            _TEAM = _Team(_numba().config.NUMBA_NUM_THREADS - 1)
            atexit.register(_TEAM.park_at_exit)
        return _TEAM


def _forget_team() -> None:
    """In a forked child: the helpers did not survive the fork (and their locks may be held)."""
    global _TEAM, _TEAM_LOCK
    _TEAM, _TEAM_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_team)


def park_helpers() -> None:
    """Tell spinning helpers of :func:`run_chunks` to sleep now, before a call that needs every
    core for something else (a BLAS product: two pools spinning against each other slow both)."""
    if _TEAM is not None:
        _TEAM.park()


#: :func:`run_chunks` runs on the calling thread alone when its output (the kernel's last argument)
#: has fewer elements than this: handing chunks to the pool and waiting for them costs about
#: 50-100 µs, more than a second core saves on such calls (a 64x64 image with a 7x7 kernel takes
#: about 50 µs on one)
PARALLEL_MIN_ELEMENTS = 1 << 14

#: a call of a larger output stays on the calling thread when it is measured to take less than
#: this on one thread: sharing a call costs 20-40 µs of GIL hand-offs and Python calls when the
#: helpers spin, a wake-up of 50-100 µs when they slept (a virtual machine halts idle cores), so
#: shorter calls cannot gain (on the 2-core EPYC VM a 65536-sample signal, 30-90 µs per kernel
#: call, is 1.5-2x faster on one thread). Longer kinds are then timed shared as well, and run the
#: faster way (:data:`TIMED_CALLS`). 0 shares every call of at least
#: :data:`PARALLEL_MIN_ELEMENTS` outputs, untimed.
PARALLEL_MIN_SECONDS = 75e-6

#: calls of each kind (kernel and argument shapes) that :func:`run_chunks` times on the calling
#: thread, and then shared, before it fixes the choice: the kind runs the way whose fastest timed
#: call was faster (the first call of a kind also compiles or faults in fresh pages). Measured,
#: not assumed, because what a second thread gains changes with the machine and with the host's
#: placement of a virtual machine's cores: on the 2-core EPYC VM the volume's phase split took
#: 78 µs shared and 116 µs alone for minutes, then 270-300 µs shared and 120 µs alone for
#: minutes (GEMMs on two threads meanwhile 1.96x, then 1.72x, the speed of one)
TIMED_CALLS = 3

#: calls of a kind after which it is timed again both ways (:data:`TIMED_CALLS` each, at most
#: 0.6% of its time when one way is twice as fast), so that a choice follows such a change
RETIMED_AFTER_CALLS = 1000

#: a kind is also timed again both ways at once when :data:`TIMED_CALLS` calls in a row, run
#: the chosen way (every call of a kind long enough to share is timed), took more than this
#: times the fastest timed call of the other way: the change above made the chosen way the slower
RETIMED_ABOVE = 1.25

#: kinds of call timed so far: (kernel, shape and dtype of each array argument) -> [calls timed
#: alone, fastest of them, calls timed shared, fastest of them, calls since the timing began,
#: calls in a row above :data:`RETIMED_ABOVE` times the other way]
_TIMINGS: dict = {}

#: :data:`_TIMINGS` is emptied when it holds this many kinds (a bound on its memory)
_MOST_KINDS = 4096


def _small(args) -> bool:
    """Whether the output array, the last of ``args`` by the kernels' convention, is below
    :data:`PARALLEL_MIN_ELEMENTS` elements (a cheap measure of a call's work)."""
    out = args[-1] if args else None
    return isinstance(out, np.ndarray) and out.size < PARALLEL_MIN_ELEMENTS


def _timing(kernel, args) -> list:
    """The :data:`_TIMINGS` record of the kind of ``kernel(*args)``, counting this call (a fresh
    record after :data:`RETIMED_AFTER_CALLS` calls, or :data:`TIMED_CALLS` slow ones in a row)."""
    kind = (kernel, *(arg.shape + (arg.dtype.char,) for arg in args if type(arg) is np.ndarray))
    timing = _TIMINGS.get(kind)
    if timing is None or timing[4] >= RETIMED_AFTER_CALLS or timing[5] >= TIMED_CALLS:
        if len(_TIMINGS) >= _MOST_KINDS:
            _TIMINGS.clear()
        timing = _TIMINGS[kind] = [0, math.inf, 0, math.inf, 0, 0]
    timing[4] += 1
    return timing


def _shares(timing) -> bool | None:
    """Whether a call of this kind is shared: ``True`` or ``False``, or ``None`` when it is to be
    timed (alone while ``timing[0] <`` :data:`TIMED_CALLS`, else shared)."""
    if timing[0] < TIMED_CALLS:
        return None
    if timing[1] < PARALLEL_MIN_SECONDS:
        return False
    if timing[2] < TIMED_CALLS:
        return None
    return timing[3] < timing[1]


def run_chunks(kernel, chunks: int, *args) -> None:
    """Call ``kernel(*args, chunk, chunks)`` for every ``chunk`` in ``range(chunks)``, on up to
    :func:`num_threads` threads (the calling thread and workers of a shared pool).

    The kernels are serial :func:`jit` functions (``nogil``), so the chunks of
    one call run side by side in Python threads: no ``parallel=True`` kernel is
    compiled (its parfor passes and the re-optimisation of everything they
    inline cost most of the compile time) and no Numba threading layer is
    involved, so calls from several threads are safe on any layer. Threads
    claim chunks in turn; each chunk writes its own part of the output, so the
    result does not depend on the number of threads. The kernel must split
    its work by :func:`task_range` (as every kernel of the package does): on
    one thread it is called once, as chunk 0 of 1, which skips the Python
    overhead of one call per chunk, as are calls whose output (the last of
    ``args``) has fewer than :data:`PARALLEL_MIN_ELEMENTS` elements, and calls of a kind
    (kernel and argument shapes) measured to run faster there: the first :data:`TIMED_CALLS`
    calls of a kind run on the calling thread, timed, the next ones shared, timed (unless the
    first took less than :data:`PARALLEL_MIN_SECONDS`), and the faster way is kept for
    :data:`RETIMED_AFTER_CALLS` calls. The choice never changes a result.

    Examples
    --------
    Any callable works; the package passes :func:`jit` kernels.

    >>> import numpy as np
    >>> from tconv_sparse.core.config import run_chunks
    >>> def double(x, out, chunk, chunks):
    ...     first, last = chunk * len(x) // chunks, (chunk + 1) * len(x) // chunks
    ...     out[first:last] = 2 * x[first:last]
    >>> out = np.empty(5)
    >>> run_chunks(double, 3, np.arange(5.0), out)
    >>> out.tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    threads = min(num_threads(), chunks)
    if threads <= 1 or chunks > _Team.MOST_CHUNKS or _small(args):
        kernel(*args, 0, 1)  # one call does every chunk's tasks (the tasks, not the chunks, fix the result)
        return
    if PARALLEL_MIN_SECONDS <= 0:
        _run_shared(kernel, chunks, threads, args)
        return
    timing, operation = _timing(kernel, args), _OPERATION.shares
    if operation is None:
        _run_timed(timing, lambda: kernel(*args, 0, 1), lambda: _run_shared(kernel, chunks, threads, args))
    elif timing[0] < TIMED_CALLS:  # the kernel's own time alone, whichever way the operation runs
        _run_timed(timing, lambda: kernel(*args, 0, 1), None)
    elif operation and timing[1] >= PARALLEL_MIN_SECONDS:
        _run_shared(kernel, chunks, threads, args)
    else:
        kernel(*args, 0, 1)


def _run_timed(timing, alone, shared):
    """``alone()`` or ``shared()``, whichever :func:`_shares` says for ``timing``; the call is
    timed into ``timing`` (unless too short to share) and its result returned."""
    shares = _shares(timing)
    if shares is False and timing[1] < PARALLEL_MIN_SECONDS:
        return alone()  # too short to share: untimed
    way = shares if shares is not None else timing[0] >= TIMED_CALLS
    start = time.perf_counter()
    result = shared() if way else alone()
    seconds = time.perf_counter() - start
    if shares is None:
        slot = 2 if way else 0
        timing[slot], timing[slot + 1] = timing[slot] + 1, min(timing[slot + 1], seconds)
    else:
        timing[5] = timing[5] + 1 if seconds > RETIMED_ABOVE * timing[1 if way else 3] else 0
    return result


class _Operation(threading.local):
    """How the kernels of this thread's :func:`run_measured` operation run: ``None`` (no
    operation: each kind of kernel call is timed and chosen on its own), ``False`` (all on the
    calling thread) or ``True`` (shared, except kinds too short to share)."""

    shares = None


_OPERATION = _Operation()


def run_measured(kind, size: int, function, *args):
    """``function(*args)``, with every :func:`run_chunks` call in it either on the calling thread
    or shared, whichever was timed faster for operations of ``kind`` (hashable; ``size`` is
    the number of elements of the largest array the operation reads or writes).

    The choice is made per operation, not per kernel call, because the kernels of one
    operation hand their data to each other through the caches: on the 2-core EPYC VM, while
    the host placed its two cores far apart, a phase split run alone after a stencil run
    shared took 420-460 µs instead of 115-120 µs, since the lines it wrote were in the other
    core's cache, and the volume's forward convolution took 0.50 ms with the kernels chosen
    one by one, 0.37 ms all on one thread (and 0.24 ms shared, while the cores were close).
    Timed as in :func:`run_chunks` (:data:`TIMED_CALLS` calls each way, timed again after
    :data:`RETIMED_AFTER_CALLS` calls or slow ones in a row); an operation inside another, or
    of fewer than :data:`PARALLEL_MIN_ELEMENTS` elements, or on one thread, just runs.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.core.config import run_measured
    >>> run_measured(("sum", 3), 3, np.sum, np.arange(3.0)).item()
    3.0
    """
    if (PARALLEL_MIN_SECONDS <= 0 or size < PARALLEL_MIN_ELEMENTS or _OPERATION.shares is not None
            or num_threads() <= 1):
        return function(*args)

    def way(shares):
        def run():
            _OPERATION.shares = shares
            try:
                return function(*args)
            finally:
                _OPERATION.shares = None
        return run

    return _run_timed(_timing(kind, ()), way(False), way(True))


def _run_shared(kernel, chunks: int, threads: int, args) -> None:
    """The chunks of ``kernel(*args, chunk, chunks)`` on the calling thread and ``threads - 1``
    helpers (on the calling thread alone while another thread's call has the helpers)."""
    team = _team()
    if not team.lock.acquire(blocking=False):
        kernel(*args, 0, 1)
        return
    try:
        claim = itertools.count()
        errors = []

        def work(start=None):
            ran = 0
            chunk = next(claim)
            if start is not None:
                start()
            while chunk < chunks:
                try:
                    kernel(*args, chunk, chunks)
                except BaseException as error:  # raised on the calling thread, after every chunk
                    errors.append(error)
                ran += 1
                chunk = next(claim)
            return ran

        team.run(work, threads - 1, chunks)
    finally:
        team.lock.release()
    if errors:
        raise errors[0]


def chunk_count(tasks: int) -> int:
    """Chunks for ``tasks`` independent tasks: a few per thread, at most one per task."""
    return max(1, min(tasks, CHUNKS_PER_THREAD * num_threads()))


#: chunks per thread that :func:`chunk_count` asks for (load balance; each chunk is one kernel call
#: from Python, about 10 µs)
CHUNKS_PER_THREAD = 2


@jit(inline=True)
def task_range(chunk, chunks, tasks):
    """Tasks ``[first, last)`` of chunk ``chunk`` of ``chunks`` (even split; inlined into the
    kernels, so it is not compiled as a function of its own)."""
    return chunk * tasks // chunks, (chunk + 1) * tasks // chunks


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
    """Number of threads the kernels of a call use: ``numba.get_num_threads()`` once Numba's
    threading layer runs, else ``NUMBA_NUM_THREADS``; at most the count of :func:`numba_threads`
    on this thread and of :func:`limit_threads`.

    Numba's threading layer is never launched by the package (it is read only after someone
    else launched it, e.g. with ``numba.set_num_threads``): on Linux its default layer is
    OpenMP, and with Numba's OpenMP pool started in the process, PyTorch's float64
    ``conv_transpose2d`` of an 8x16->16x32x32 batch took 20 ms instead of 0.7 ms (EPYC VM,
    2 threads, measured). Numba's C getter is called directly, without the launch check and
    lock that ``numba.get_num_threads`` pays on every call.
    """
    parallel = _parallel or _import_parallel()
    count = parallel._get_num_threads() if parallel._is_initialized else _default_threads
    cap = _CAPS.count
    if cap is not None and cap < count:
        count = cap
    return count if _limit is None or _limit >= count else _limit


def _import_parallel():
    global _parallel, _default_threads
    numba = _numba()
    from numba.np.ufunc import parallel

    _default_threads = numba.config.NUMBA_NUM_THREADS
    if not hasattr(parallel, "_is_initialized"):  # another Numba: its public getter, which launches
        parallel = types.SimpleNamespace(_is_initialized=True, _get_num_threads=numba.get_num_threads)
    _parallel = parallel
    return parallel


#: ``numba.np.ufunc.parallel``, imported by the first :func:`num_threads`
_parallel = None
#: ``NUMBA_NUM_THREADS``, read with it
_default_threads = 1
class _Caps(threading.local):
    """This thread's cap from :func:`numba_threads` (a class default, so reading it in a
    thread that never set one does not raise and catch an AttributeError: 0.9 µs)."""

    count = None


_CAPS = _Caps()
#: the process-wide cap of :func:`limit_threads` (``None``: none)
_limit = None


def limit_threads(count) -> int | None:
    """Cap :func:`num_threads` at ``count`` in every thread (``None`` removes the cap), without
    starting Numba's threading layer (as ``numba.set_num_threads`` would); returns the previous cap.
    ``tconv-sparse bench --threads`` uses it.

    Examples
    --------
    >>> from tconv_sparse.core.config import limit_threads, num_threads
    >>> previous = limit_threads(1)
    >>> num_threads()
    1
    >>> _ = limit_threads(previous)
    """
    global _limit
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"count must be None or an int of at least 1, got {count!r}")
    previous, _limit = _limit, count
    return previous


def call_settings() -> tuple:
    """The settings a checked call depends on, as they are now: ``(num_threads(), get_max_bytes())``
    (the keys of :meth:`~tconv_sparse.plan.Plan.runner` and of the repeated calls of
    :mod:`tconv_sparse.plan.cache` hold them)."""
    return num_threads(), _max_bytes


@contextlib.contextmanager
def numba_threads(count: int):
    """Run the kernels of the ``with`` block on at most ``count`` threads (this thread only).

    The GEMM paths leave the cores to BLAS: OpenBLAS and the helper threads of
    :func:`run_chunks` both spin-wait between calls, and alternating between
    them on the same cores costs more than the Numba passes gain in parallel.
    """
    previous = _CAPS.count
    _CAPS.count = count if previous is None else min(count, previous)
    try:
        yield
    finally:
        _CAPS.count = previous
