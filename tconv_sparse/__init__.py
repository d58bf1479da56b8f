"""tconv_sparse: transposed convolution made precise.

Any N-D convolution (stride, padding, dilation, channels, groups, padding
modes) is an explicit sparse matrix ``C`` (:func:`conv_matrix`); the
transposed convolution is literally ``C.T`` (:func:`conv_transpose`), computed
fast by Numba and GEMM kernels that agree with the matrix to float rounding.
"""

from tconv_sparse.core.config import get_max_bytes, set_max_bytes
from tconv_sparse.core.validation import ParameterTypeError
from tconv_sparse.solvers.deconvolution import ConvergenceWarning, DeconvolutionResult, deconvolve
from tconv_sparse.functional import conv, conv_transpose
from tconv_sparse.core.geometry import Geometry, conv_output_shape, conv_transpose_output_shape
from tconv_sparse.interop import from_keras, from_torch
from tconv_sparse.core.matrix import conv_matrix
from tconv_sparse.operator import ConvOperator
from tconv_sparse.analysis.overlap import overlap_map, overlap_summary
from tconv_sparse.analysis.spectra import operator_norm, singular_values
from tconv_sparse.analysis.symbolic import symbolic_conv_transpose

__version__ = "0.1.0"

__all__ = [
    "conv",
    "conv_transpose",
    "conv_matrix",
    "ConvOperator",
    "deconvolve",
    "DeconvolutionResult",
    "ConvergenceWarning",
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
