"""``ConvOperator``: a plan as a ``scipy.sparse.linalg.LinearOperator``, with ``.T`` and ``.H``.

The operator and its transposed and adjoint views share one
:class:`~tconv_sparse.plan.Plan`: ``op.T`` applies ``C.T`` with the transpose
backend directly and ``op.H`` applies ``C^H`` as the transposed convolution of
the conjugated weight (no conjugation of the data on the way in or out), and
each view carries its own ``.matrix``.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.plan import FORWARD_METHODS, TRANSPOSE_METHODS, Plan, parse_planning

__all__ = ["ConvOperator"]


def _parse_operator_method(method) -> tuple[str, str]:
    if isinstance(method, tuple) and len(method) == 2:
        forward, transpose = method
    elif isinstance(method, str):
        forward = method if method in FORWARD_METHODS else "auto"
        transpose = method if method in TRANSPOSE_METHODS else "auto"
        if method not in FORWARD_METHODS and method not in TRANSPOSE_METHODS:
            raise ValueError(
                f"method must be one of {tuple(dict.fromkeys(FORWARD_METHODS + TRANSPOSE_METHODS))} "
                f"or a (forward, transpose) pair, got {method!r}"
            )
    else:
        raise v.ParameterTypeError(f"method must be a str or a (forward, transpose) pair, got {method!r}")
    if forward not in FORWARD_METHODS:
        raise ValueError(f"the forward method must be one of {FORWARD_METHODS}, got {forward!r}")
    if transpose not in TRANSPOSE_METHODS:
        raise ValueError(f"the transpose method must be one of {TRANSPOSE_METHODS}, got {transpose!r}")
    return forward, transpose


class _PlanOperator(LinearOperator):
    """``C``, ``C.T``, ``conj(C)`` or ``C^H`` of one plan, as a ``LinearOperator``.

    ``transposed`` picks ``C.T`` over ``C``; ``conjugate`` conjugates the
    weight. ``.T`` and ``.H`` flip those flags and return the sibling view (the
    forward view is the :class:`ConvOperator` itself), so ``op.T.T is op``.
    """

    def __init__(self, plan: Plan, transposed: bool, conjugate: bool, root: ConvOperator):
        self._plan, self._transposed, self._conjugate, self._root = plan, transposed, conjugate, root
        g = plan.geometry
        model, data = (g.in_channels, *g.input_shape), (g.out_channels, *g.output_shape)
        self.dims, self.dimsd = (data, model) if transposed else (model, data)
        rows, columns = g.matrix_shape
        super().__init__(dtype=plan.dtype, shape=(columns, rows) if transposed else (rows, columns))

    @property
    def geometry(self) -> Geometry:
        """The validated geometry of the forward convolution."""
        return self._plan.geometry

    @property
    def matrix(self):
        """This view's sparse matrix (CSR): ``C``, ``C.T``, ``conj(C)`` or ``C^H``, built once."""
        return self._plan.matrix(self._transposed, self._conjugate)

    def _view(self, transposed: bool, conjugate: bool) -> _PlanOperator:
        return self._root._views[(transposed, conjugate)]

    def _transpose(self):
        return self._view(not self._transposed, self._conjugate)

    def _adjoint(self):
        return self._view(not self._transposed, not self._conjugate)

    def _apply(self, samples: np.ndarray, transposed: bool, conjugate: bool) -> np.ndarray:
        return self._plan.apply(samples, transposed, conjugate)

    def _matmat(self, X):
        X = np.asarray(X)
        samples = X.T.reshape(X.shape[1], *self.dims)
        return self._apply(samples, self._transposed, self._conjugate).reshape(X.shape[1], self.shape[0]).T

    def _rmatmat(self, Y):
        Y = np.asarray(Y)
        samples = Y.T.reshape(Y.shape[1], *self.dimsd)
        return self._apply(samples, not self._transposed, not self._conjugate).reshape(Y.shape[1], self.shape[1]).T

    def _matvec(self, x):
        return self._apply(np.reshape(x, (1, *self.dims)), self._transposed, self._conjugate).ravel()

    def _rmatvec(self, y):
        return self._apply(np.reshape(y, (1, *self.dimsd)), not self._transposed, not self._conjugate).ravel()

    def __repr__(self) -> str:
        g = self.geometry
        name = {(False, False): "C", (True, False): "C.T", (False, True): "conj(C)", (True, True): "C^H"}
        return (f"<{self.shape[0]}x{self.shape[1]} {type(self).__name__} ({name[self._transposed, self._conjugate]}) "
                f"with dtype={self.dtype}: C_in={g.in_channels}, C_out={g.out_channels}, "
                f"input_shape={g.input_shape}, kernel={g.kernel_shape}, stride={g.stride}, "
                f"padding={g.padding}, dilation={g.dilation}, groups={g.groups}, "
                f"padding_mode={g.padding_mode!r}>")


class ConvOperator(_PlanOperator):
    """The convolution ``C`` of one flattened sample as a SciPy ``LinearOperator``: a plan.

    The constructor validates everything once and copies the weight; every
    product afterwards goes straight to the chosen backend. ``matvec`` /
    ``matmat`` are :func:`~tconv_sparse.conv` on one sample per column,
    ``rmatvec`` / ``rmatmat`` the adjoint ``C^H``; :meth:`conv` and
    :meth:`conv_transpose` take arrays in the convolution layouts. ``.T`` is
    the transposed operator (``op.T @ v == C.T @ v``, ``op.T.matrix == C.T``,
    ``op.T.T is op``) and ``.H`` the adjoint, both applied by the transpose
    backend directly. The operator plugs into ``scipy.sparse.linalg.lsqr``,
    ``cg`` and friends, and into PyLops-style code through ``dims`` /
    ``dimsd``.

    Parameters
    ----------
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
        Copied: later changes to the caller's array change nothing.
    input_shape : int or tuple of int
        Spatial shape of the forward convolution's input.
    stride, padding, dilation, groups, padding_mode
        As in :func:`tconv_sparse.conv`.
    method : str or (str, str)
        A method name valid for ``conv`` and/or ``conv_transpose``, or a
        ``(forward, transpose)`` pair such as ``("direct", "gather")``. A name
        valid for only one side applies there; the other side uses ``"auto"``.
    planning : {"estimate", "measure"}
        How ``"auto"`` chooses. ``"estimate"``: the cost model, nothing is
        timed (tiny problems use the cached sparse matrix on one thread).
        ``"measure"``: at the first product of each batch size and dtype, the
        candidate methods are timed once and the fastest is kept, and
        remembered in the per-user wisdom file (``TCONV_SPARSE_WISDOM``, else
        ``~/.cache/tconv_sparse/wisdom.json``; see
        :mod:`tconv_sparse.plan.wisdom`) so that later processes skip the
        timing.

    Attributes
    ----------
    geometry : Geometry
    weight : numpy.ndarray
        The operator's own copy of the weight, in its dtype.
    matrix : scipy.sparse.csr_array
        ``C``, built on first access and kept (``op.T.matrix`` is ``C.T``,
        built directly, ``op.H.matrix`` is ``C^H``).
    plan : Plan
        The plan every product goes through.
    dims, dimsd : tuple
        Model ``(C_in, *input_shape)`` and data ``(C_out, *output_shape)``
        shapes, as in PyLops (swapped on ``.T`` and ``.H``).
    method_forward, method_transpose : str
        The methods a one-sample product uses in each direction.
    timings : dict
        With ``planning="measure"``, the seconds each candidate took, per
        ``(transposed, batch, dtype, threads)`` that was measured in this
        process.

    Notes
    -----
    With ``"sparse"``, products use a row-parallel CSR kernel (one thread for
    tiny products); ``C.T`` is built directly from the index maps on first use
    of the transpose and kept (as much memory again as ``C``).

    Examples
    --------
    >>> import numpy as np, tconv_sparse as ts
    >>> from scipy.sparse.linalg import lsqr
    >>> A = ts.ConvOperator(np.array([[[1.0, 2.0, 1.0]]]), (6,), padding=1)
    >>> A.shape, A.dims, A.dimsd
    ((6, 6), (1, 6), (1, 6))
    >>> x = np.arange(6.0)
    >>> np.allclose(A @ x, A.matrix @ x), np.allclose(A.H @ (A @ x), A.matrix.T @ A.matrix @ x)
    (True, True)
    >>> A.T.T is A, bool(np.allclose(A.T.matrix.toarray(), A.matrix.T.toarray()))
    (True, True)
    >>> A.conv_transpose(np.ones((1, 6))).tolist()
    [[3.0, 4.0, 4.0, 4.0, 4.0, 3.0]]
    >>> bool(np.allclose(lsqr(A, A @ x, atol=1e-12, btol=1e-12)[0], x))
    True
    """

    def __init__(self, weight, input_shape, *, stride=1, padding=0, dilation=1, groups=1,
                 padding_mode="zeros", method="auto", planning="estimate"):
        weight = v.as_weight(weight)
        forward, transpose = _parse_operator_method(method)
        planning = parse_planning(planning)
        geometry = Geometry.forward(weight.shape, input_shape, stride=stride, padding=padding,
                                    dilation=dilation, groups=groups, padding_mode=padding_mode)
        plan = Plan(geometry, weight, forward=forward, transpose=transpose, planning=planning)
        super().__init__(plan, False, False, self)
        self._views = {(False, False): self}
        for transposed, conjugate in ((True, False), (True, True), (False, True)):
            self._views[(transposed, conjugate)] = _PlanOperator(plan, transposed, conjugate, self)

    @property
    def weight(self) -> np.ndarray:
        """The operator's own copy of the weight."""
        return self._plan.weight

    @property
    def plan(self) -> Plan:
        """The :class:`~tconv_sparse.plan.Plan` behind the operator and its views.

        ``plan.apply(data, transposed, conjugate)`` takes batched arrays
        ``(N, C, *spatial)`` and skips the checks of a ``LinearOperator``
        product: what an iterative solver calls thousands of times.
        """
        return self._plan

    @property
    def method_forward(self) -> str:
        """The method ``matvec`` and :meth:`conv` of one sample use."""
        return self._plan.method(False)

    @property
    def method_transpose(self) -> str:
        """The method ``rmatvec``, ``.T`` and :meth:`conv_transpose` of one sample use."""
        return self._plan.method(True)

    @property
    def timings(self) -> dict:
        """Measured seconds per candidate method (``planning="measure"``)."""
        return self._plan.timings

    def _layout_call(self, name: str, data, transposed: bool) -> np.ndarray:
        data, batched = v.as_data(name, data, self.geometry.ndim)
        if data.shape[1 if batched else 0:] != (self.dimsd if transposed else self.dims):
            expected = self.dimsd if transposed else self.dims
            raise ValueError(f"{name} must have shape (N, {', '.join(map(str, expected))}) or "
                             f"({', '.join(map(str, expected))}) for this operator, got {data.shape}")
        result = self._plan.apply(data if batched else data[None], transposed)
        return result if batched else result[0]

    def conv(self, x) -> np.ndarray:
        """The forward convolution of ``x``, ``(N, C_in, *input_shape)`` or ``(C_in, *input_shape)``.

        Equals :func:`tconv_sparse.conv` with the operator's parameters.
        """
        return self._layout_call("x", x, False)

    def conv_transpose(self, y) -> np.ndarray:
        """``C.T`` applied to ``y``, ``(N, C_out, *out)`` or ``(C_out, *out)`` (no conjugation).

        Equals :func:`tconv_sparse.conv_transpose` with the operator's
        parameters and ``output_size=input_shape``.
        """
        return self._layout_call("y", y, True)
