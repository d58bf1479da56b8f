"""im2col + GEMM for the forward convolution, GEMM + col2im for its transpose."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ._numpy_ops import correlate, fold, pad

__all__ = ["conv", "conv_transpose"]


def conv(x: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Pad, unfold the windows into columns, and multiply by the weight matrix (BLAS)."""
    return correlate(pad(x, geometry), weight, geometry.stride, geometry.dilation, geometry.groups,
                     geometry.output_shape)


def conv_transpose(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Multiply by the transposed weight matrix (BLAS), then col2im and fold the padding.

    ``cols = W.T @ y`` holds, for every tap, the contribution of every input
    position; col2im adds each tap's plane into the padded output at
    ``tap * dilation + position * stride``; folding the padding back (crop,
    wrap-add, mirror-add, edge-add) gives the output.
    """
    batch = y.shape[0]
    groups = geometry.groups
    kernel = geometry.kernel_shape
    taps = math.prod(kernel)
    positions = math.prod(geometry.output_shape)
    cout_g, cin_g = geometry.out_channels_per_group, geometry.in_channels_per_group
    w = weight.reshape(groups, cout_g, cin_g * taps).transpose(0, 2, 1)
    cols = np.matmul(w, y.reshape(batch, groups, cout_g, positions))
    cols = cols.reshape(batch, geometry.in_channels, *kernel, *geometry.output_shape)
    xpad = np.zeros((batch, geometry.in_channels, *geometry.padded_shape), dtype=y.dtype)
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in
                       zip(tap, geometry.dilation, geometry.output_shape, geometry.stride))
        xpad[(slice(None), slice(None), *window)] += cols[(slice(None), slice(None), *tap)]
    return fold(xpad, geometry)
