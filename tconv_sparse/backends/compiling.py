"""What each method compiles on first use, whether that is done already, and the first-use notice.

Numba compiles a kernel for the argument types of its first call and keeps
the machine code in its on-disk cache (``cache=True``), so only a first call
in a fresh environment pays the compile time. :func:`compiled` tells, cheaply,
whether a method's main kernels are already compiled for a dtype, in this
process (their dispatcher holds a matching signature) or in the on-disk cache
(its index lists one). :func:`notice_first_use` warns once per process,
through :mod:`warnings` with the category
:class:`~tconv_sparse.core.config.CompileNotice`, when a call is about to
compile (``"compiling the gather kernels of conv_transpose for float32 (first
use, cached afterwards; ...)"``). The plan names the kernels the call runs
(:attr:`~tconv_sparse.backends.Prepared.runs`): a stride-1 zero-padded
``gather`` runs, and announces, the forward ``direct`` kernel. Silence it with
``warnings.filterwarnings("ignore", category=CompileNotice)`` (``from
tconv_sparse.core.config import CompileNotice``), or avoid it by compiling
ahead of time with ``tconv-sparse warmup``.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

from tconv_sparse.core import matrix
from tconv_sparse.core.config import CompileNotice
from tconv_sparse.backends import csr, direct, im2col

__all__ = ["KERNELS", "compiled", "notice_first_use"]


#: ``(method, transposed)`` -> the kernels whose compilation dominates that method's first call, in
#: groups of alternatives (the paths a call may take: one of each group runs); ``zero_insert`` is
#: NumPy only
KERNELS = {
    ("sparse", False): ((matrix._fill_rows,), (csr._matvec, csr._matmat)),
    ("sparse", True): ((matrix._fill_rows,), (csr._matvec, csr._matmat)),
    ("direct", False): ((direct._direct,),),
    ("im2col", False): ((im2col._to_planes,), (im2col._from_planes,)),
    ("scatter", True): ((direct._scatter_by_channel, direct._scatter_private),),
    ("gather", True): ((direct._gather,),),
    ("im2col", True): ((im2col._to_planes,), (im2col._from_planes,)),
}

_noticed = set()
_noticed_lock = threading.Lock()


def _mentions(signatures, dtype) -> bool:
    name = f"array({dtype.name}, "
    return any(name in str(signature).lower() for signature in signatures)


def _cached_signatures(kernel) -> list:
    """Signatures the on-disk cache index of ``kernel`` lists (empty when unreadable)."""
    try:
        return [key[0] for key in kernel._cache._cache_file._load_index()]
    except Exception:  # noqa: BLE001 - a cache layout Numba changed: assume nothing is cached
        return []


def compiled(method: str, transposed: bool, dtype) -> bool:
    """Whether the main kernels of ``method`` are compiled for ``dtype`` (in this process or on disk):
    one kernel of each group of :data:`KERNELS`.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.backends.compiling import compiled
    >>> compiled("zero_insert", True, np.float64)  # NumPy only: nothing to compile
    True
    """
    dtype = np.dtype(dtype)
    return all(any(_mentions(kernel.signatures, dtype) or _mentions(_cached_signatures(kernel), dtype)
                   for kernel in group) for group in KERNELS.get((method, transposed), ()))


def notice_first_use(method: str, transposed: bool, dtype) -> None:
    """Warn (:class:`CompileNotice`, once per process and method, direction and dtype) when the
    kernels of ``method`` are about to compile for ``dtype``."""
    dtype = np.dtype(dtype)
    key = (method, transposed, dtype)
    if key in _noticed:
        return
    with _noticed_lock:
        if key in _noticed:
            return
        _noticed.add(key)
    if not compiled(method, transposed, dtype):
        direction = "conv_transpose" if transposed else "conv"
        warnings.warn(f"compiling the {method} kernels of {direction} for {dtype} (first use, cached "
                      "afterwards; tconv-sparse warmup compiles everything ahead of time)",
                      CompileNotice, stacklevel=5)
