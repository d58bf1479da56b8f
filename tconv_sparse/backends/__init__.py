"""Backends: one module per method, plus the method chooser and the CSR products.

Each kernel takes validated, contiguous arrays in the result dtype
(``(N, C, *spatial)``) and a :class:`~tconv_sparse.core.geometry.Geometry`,
and never validates, never calls another backend, never imports anything
above :mod:`tconv_sparse.core`. The ``"sparse"`` method is the plan's cached
matrix times the data (:mod:`tconv_sparse.backends.csr`), exact for any value.

The methods are registered through :func:`_guarded`, which runs each on the
canonical geometry (:attr:`~tconv_sparse.core.geometry.Geometry.canonical`:
unused taps dropped, irrelevant strides and dilations set to 1, so memory and
time follow the work), refuses a call whose output and work buffers
(:func:`~tconv_sparse.backends.memory.work_bytes`) exceed the memory limit,
and propagates non-finite weights exactly as ``C`` does
(:mod:`tconv_sparse.core.nonfinite`).
"""

import functools

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.config import num_threads
from tconv_sparse.core.nonfinite import nonfinite_product, split_nonfinite
from tconv_sparse.backends import direct, im2col, zero_insert
from tconv_sparse.backends.memory import output_bytes, work_bytes


def _needed_bytes(method: str, transposed: bool, geometry, batch: int, dtype) -> int:
    """Output and work buffers of one call."""
    return (output_bytes(geometry, batch, dtype, transposed)
            + work_bytes(method, geometry.canonical.geometry, batch, dtype, transposed))


@functools.lru_cache(maxsize=256)
def _remembered_bytes(method: str, transposed: bool, geometry, batch: int, dtype, threads: int) -> int:
    """:func:`_needed_bytes` remembered per call signature and thread count (``threads`` is a key only)."""
    return _needed_bytes(method, transposed, geometry, batch, dtype)


#: methods whose estimate depends on nothing but the call's signature and the thread count
#: (``im2col`` and ``zero_insert`` size their chunks from the memory limit): it is remembered, since
#: it costs tens of microseconds and an iterative solver repeats the same call thousands of times
_REMEMBERED = ("direct", "gather", "scatter")


def _guarded(method: str, function, transposed: bool):
    """``function`` run on the canonical geometry, behind the memory guard."""
    direction = "conv_transpose" if transposed else "conv"

    @functools.wraps(function)
    def run(data: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
        batch, canonical = data.shape[0], geometry.canonical
        if canonical.geometry is None:  # C stores no entry: every tap reads padding
            channels, shape = ((geometry.in_channels, geometry.input_shape) if transposed
                               else (geometry.out_channels, geometry.output_shape))
            return np.zeros((batch, channels, *shape), dtype=data.dtype)
        needed = (_remembered_bytes(method, transposed, geometry, batch, data.dtype, num_threads())
                  if method in _REMEMBERED else _needed_bytes(method, transposed, geometry, batch, data.dtype))
        v.check_bytes(f"{direction} with method {method!r} (its output and work buffers)", needed)
        geometry = canonical.geometry
        weight = np.ascontiguousarray(canonical.weight(weight))
        finite, taps = split_nonfinite(weight)
        result = function(data, finite, geometry)
        if taps:
            result += nonfinite_product(data, weight, geometry, taps, transposed)
        return result

    return run


#: forward-convolution kernels: name -> function(x, weight, geometry)
FORWARD = {name: _guarded(name, function, False) for name, function in
           {"direct": direct.conv, "im2col": im2col.conv}.items()}

#: transposed-convolution kernels: name -> function(y, weight, geometry)
TRANSPOSE = {name: _guarded(name, function, True) for name, function in {
    "scatter": direct.conv_transpose_scatter,
    "gather": direct.conv_transpose_gather,
    "zero_insert": zero_insert.conv_transpose,
    "im2col": im2col.conv_transpose,
}.items()}

__all__ = ["FORWARD", "TRANSPOSE"]
