"""The definition: ``conv = C @ x`` and ``conv_transpose = C.T @ y``.

``C`` (or ``C.T``, built directly rather than transposed) is built for the
call and applied with the row-parallel CSR product of
:mod:`tconv_sparse.backends.csr`, one sample per column.
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.backends.csr import csr_matmul
from tconv_sparse.core.matrix import build_matrix

__all__ = ["conv", "conv_transpose"]


def _apply(matrix, data: np.ndarray) -> np.ndarray:
    """``matrix @ sample`` for every sample (row) of ``data`` ``(N, ...)``; returns ``(N, rows)``."""
    batch = data.shape[0]
    columns = data.reshape(batch, -1)
    if batch == 1:
        return csr_matmul(matrix, columns[0])[None]
    return np.ascontiguousarray(csr_matmul(matrix, columns.T).T)


def conv(x: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """``y[n] = C @ x[n]`` for every sample."""
    matrix = build_matrix(weight, geometry, x.dtype)
    return _apply(matrix, x).reshape(x.shape[0], geometry.out_channels, *geometry.output_shape)


def conv_transpose(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """``x[n] = C.T @ y[n]`` for every sample (no conjugation)."""
    matrix = build_matrix(weight, geometry, y.dtype, transpose=True)
    return _apply(matrix, y).reshape(y.shape[0], geometry.in_channels, *geometry.input_shape)
