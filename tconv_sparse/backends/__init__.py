"""Backends: one module per method. Each takes validated, contiguous arrays in
the result dtype (``(N, C, *spatial)``) and a :class:`~tconv_sparse.core.geometry.Geometry`,
and never validates, never calls another backend, never imports the public layer.
"""

from tconv_sparse.backends import direct, im2col, sparse, zero_insert

#: forward-convolution methods: name -> function(x, weight, geometry)
FORWARD = {"sparse": sparse.conv, "direct": direct.conv, "im2col": im2col.conv}

#: transposed-convolution methods: name -> function(y, weight, geometry)
TRANSPOSE = {
    "sparse": sparse.conv_transpose,
    "scatter": direct.conv_transpose_scatter,
    "gather": direct.conv_transpose_gather,
    "zero_insert": zero_insert.conv_transpose,
    "im2col": im2col.conv_transpose,
}

__all__ = ["FORWARD", "TRANSPOSE"]
