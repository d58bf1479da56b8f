"""The definition: ``conv = C @ x`` and ``conv_transpose = C.T @ y`` with SciPy."""

from __future__ import annotations

import numpy as np

from ..matrix import build_matrix

__all__ = ["conv", "conv_transpose"]


def conv(x: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """``y[n] = C @ x[n]`` for every sample, as one sparse-times-dense product."""
    matrix = build_matrix(weight, geometry, x.dtype)
    batch = x.shape[0]
    result = matrix @ x.reshape(batch, -1).T
    return np.ascontiguousarray(result.T).reshape(batch, geometry.out_channels, *geometry.output_shape)


def conv_transpose(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """``x[n] = C.T @ y[n]`` for every sample (no conjugation)."""
    matrix = build_matrix(weight, geometry, y.dtype)
    batch = y.shape[0]
    result = matrix.T @ y.reshape(batch, -1).T
    return np.ascontiguousarray(result.T).reshape(batch, geometry.in_channels, *geometry.input_shape)
