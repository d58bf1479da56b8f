"""The plan: validate once, choose once, apply many times.

A :class:`Plan` holds everything one convolution geometry needs to run: the
validated :class:`~tconv_sparse.core.geometry.Geometry`, its own copy of the
weight (cast per result dtype, conjugated on demand), the method chosen for
each direction, batch size, dtype and thread count, and the sparse matrices
``C``, ``C.T`` (and their conjugates) built lazily and kept. Every public
entry point builds or fetches a plan and calls :meth:`Plan.apply`; nothing
else chooses a method, and only this package imports
:mod:`tconv_sparse.backends` (an import-linter contract in
``pyproject.toml`` keeps it so).

Methods are chosen by ``planning``:

* ``"estimate"``: the cost model of :mod:`tconv_sparse.backends.chooser`
  picks the method, nothing is timed. Tiny problems
  (:func:`~tconv_sparse.backends.chooser.prefers_matrix`) are multiplied by
  the plan's cached sparse matrix on one thread, from the first call on: it
  builds in microseconds, costs less than the set-up of a kernel launch, and
  its two small kernels compile in a fraction of the time of any other
  method's.
* ``"measure"``: the candidate methods are timed once for the geometry,
  dtype, batch and thread count (:mod:`tconv_sparse.plan.measure`), and the
  winner is remembered in the wisdom file (:mod:`tconv_sparse.plan.wisdom`).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from tconv_sparse.backends import FORWARD, TRANSPOSE, Prepared, chooser, compiling, csr
from tconv_sparse.core import validation as v
from tconv_sparse.core.config import call_settings, num_threads
from tconv_sparse.core.matrix import build_matrix

__all__ = ["Plan", "FORWARD_METHODS", "TRANSPOSE_METHODS", "PLANNING", "parse_method", "parse_planning",
           "backend_module"]

#: method names of ``conv`` and ``conv_transpose``, ``"auto"`` first
FORWARD_METHODS = ("auto", "sparse", *FORWARD)
TRANSPOSE_METHODS = ("auto", "sparse", *TRANSPOSE)
#: the ``planning=`` values
PLANNING = ("estimate", "measure")
#: how many (direction, batch, dtype, threads) method choices one plan remembers
_MAX_CHOICES = 64


def parse_method(method, valid) -> str:
    """Check ``method`` against the names in ``valid``."""
    return v.parse_choice("method", method, valid)


def parse_planning(planning) -> str:
    """Check ``planning`` against :data:`PLANNING`."""
    return v.parse_choice("planning", planning, PLANNING)


def backend_module(method: str, transposed: bool) -> str:
    """Name of the module holding a method's kernels (what compiles on its first use)."""
    if method == "sparse":
        return csr.__name__
    return (TRANSPOSE if transposed else FORWARD)[method].__module__


class Plan:
    """One geometry and weight, ready to apply in either direction.

    Parameters
    ----------
    geometry : Geometry
        Validated (the plan never validates its geometry again).
    weight : numpy.ndarray
        Forward-convolution weight; the plan keeps its own copy in the
        weight's result dtype (integers become float64).
    forward, transpose : str
        Method names of each direction (``"auto"`` lets the plan choose).
    planning : {"estimate", "measure"}

    Attributes
    ----------
    geometry : Geometry
    weight : numpy.ndarray
    dtype : numpy.dtype
        The weight's result dtype.
    timings : dict
        ``(transposed, batch, dtype, threads) -> {method: seconds}`` for every
        choice made by measuring (empty with ``planning="estimate"``).
    """

    def __init__(self, geometry, weight: np.ndarray, *, forward: str = "auto", transpose: str = "auto",
                 planning: str = "estimate"):
        self.geometry = geometry
        self.dtype = v.result_dtype(weight)
        self.weight = np.array(weight, dtype=self.dtype, order="C", copy=True)
        self.requested = {False: forward, True: transpose}
        self.planning = planning
        self.timings: dict = {}
        g = geometry
        #: per direction: (channels, spatial shape, entries) of one result sample
        self._layouts = {False: (g.out_channels, g.output_shape, g.output_size),
                         True: (g.in_channels, g.input_shape, g.input_size)}
        self._weights = {(self.dtype, False): self.weight}
        self._matrices: dict = {}
        self._prepared: dict = {}
        self._calls: dict = {}
        self._choices: dict = {}
        self._dtypes: dict = {}

    # ------------------------------------------------------------------ shapes and dtypes
    def out_layout(self, transposed: bool) -> tuple[int, tuple]:
        """``(channels, spatial shape)`` of one result sample of a direction."""
        return self._layouts[transposed][:2]

    def result_dtype(self, dtype) -> np.dtype:
        """The result dtype for data of ``dtype`` (remembered per input dtype)."""
        result = self._dtypes.get(dtype)
        if result is None:
            result = self._dtypes[dtype] = v.result_dtype(np.dtype(dtype), self.dtype)
        return result

    def weight_for(self, dtype, conjugate: bool = False) -> np.ndarray:
        """The weight cast to ``dtype`` (and conjugated), computed once."""
        key = (dtype, conjugate)
        weight = self._weights.get(key)
        if weight is None:
            weight = self.weight.astype(dtype)
            if conjugate and weight.dtype.kind == "c":
                weight = np.conj(weight)
            self._weights[key] = weight = np.ascontiguousarray(weight)
        return weight

    def matrix(self, transposed: bool = False, conjugate: bool = False, dtype=None) -> sp.csr_array:
        """``C`` (or ``C.T``, ``conj(C)``, ``C^H``) in ``dtype`` as CSR, built once and kept.

        ``C.T`` is built directly from the transposed index maps (canonical
        CSR), so both directions are row-parallel products; a conjugate
        shares the index arrays of its matrix.
        """
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        conjugate = conjugate and dtype.kind == "c"
        key = (transposed, conjugate, dtype)
        matrix = self._matrices.get(key)
        if matrix is None:
            if conjugate:
                base = self.matrix(transposed, False, dtype)
                matrix = sp.csr_array((np.conj(base.data), base.indices, base.indptr), shape=base.shape)
                matrix.has_sorted_indices = matrix.has_canonical_format = True
            else:
                matrix = build_matrix(self.weight_for(dtype), self.geometry, dtype, transpose=transposed)
            self._matrices[key] = matrix
        return matrix

    # ------------------------------------------------------------------ choosing
    def method(self, transposed: bool, batch: int = 1, dtype=None) -> str:
        """The method that runs a direction for ``batch`` samples of ``dtype`` on the current threads."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        key = (transposed, batch, dtype, num_threads())
        method = self._choices.get(key)
        if method is not None:
            return method
        method = self.requested[transposed]
        if method == "auto":
            if self.planning == "measure":
                from tconv_sparse.plan import measure

                method = measure.choose(self, transposed, batch, dtype)
            elif chooser.prefers_matrix(self.geometry, batch):
                method = "sparse"
            else:
                method = chooser.choose(self.geometry, batch, dtype, transposed)
        if len(self._choices) >= _MAX_CHOICES:
            self._choices.clear()
        self._choices[key] = method
        return method

    # ------------------------------------------------------------------ applying
    def run(self, method: str, data: np.ndarray, transposed: bool, conjugate: bool = False) -> np.ndarray:
        """Run one named method on contiguous batched ``data`` of the result dtype (no checks)."""
        channels, spatial = self.out_layout(transposed)
        if method == "sparse":
            compiling.notice_first_use(method, transposed, data.dtype)
            columns = data.reshape(data.shape[0], -1)
            matrix = self.matrix(transposed, conjugate, data.dtype)
            if data.shape[0] == 1:
                result = csr.csr_matmul(matrix, columns[0])
            else:
                result = np.ascontiguousarray(csr.csr_matmul(matrix, columns.T).T)
            return result.reshape(data.shape[0], channels, *spatial)
        prepared = self.prepared(method, transposed, data.dtype, conjugate)
        compiling.notice_first_use(*prepared.runs, data.dtype)
        return np.ascontiguousarray(prepared(data))

    def prepared(self, method: str, transposed: bool, dtype, conjugate: bool = False) -> Prepared:
        """A fast method of one direction on the weight in ``dtype`` (conjugated), prepared once:
        the canonical weight, its finite part and the memory estimates are computed on the first
        call and kept (:class:`~tconv_sparse.backends.Prepared`)."""
        key = (method, transposed, dtype, conjugate)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = Prepared(method, transposed, self.weight_for(dtype, conjugate), self.geometry)
            self._prepared[key] = prepared
        return prepared

    def apply(self, data: np.ndarray, transposed: bool = False, conjugate: bool = False,
              bias=None) -> np.ndarray:
        """Apply ``C`` (``transposed=False``) or ``C.T`` to batched ``data`` ``(N, C, *spatial)``.

        With ``conjugate`` the weight is conjugated, so ``transposed=True``
        gives ``C^H``. The output allocation is checked against the memory
        limit first; an empty batch gives an empty result; the result is
        C-contiguous in ``np.result_type(data, weight)``.

        A repeated call (same direction, conjugation, dtype, batch size, thread
        count and memory limit) skips the checks and the choice: they are made
        once per such signature and remembered.
        """
        dtype, channels, spatial, runner = self._checked_call(data.dtype, data.shape[0], transposed, conjugate)
        if bias is not None:
            bias = v.as_bias(bias, channels, dtype)
        result = runner(np.ascontiguousarray(data, dtype=dtype))
        if bias is not None:
            result += bias.reshape(-1, *([1] * len(spatial)))
        return result

    def runner(self, dtype, batch: int, transposed: bool = False, conjugate: bool = False):
        """:meth:`apply` without a bias, checked and chosen once, for data of ``dtype`` and ``batch``
        samples: ``run(data)`` of C-contiguous data in the result dtype (for loops that apply one
        signature many times, like the Krylov solvers).

        Examples
        --------
        >>> import numpy as np, tconv_sparse as ts
        >>> plan = ts.ConvOperator(np.ones((1, 1, 2)), (3,)).plan
        >>> run = plan.runner(np.float64, 1)
        >>> run(np.arange(3.0).reshape(1, 1, 3)).tolist()
        [[[1.0, 3.0]]]
        """
        return self._checked_call(np.dtype(dtype), batch, transposed, conjugate)[3]

    def _checked_call(self, dtype, batch: int, transposed: bool, conjugate: bool) -> tuple:
        """:meth:`_call`, remembered per signature, thread count and memory limit."""
        key = (transposed, conjugate, dtype, batch, call_settings())
        run = self._calls.get(key)
        if run is None:
            run = self._call(dtype, batch, transposed, conjugate)
            if len(self._calls) >= _MAX_CHOICES:
                self._calls.clear()
            self._calls[key] = run
        return run

    def _call(self, data_dtype, batch: int, transposed: bool, conjugate: bool) -> tuple:
        """``(dtype, channels, spatial, run)`` of one call signature, checked once (:meth:`apply`)."""
        dtype = self.result_dtype(data_dtype)
        channels, spatial, entries = self._layouts[transposed]
        v.check_bytes("the output", float(batch) * entries * dtype.itemsize)
        if batch == 0:
            return dtype, channels, spatial, lambda data: np.zeros((0, channels, *spatial), dtype=dtype)
        method = self.method(transposed, batch, dtype)
        if method == "sparse" and batch == 1:
            compiling.notice_first_use(method, transposed, dtype)
            product, shape = csr.vector_product(self.matrix(transposed, conjugate, dtype)), (1, channels, *spatial)
            return dtype, channels, spatial, lambda data: product(data.reshape(-1)).reshape(shape)
        if method == "sparse":
            return dtype, channels, spatial, functools.partial(self.run, method, transposed=transposed,
                                                               conjugate=conjugate)
        prepared = self.prepared(method, transposed, dtype, conjugate)
        compiling.notice_first_use(*prepared.runs, dtype)
        return dtype, channels, spatial, lambda data: np.ascontiguousarray(prepared(data))
