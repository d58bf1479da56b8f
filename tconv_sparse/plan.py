"""The plan: the one seam between the public layer and the backends.

Every entry point validates its arguments once into a
:class:`~tconv_sparse.core.geometry.Geometry`, then asks this module to
choose a method and run it. Only this module imports
:mod:`tconv_sparse.backends` (an import-linter contract in ``pyproject.toml``
keeps it so).
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.backends import FORWARD, TRANSPOSE
from tconv_sparse.backends.chooser import choose_forward, choose_transpose
from tconv_sparse.backends.csr import csr_matmul
from tconv_sparse.core import validation as v

__all__ = ["FORWARD_METHODS", "TRANSPOSE_METHODS", "parse_method", "choose_method", "apply_method",
           "matrix_product", "backend_module"]

#: method names of ``conv`` and ``conv_transpose``, ``"auto"`` first
FORWARD_METHODS = ("auto", *FORWARD)
TRANSPOSE_METHODS = ("auto", *TRANSPOSE)


def parse_method(method, valid) -> str:
    """Check ``method`` against the names in ``valid``."""
    if not isinstance(method, str):
        raise v.ParameterTypeError(f"method must be one of {valid}, got {method!r}")
    if method not in valid:
        raise ValueError(f"method must be one of {valid}, got {method!r}")
    return method


def choose_method(method: str, geometry, batch: int, dtype, transposed: bool) -> str:
    """``method`` itself, or the method ``"auto"`` stands for on this call."""
    if method != "auto":
        return method
    return (choose_transpose if transposed else choose_forward)(geometry, batch, dtype)


def backend_module(method: str, transposed: bool) -> str:
    """Name of the module holding a method's kernels (what compiles on its first use)."""
    return (TRANSPOSE if transposed else FORWARD)[method].__module__


def apply_method(method, data, weight, geometry, bias=None, transposed=False) -> np.ndarray:
    """Run ``method`` (or the one ``"auto"`` chooses) on batched ``data`` in the result dtype.

    The allocation of the output is checked against the memory limit first;
    the result is always C-contiguous.
    """
    dtype = v.result_dtype(data, weight)
    channels, shape = ((geometry.in_channels, geometry.input_shape) if transposed
                       else (geometry.out_channels, geometry.output_shape))
    bias = v.as_bias(bias, channels, dtype)
    v.check_bytes("the output", data.shape[0] * channels * np.prod(shape, dtype=float) * dtype.itemsize)
    method = choose_method(method, geometry, data.shape[0], dtype, transposed)
    backend = (TRANSPOSE if transposed else FORWARD)[method]
    result = np.ascontiguousarray(backend(np.ascontiguousarray(data, dtype=dtype),
                                          np.ascontiguousarray(weight, dtype=dtype), geometry))
    if bias is not None:
        result += bias.reshape(-1, *([1] * len(shape)))
    return result


def matrix_product(matrix, columns: np.ndarray) -> np.ndarray:
    """``matrix @ columns`` with the parallel CSR kernel (a single column as a vector)."""
    if columns.shape[1] == 1:
        return csr_matmul(matrix, columns[:, 0])[:, None]
    return csr_matmul(matrix, columns)
