"""The regulariser matrices ``R`` of the penalty ``damp^2 R(g)``, and Schur's norm bound.

``grad`` is the forward difference on every spatial axis of every channel with
a Neumann boundary (the last difference is zero); it is built as a grouped
convolution matrix of the kernel ``[-1, 1]`` with ``"replicate"`` padding, and
``grad^T grad`` is the (negative) Neumann discrete Laplacian.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.matrix import conv_matrix

__all__ = ["REGULARIZERS", "gradient_matrix", "regularizer_matrix", "schur_norm2"]

#: every ``regularizer`` value
REGULARIZERS = (None, "laplacian", "tv")


def gradient_matrix(geometry: Geometry, dtype) -> sp.csr_array:
    """Forward differences with a Neumann boundary on every axis of every channel.

    Rows are ordered ``(axis, channel, *spatial)``: a grouped convolution
    matrix of the kernel ``[-1, 1]`` padded by one ``"replicate"`` sample at
    the high end, per axis.

    Examples
    --------
    >>> import numpy as np, tconv_sparse as ts
    >>> from tconv_sparse.solvers.regularizers import gradient_matrix
    >>> geometry = ts.Geometry.forward((1, 1, 3), (4,))
    >>> (gradient_matrix(geometry, np.float64) @ np.array([1.0, 2.0, 4.0, 8.0])).tolist()
    [1.0, 2.0, 4.0, 0.0]
    """
    d, channels = geometry.ndim, geometry.in_channels
    blocks = []
    for axis in range(d):
        kernel_shape = tuple(2 if a == axis else 1 for a in range(d))
        weight = np.broadcast_to(np.array([-1.0, 1.0]).reshape(kernel_shape), (channels, 1, *kernel_shape))
        padding = tuple((0, 1) if a == axis else (0, 0) for a in range(d))
        blocks.append(conv_matrix(weight, geometry.input_shape, padding=padding, groups=channels,
                                  padding_mode="replicate", dtype=dtype))
    return sp.vstack(blocks, format="csr")


def regularizer_matrix(geometry: Geometry, regularizer, damp: float, dtype) -> sp.csr_array:
    """``R``: no rows when ``damp == 0``, ``I`` for ``None``, else the gradient (real ``dtype``)."""
    n = geometry.input_size
    real = np.finfo(dtype).dtype
    if damp == 0:
        return sp.csr_array((0, n), dtype=real)
    if regularizer is None:
        return sp.eye_array(n, dtype=real, format="csr")
    return gradient_matrix(geometry, real)


def schur_norm2(row_sums, column_sums) -> float:
    """Schur's bound ``||A||_2^2 <= max_i sum_j |a_ij| * max_j sum_i |a_ij|``.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.solvers.regularizers import schur_norm2
    >>> A = np.array([[1.0, -2.0], [0.0, 1.0]])
    >>> schur_norm2(abs(A).sum(axis=1), abs(A).sum(axis=0))
    9.0
    """
    return float(np.max(row_sums, initial=0.0) * np.max(column_sums, initial=0.0))
