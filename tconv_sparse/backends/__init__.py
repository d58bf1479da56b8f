"""Backends: one module per method, plus the method chooser and the CSR products.

Each kernel function takes validated, contiguous arrays in the result dtype
(``(N, C, *spatial)``) and a :class:`~tconv_sparse.core.geometry.Geometry`,
and never validates, never calls another backend, never imports anything
above :mod:`tconv_sparse.core`. The ``"sparse"`` method is the plan's cached
matrix times the data (:mod:`tconv_sparse.backends.csr`).
"""

from tconv_sparse.backends import direct, im2col, zero_insert

#: forward-convolution kernels: name -> function(x, weight, geometry)
FORWARD = {"direct": direct.conv, "im2col": im2col.conv}

#: transposed-convolution kernels: name -> function(y, weight, geometry)
TRANSPOSE = {
    "scatter": direct.conv_transpose_scatter,
    "gather": direct.conv_transpose_gather,
    "zero_insert": zero_insert.conv_transpose,
    "im2col": im2col.conv_transpose,
}

__all__ = ["FORWARD", "TRANSPOSE"]
