"""Shift-and-GEMM: sums of matrix products over shifted windows of flat planes, in BLAS.

The GEMM paths of :mod:`~tconv_sparse.backends.im2col` store the planes of a
chunk of samples channels last, as one flat run of positions with zero margin
rows and columns wide enough that every tap of the kernel is one flat shift.
A tap is then one matrix product of a *window* of the planes, a contiguous
``(positions, channels in)`` view (a strided one for a group of channels,
which BLAS reads in place through its leading dimension), by the tap's
``(channels in, channels out)`` weight; the taps of one output accumulate
through ``beta = 1``, so no column buffer (im2col) and no scatter-add
(col2im) is ever written.

The products call the ``?gemm`` of SciPy's BLAS (:mod:`scipy.linalg.cython_blas`,
the OpenBLAS SciPy ships, one thread pool) through ``ctypes``, which releases
the GIL; :mod:`scipy.linalg.blas` would copy every strided window into a
Fortran-ordered array first, and :func:`numpy.matmul` cannot accumulate.
"""

from __future__ import annotations

import ctypes

import numpy as np

from tconv_sparse.core.config import park_helpers

__all__ = ["gemm", "shifted_gemms"]

_INT_MAX = 2**31 - 1
_PROTOTYPE = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * 13))
#: dtype character -> the ``?gemm`` of SciPy's BLAS, loaded on first use
_ROUTINES = {}
_CHARS = {np.dtype(np.float32): "s", np.dtype(np.float64): "d", np.dtype(np.complex64): "c",
          np.dtype(np.complex128): "z"}
_NO = ctypes.c_char_p(b"N")


def _routine(dtype: np.dtype):
    """The ``?gemm`` function pointer of SciPy's BLAS for ``dtype``."""
    char = _CHARS[dtype]
    if char not in _ROUTINES:
        from scipy.linalg import cython_blas

        capsule = cython_blas.__pyx_capi__[f"{char}gemm"]
        get_name, get_pointer = ctypes.pythonapi.PyCapsule_GetName, ctypes.pythonapi.PyCapsule_GetPointer
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        _ROUTINES[char] = _PROTOTYPE(get_pointer(capsule, get_name(capsule)))
    return _ROUTINES[char]


def _leading(matrix: np.ndarray) -> int:
    """Row stride of a row-major 2-D view in elements (BLAS's leading dimension), or -1 if the
    view is not one BLAS can read in place."""
    rows, cols = matrix.shape
    if cols > 1 and matrix.strides[1] != matrix.itemsize:
        return -1
    stride, remainder = divmod(matrix.strides[0], matrix.itemsize)
    if rows == 1:
        return max(cols, 1)
    return stride if remainder == 0 and stride >= max(cols, 1) else -1


def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float) -> None:
    """``c = a @ b + beta * c`` in place.

    ``a``, ``b`` and ``c`` are 2-D views of one dtype (float32, float64,
    complex64 or complex128) with unit column stride and any row stride (read
    and written in place by BLAS); ``c`` must not overlap ``a`` or ``b``.
    Views BLAS cannot address (or sizes past its 32-bit integers, or an empty
    inner dimension) go through :func:`numpy.matmul` instead; operands whose
    shapes do not match raise a ValueError (BLAS would read past them).

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.backends.gemm import gemm
    >>> planes = np.arange(12.0).reshape(2, 6)
    >>> c = np.ones((1, 4))
    >>> gemm(np.array([[1.0, 2.0]]), planes[:, 1:5], c, beta=1.0)
    >>> c.tolist()
    [[16.0, 19.0, 22.0, 25.0]]
    """
    m, n = c.shape
    k = a.shape[1]
    if a.shape[0] != m or b.shape != (k, n):
        raise ValueError(f"gemm operands do not match: a {a.shape}, b {b.shape}, c {c.shape}")
    if m == 0 or n == 0:
        return
    lda, ldb, ldc = _leading(a), _leading(b), _leading(c)
    if k == 0 or min(lda, ldb, ldc) < 1 or max(m, n, k, lda, ldb, ldc) > _INT_MAX or c.dtype not in _CHARS:
        product = np.matmul(a, b)
        c[...] = product if beta == 0 else product + beta * c
        return
    # row-major c = a b is column-major c.T = b.T a.T: BLAS's (m, n) are our (n, m)
    sizes = np.array([n, m, k, ldb, lda, ldc], dtype=np.intc)
    scalars = np.array([1, beta], dtype=c.dtype)
    pointer = sizes.ctypes.data
    step = sizes.itemsize
    _routine(c.dtype)(_NO, _NO, pointer, pointer + step, pointer + 2 * step,
                      scalars.ctypes.data, b.ctypes.data, pointer + 3 * step, a.ctypes.data,
                      pointer + 4 * step, scalars.ctypes.data + scalars.itemsize, c.ctypes.data,
                      pointer + 5 * step)


def _addressable(array: np.ndarray) -> bool:
    """Whether BLAS can address every 2-D slice ``array[..., rows, columns]`` in place."""
    return (array.dtype in _CHARS and array.strides[-1] == array.itemsize
            and all(stride > 0 and stride % array.itemsize == 0 for stride in array.strides)
            and array.strides[-2] // array.itemsize <= _INT_MAX)


def shifted_gemms(target: np.ndarray, source: np.ndarray, weights: np.ndarray, terms, span: tuple) -> None:
    """``target[t, q, group g] = sum of source[s, q + shift, group g] @ weights[tap, g]`` over the
    ``(s, tap, shift)`` terms of each target block ``t``.

    Each term is one GEMM over the whole span (BLAS blocks it for the caches
    itself: splitting the span into cache-sized pieces measured slower, the
    packing and the thread start-up of every call then costing more). The
    BLAS routine is called with addresses computed from the strides, which
    costs a few microseconds per GEMM instead of the ~15 of :func:`gemm`.

    Parameters
    ----------
    target : numpy.ndarray
        ``(target blocks, length, channels out)``, channels last (unit stride).
    source : numpy.ndarray
        ``(source blocks, length, channels in)``, the same.
    weights : numpy.ndarray
        ``(taps, groups, channels in // groups, channels out // groups)``, C-contiguous.
    terms : sequence
        Per target block: its ``(source block, tap, shift)`` terms; a block without terms is zero.
    span : tuple of int
        ``[first, last)``: the flat positions ``q`` computed; ``q + shift`` must stay inside
        ``[0, length)`` for every term (a ValueError otherwise: BLAS does not check bounds).
    """
    park_helpers()  # BLAS's threads get the cores, not helpers spinning for their next call
    first, last = span
    groups, rows_in, rows_out = weights.shape[1:]
    length, m = source.shape[1], last - first
    for block_terms in terms:
        for _, _, shift in block_terms:
            if first + shift < 0 or last + shift > length:
                raise ValueError(f"a window [{first + shift}, {last + shift}) leaves the planes [0, {length})")
    if m <= 0:
        return
    if not (weights.flags.c_contiguous and target.dtype == source.dtype == weights.dtype
            and _addressable(target) and _addressable(source) and max(m, rows_in, rows_out) <= _INT_MAX):
        _shifted_views(target, source, weights, terms, span)
        return
    routine, item = _routine(target.dtype), target.itemsize
    sizes = np.array([rows_out, m, rows_in, rows_out, source.strides[1] // item, target.strides[1] // item],
                     dtype=np.intc)
    scalars = np.array([1, 0, 1], dtype=target.dtype)  # alpha, beta of the first term, of the others
    n_, m_, k_, ldb, lda, ldc = (sizes.ctypes.data + i * sizes.itemsize for i in range(6))
    alpha, betas = scalars.ctypes.data, (scalars.ctypes.data + item, scalars.ctypes.data + 2 * item)
    t_base, s_base, w_base = target.ctypes.data, source.ctypes.data, weights.ctypes.data
    (t_block, t_row), (s_block, s_row) = target.strides[:2], source.strides[:2]
    w_tap, w_group = weights.strides[:2]
    for block, block_terms in enumerate(terms):
        if not block_terms:
            target[block, first:last] = 0
        for g in range(groups):
            c = t_base + block * t_block + first * t_row + g * rows_out * item
            for index, (source_block, tap, shift) in enumerate(block_terms):
                a = s_base + source_block * s_block + (first + shift) * s_row + g * rows_in * item
                routine(_NO, _NO, n_, m_, k_, alpha, w_base + tap * w_tap + g * w_group, ldb, a, lda,
                        betas[index > 0], c, ldc)


def _shifted_views(target, source, weights, terms, span) -> None:
    """:func:`shifted_gemms` through :func:`gemm` on views (arrays BLAS cannot address)."""
    first, last = span
    groups, rows_in, rows_out = weights.shape[1:]
    for block, block_terms in enumerate(terms):
        out = target[block, first:last]
        if not block_terms:
            out[...] = 0
        for g in range(groups):
            out_g = out[:, g * rows_out:(g + 1) * rows_out]
            for index, (source_block, tap, shift) in enumerate(block_terms):
                gemm(source[source_block, first + shift:last + shift, g * rows_in:(g + 1) * rows_in],
                     weights[tap, g], out_g, 0.0 if index == 0 else 1.0)
