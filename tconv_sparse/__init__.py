"""tconv_sparse: transposed convolution made precise.

Any N-D convolution (stride, padding, dilation, channels, groups, padding
modes) is an explicit sparse matrix ``C`` (:func:`conv_matrix`); the
transposed convolution is literally ``C.T`` (:func:`conv_transpose`), computed
fast by Numba and GEMM kernels that agree with the matrix to float rounding.
"""

from ._config import get_max_bytes, set_max_bytes
from ._validation import ParameterTypeError
from .functional import conv, conv_transpose
from .geometry import Geometry, conv_output_shape, conv_transpose_output_shape
from .matrix import conv_matrix
from .operator import ConvOperator

__version__ = "0.1.0"

__all__ = [
    "conv",
    "conv_transpose",
    "conv_matrix",
    "ConvOperator",
    "conv_output_shape",
    "conv_transpose_output_shape",
    "Geometry",
    "ParameterTypeError",
    "get_max_bytes",
    "set_max_bytes",
    "__version__",
]
