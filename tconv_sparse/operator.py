"""``ConvOperator``: the convolution as a ``scipy.sparse.linalg.LinearOperator``."""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.matrix import build_matrix
from tconv_sparse.plan import FORWARD_METHODS, TRANSPOSE_METHODS, apply_method, matrix_product

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


class ConvOperator(LinearOperator):
    """The convolution ``C`` of one flattened sample as a SciPy ``LinearOperator``.

    ``matvec`` is :func:`~tconv_sparse.conv`, ``rmatvec`` the adjoint
    ``C^H`` (the transposed convolution of the conjugated weight), ``matmat``
    and ``rmatmat`` treat each column as one sample. ``.T`` and ``.H`` work as
    in SciPy, and the operator plugs into ``scipy.sparse.linalg.lsqr``, ``cg``
    and friends.

    Parameters
    ----------
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
    input_shape : int or tuple of int
        Spatial shape of the forward convolution's input.
    stride, padding, dilation, groups, padding_mode
        As in :func:`tconv_sparse.conv`.
    method : str or (str, str)
        A method name valid for ``conv`` and/or ``conv_transpose``
        (``"sparse"`` multiplies by the cached matrix), or a
        ``(forward, transpose)`` pair such as ``("direct", "gather")``. A name
        valid for only one side applies there; the other side uses ``"auto"``.

    Attributes
    ----------
    geometry : Geometry
    weight : numpy.ndarray
    matrix : scipy.sparse.csr_array
        ``C``, built on first access and kept.

    Notes
    -----
    With ``"sparse"``, products use a row-parallel CSR kernel on all Numba
    threads (SciPy's runs on one); ``rmatvec``/``rmatmat`` use ``C.T``, built
    directly from the index maps on first use and kept (as much memory again
    as ``C``), so that the adjoint is a row-parallel product too.

    Examples
    --------
    >>> import numpy as np, tconv_sparse as ts
    >>> from scipy.sparse.linalg import lsqr
    >>> A = ts.ConvOperator(np.array([[[1.0, 2.0, 1.0]]]), (6,), padding=1)
    >>> A.shape
    (6, 6)
    >>> x = np.arange(6.0)
    >>> np.allclose(A @ x, A.matrix @ x), np.allclose(A.H @ (A @ x), A.matrix.T @ A.matrix @ x)
    (True, True)
    >>> bool(np.allclose(lsqr(A, A @ x, atol=1e-12, btol=1e-12)[0], x))
    True
    """

    def __init__(self, weight, input_shape, *, stride=1, padding=0, dilation=1, groups=1,
                 padding_mode="zeros", method="auto"):
        weight = v.as_weight(weight)
        self.geometry = Geometry.forward(weight.shape, input_shape, stride=stride, padding=padding,
                                         dilation=dilation, groups=groups, padding_mode=padding_mode)
        self._forward_method, self._transpose_method = _parse_operator_method(method)
        dtype = v.result_dtype(weight)
        self.weight = np.ascontiguousarray(weight, dtype=dtype)
        self._matrix = None
        self._transposed = None
        super().__init__(dtype=dtype, shape=self.geometry.matrix_shape)

    @property
    def matrix(self):
        """The sparse matrix ``C`` (CSR), built once on first use."""
        if self._matrix is None:
            self._matrix = build_matrix(self.weight, self.geometry, self.dtype)
        return self._matrix

    def _transposed_matrix(self):
        """``C.T`` (CSR), built directly once on first use."""
        if self._transposed is None:
            self._transposed = build_matrix(self.weight, self.geometry, self.dtype, transpose=True)
        return self._transposed

    def _samples(self, columns: np.ndarray, channels: int, spatial) -> np.ndarray:
        return columns.T.reshape(columns.shape[1], channels, *spatial)

    def _matmat(self, X):
        X = np.asarray(X)
        geometry = self.geometry
        if self._forward_method == "sparse":
            return matrix_product(self.matrix, X)
        result = apply_method(self._forward_method, self._samples(X, geometry.in_channels, geometry.input_shape),
                               self.weight, geometry)
        return result.reshape(X.shape[1], -1).T

    def _rmatmat(self, Y):
        Y = np.asarray(Y)
        geometry = self.geometry
        if self._transpose_method == "sparse":
            if self.dtype.kind == "c":  # C^H Y = conj(C^T conj(Y))
                return np.conj(matrix_product(self._transposed_matrix(), np.conj(Y)))
            return matrix_product(self._transposed_matrix(), Y)
        result = apply_method(self._transpose_method, self._samples(Y, geometry.out_channels, geometry.output_shape),
                               self.weight.conj(), geometry, transposed=True)
        return result.reshape(Y.shape[1], -1).T

    def _matvec(self, x):
        return self._matmat(np.reshape(x, (-1, 1)))

    def _rmatvec(self, y):
        return self._rmatmat(np.reshape(y, (-1, 1)))

    def __repr__(self) -> str:
        g = self.geometry
        return (f"<{self.shape[0]}x{self.shape[1]} ConvOperator with dtype={self.dtype}: "
                f"C_in={g.in_channels}, C_out={g.out_channels}, input_shape={g.input_shape}, "
                f"kernel={g.kernel_shape}, stride={g.stride}, padding={g.padding}, "
                f"dilation={g.dilation}, groups={g.groups}, padding_mode={g.padding_mode!r}>")
