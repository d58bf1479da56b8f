"""tconv_sparse: transposed convolution made precise.

Any N-D convolution (stride, padding, dilation, channels, groups, padding
modes) is an explicit sparse matrix ``C`` (:func:`conv_matrix`); the
transposed convolution is literally ``C.T`` (:func:`conv_transpose`), computed
fast by Numba and GEMM kernels that agree with the matrix to float rounding.
"""

from ._config import get_max_bytes, set_max_bytes
from ._validation import ParameterTypeError
from .deconvolution import DeconvolutionResult, deconvolve
from .functional import conv, conv_transpose
from .geometry import Geometry, conv_output_shape, conv_transpose_output_shape
from .interop import from_keras, from_torch
from .matrix import conv_matrix
from .operator import ConvOperator
from .overlap import overlap_map, overlap_summary
from .spectra import operator_norm, singular_values
from .symbolic import symbolic_conv_transpose

__version__ = "0.1.0"

__all__ = [
    "conv",
    "conv_transpose",
    "conv_matrix",
    "ConvOperator",
    "deconvolve",
    "DeconvolutionResult",
    "singular_values",
    "operator_norm",
    "overlap_map",
    "overlap_summary",
    "symbolic_conv_transpose",
    "from_torch",
    "from_keras",
    "conv_output_shape",
    "conv_transpose_output_shape",
    "Geometry",
    "ParameterTypeError",
    "get_max_bytes",
    "set_max_bytes",
    "__version__",
]
