"""Backends: one module per method, plus the method chooser and the CSR products.

Each kernel takes validated, contiguous arrays in the result dtype
(``(N, C, *spatial)``) and a :class:`~tconv_sparse.core.geometry.Geometry`,
and never validates, never calls another backend, never imports anything
above :mod:`tconv_sparse.core`. The ``"sparse"`` method is the plan's cached
matrix times the data (:mod:`tconv_sparse.backends.csr`), exact for any value.

A method runs through :class:`Prepared`, built once per weight and dtype
(the plan keeps it): it runs the kernel on the canonical geometry
(:attr:`~tconv_sparse.core.geometry.Geometry.canonical`: unused taps
dropped, irrelevant strides and dilations set to 1, so memory and time
follow the work), refuses a call whose output and work buffers
(:func:`~tconv_sparse.backends.memory.work_bytes`) exceed the memory limit,
and propagates non-finite weights exactly as ``C`` does
(:mod:`tconv_sparse.core.nonfinite`). :data:`FORWARD` and :data:`TRANSPOSE`
run a method once, preparing it for that one call.
"""

import functools
import math

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.config import get_max_bytes, num_threads, run_measured
from tconv_sparse.core.nonfinite import nonfinite_product, split_nonfinite
from tconv_sparse.backends import direct, im2col, zero_insert
from tconv_sparse.backends.adjoint import adjoint_geometry, adjoint_weight
from tconv_sparse.backends.memory import output_bytes, work_bytes

#: methods whose estimate depends on nothing but the call's signature and the thread count
#: (``im2col`` and ``zero_insert`` size their chunks from the memory limit): it is remembered, since
#: it costs tens of microseconds and an iterative solver repeats the same call thousands of times
_REMEMBERED = ("direct", "gather", "scatter")

#: transposed methods that run as the forward ``direct`` kernel where the transpose is a forward
#: convolution (stride 1, zero padding: :mod:`tconv_sparse.backends.adjoint`); ``gather`` computes
#: the same sums in the same order of taps, with the bookkeeping of phases it does not need there
_AS_FORWARD = ("gather",)


class Prepared:
    """One method of one direction, ready to run on one weight: the weight transforms done once.

    Holds what every call of the method on this weight would otherwise
    recompute: the weight on the canonical geometry
    (:attr:`~tconv_sparse.core.geometry.Geometry.canonical`: unused taps
    dropped, irrelevant strides and dilations set to 1, so memory and time
    follow the work), its finite part and non-finite taps
    (:mod:`tconv_sparse.core.nonfinite`), and, for the methods of
    :data:`_REMEMBERED`, the bytes each batch size needs. A call refuses data
    whose output and work buffers (:func:`~tconv_sparse.backends.memory.work_bytes`)
    exceed the memory limit, then runs the kernel.

    Parameters
    ----------
    method : str
    transposed : bool
    weight : numpy.ndarray
        Forward weight in the data's dtype (kept by reference: the plan owns
        an unchanging copy).
    geometry : Geometry
        Validated.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.core.geometry import Geometry
    >>> from tconv_sparse.backends import Prepared
    >>> g = Geometry.forward((1, 1, 3), (4,))
    >>> run = Prepared("direct", False, np.ones((1, 1, 3)), g)
    >>> run(np.arange(4.0).reshape(1, 1, 4)).tolist()
    [[[3.0, 6.0]]]
    """

    def __init__(self, method: str, transposed: bool, weight: np.ndarray, geometry):
        self.method, self.transposed, self.geometry = method, transposed, geometry
        #: ``(method, transposed)`` of the kernels a call runs (``("direct", False)`` for a transpose
        #: run as a forward convolution), the key of the first-use compile notice
        self.runs = (method, transposed)
        self._function = _KERNELS[transposed][method]
        canonical = geometry.canonical
        self._canonical = canonical.geometry
        self._bytes: dict = {}
        channels, shape = ((geometry.in_channels, geometry.input_shape) if transposed
                           else (geometry.out_channels, geometry.output_shape))
        self._empty = (channels, *shape)
        if self._canonical is None:  # C stores no entry: every tap reads padding
            return
        self.weight = np.ascontiguousarray(canonical.weight(weight))
        self.finite, self.taps = split_nonfinite(self.weight)
        self._kernel_weight, self._kernel_geometry = self.finite, self._canonical
        adjoint = adjoint_geometry(self._canonical) if method in _AS_FORWARD else None
        if adjoint is not None:  # C.T is a forward convolution: run the direct kernel on it
            self._function, self.runs = direct.conv, ("direct", False)
            self._kernel_weight = adjoint_weight(self.finite, adjoint.groups)
            self._kernel_geometry = adjoint

    def needed_bytes(self, batch: int, dtype) -> int:
        """Output and work buffers of one call on ``batch`` samples of ``dtype``."""
        key = (batch, dtype, num_threads())
        needed = self._bytes.get(key)
        if needed is None:
            needed = (output_bytes(self.geometry, batch, dtype, self.transposed)
                      + work_bytes(self.method, self._canonical, batch, dtype, self.transposed))
            if self.method in _REMEMBERED:
                self._bytes[key] = needed
        return needed

    def __call__(self, data: np.ndarray) -> np.ndarray:
        """The method on contiguous batched ``data`` of the weight's dtype."""
        if self._canonical is None:
            return np.zeros((data.shape[0], *self._empty), dtype=data.dtype)
        needed = self.needed_bytes(data.shape[0], data.dtype)
        if needed > get_max_bytes():
            direction = "conv_transpose" if self.transposed else "conv"
            v.check_bytes(f"{direction} with method {self.method!r} (its output and work buffers)", needed)
        size = max(data.size, data.shape[0] * math.prod(self._empty))
        result = run_measured((self.runs, self._kernel_geometry, data.shape, data.dtype.char), size,
                              self._function, data, self._kernel_weight, self._kernel_geometry)
        if self.taps:
            result += nonfinite_product(data, self.weight, self._canonical, self.taps, self.transposed)
        return result


def _run_once(method: str, transposed: bool):
    """``function(data, weight, geometry)``: :class:`Prepared` built for one call."""
    function = _KERNELS[transposed][method]

    @functools.wraps(function)
    def run(data: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
        return Prepared(method, transposed, weight, geometry)(data)

    return run


#: the kernels of each direction (``transposed`` -> name -> ``function(data, weight, geometry)`` on the
#: canonical geometry, with no checks)
_KERNELS = {
    False: {"direct": direct.conv, "im2col": im2col.conv},
    True: {"scatter": direct.conv_transpose_scatter, "gather": direct.conv_transpose_gather,
           "zero_insert": zero_insert.conv_transpose, "im2col": im2col.conv_transpose},
}

#: forward-convolution methods: name -> function(x, weight, geometry), checked and canonical
FORWARD = {name: _run_once(name, False) for name in _KERNELS[False]}

#: transposed-convolution methods: name -> function(y, weight, geometry), checked and canonical
TRANSPOSE = {name: _run_once(name, True) for name in _KERNELS[True]}

__all__ = ["FORWARD", "TRANSPOSE", "Prepared"]
