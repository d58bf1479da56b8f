"""Overlap maps: how many input-kernel products land on each transposed-convolution output.

A transposed convolution adds ``input[o] * kernel[t]`` into output pixel
``o * stride + t * dilation - lo`` (per axis). The number of products landing on
each output pixel is the column count of ``C``'s pattern (zero padding), and
per axis it is periodic with period ``stride`` away from the borders: interior
pixel ``i`` receives ``#{t : t * dilation ≡ i + lo (mod stride)}`` products. When
those counts differ between phases — whenever ``kernel % stride != 0`` (or
``gcd(dilation, stride) > 1``) — the output shows the checkerboard artefacts of
Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill, 2016).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import kernel_geometry

__all__ = ["overlap_map", "overlap_summary", "OverlapSummary", "interior_tile", "interior_tile_range"]


def _phases(kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """``(g, m)``: taps land on the ``m = stride / g`` phases that are multiples of ``g = gcd``."""
    g = math.gcd(dilation, stride)
    return g, stride // g


def _axis_tile(kernel: int, stride: int, dilation: int) -> np.ndarray:
    """Products per phase ``q`` of one axis: ``#{t < kernel : t * dilation % stride == q}``.

    ``t * dilation % stride`` runs through the ``m`` multiples of ``g`` once per
    ``m`` taps, so phase ``t * dilation % stride`` (``t < m``) gets
    ``kernel // m`` products plus one for the first ``kernel % m`` taps.
    """
    _, m = _phases(kernel, stride, dilation)
    first = np.arange(m, dtype=np.int64)
    tile = np.zeros(stride, dtype=np.int64)
    tile[(first * (dilation % stride)) % stride] = kernel // m + (first < kernel % m)
    return tile


def interior_tile(kernel_shape, stride, dilation) -> np.ndarray:
    """The interior overlap pattern, shape ``stride``: products per phase, outer product of the axes.

    Work and memory are ``prod(stride)``, independent of the kernel size.

    Examples
    --------
    >>> from tconv_sparse.analysis.overlap import interior_tile
    >>> interior_tile((3, 3), (2, 2), (1, 1))
    array([[4, 2],
           [2, 1]])
    """
    kernel_shape = v.parse_int_tuple("kernel_shape", kernel_shape, max(np.size(kernel_shape), 1), 1)
    ndim = len(kernel_shape)
    stride = v.parse_int_tuple("stride", stride, ndim, 1)
    dilation = v.parse_int_tuple("dilation", dilation, ndim, 1)
    return _outer([_axis_tile(k, s, d) for k, s, d in zip(kernel_shape, stride, dilation)]).astype(np.int64)


def interior_tile_range(kernel_shape, stride, dilation) -> tuple[int, int]:
    """``(min, max)`` of :func:`interior_tile` in closed form, for any sizes (no array is built).

    Per axis the ``m = stride / gcd(dilation, stride)`` reachable phases get
    ``kernel // m`` or ``ceil(kernel / m)`` products and the other phases none.

    Examples
    --------
    >>> from tconv_sparse.analysis.overlap import interior_tile_range
    >>> interior_tile_range((3, 3), 2, 1), interior_tile_range(4, 2, 1), interior_tile_range(3, 10**12, 1)
    ((1, 4), (2, 2), (0, 1))
    """
    kernel_shape = v.parse_int_tuple("kernel_shape", kernel_shape, max(np.size(kernel_shape), 1), 1)
    ndim = len(kernel_shape)
    stride = v.parse_int_tuple("stride", stride, ndim, 1)
    dilation = v.parse_int_tuple("dilation", dilation, ndim, 1)
    low, high = 1, 1
    for k, s, d in zip(kernel_shape, stride, dilation):
        g, m = _phases(k, s, d)
        low *= 0 if g > 1 else k // m
        high *= -(-k // m)
    return low, high


def _outer(vectors) -> np.ndarray:
    return math.prod(np.ix_(*vectors)) if len(vectors) > 1 else np.asarray(vectors[0])


def overlap_map(kernel_shape, input_shape, *, stride=1, padding=0, output_padding=None,
                output_size=None, dilation=1) -> np.ndarray:
    """Number of input-kernel products landing on each pixel of a transposed convolution's output.

    Parameters
    ----------
    kernel_shape : int or tuple of int
        Spatial kernel size (its length sets the rank ``d``).
    input_shape : int or tuple of int
        Spatial shape of the transposed convolution's input.
    stride, padding, output_padding, output_size, dilation
        As in :func:`tconv_sparse.conv_transpose` (zero padding).

    Returns
    -------
    numpy.ndarray of int64
        Shape :func:`~tconv_sparse.conv_transpose_output_shape`; entry ``p`` is
        the number of ``(input, tap)`` pairs with ``o * stride + t * dilation - lo == p``
        on every axis, i.e. the column counts of ``C``'s pattern. It is the
        outer product of the per-axis counts.

    See Also
    --------
    overlap_summary : the map with its unevenness (max/min ratio) and periodic tile.

    Examples
    --------
    The seed's Keras example: 2x2 input, 3x3 kernel, stride 2, ``"valid"``. The
    centre line gets two products per axis: a checkerboard (3 % 2 != 0).

    >>> import tconv_sparse as ts
    >>> ts.overlap_map(3, 2, stride=2, padding="valid")
    array([1, 1, 2, 1, 1])
    >>> ts.overlap_map((3, 3), (2, 2), stride=2, padding="valid")
    array([[1, 1, 2, 1, 1],
           [1, 1, 2, 1, 1],
           [2, 2, 4, 2, 2],
           [1, 1, 2, 1, 1],
           [1, 1, 2, 1, 1]])

    A kernel divisible by the stride covers the interior evenly:

    >>> ts.overlap_map(4, 4, stride=2, padding=1)
    array([1, 2, 2, 2, 2, 2, 2, 1])
    """
    geometry = kernel_geometry(kernel_shape, input_shape, stride=stride, padding=padding,
                               output_padding=output_padding, output_size=output_size, dilation=dilation)
    return _outer(_axis_counts(geometry)).astype(np.int64)


def _axis_counts(geometry) -> list:
    """Per-axis column counts of ``C``'s pattern, once the map they fill is known to fit."""
    # the outer product (int64) and its temporary, checked before any index map is built
    v.check_bytes(f"the overlap map of shape {geometry.input_shape}", 16 * math.prod(geometry.input_shape))
    return [np.diff(m.back_ptr) for m in geometry.axis_maps]


@dataclass(frozen=True)
class OverlapSummary:
    """An overlap map with its unevenness.

    Attributes
    ----------
    counts : numpy.ndarray
        The overlap map (:func:`overlap_map`).
    min, max : int
        Smallest and largest count over the output.
    ratio : float
        ``max / min`` over the output (``inf`` when some pixel receives no
        product); border pixels included.
    tile : numpy.ndarray
        The interior pattern, shape ``stride``: ``tile[q]`` is the count of
        every output pixel ``i`` far enough from the borders with
        ``(i + lo) % stride == q`` (per axis). It depends only on kernel,
        stride and dilation.
    tile_ratio : float
        ``tile.max() / tile.min()`` (``inf`` when some phase receives no
        product): the checkerboard strength, independent of the borders.
    checkerboard : bool
        Whether the interior is uneven (``tile_ratio > 1``).
    """

    counts: np.ndarray
    min: int
    max: int
    ratio: float
    tile: np.ndarray
    tile_ratio: float
    checkerboard: bool


def _ratio(values) -> float:
    low, high = int(values.min()), int(values.max())
    return high / low if low else float("inf")


def overlap_summary(kernel_shape, input_shape, *, stride=1, padding=0, output_padding=None,
                    output_size=None, dilation=1) -> OverlapSummary:
    """The overlap map with its unevenness: max/min ratio and the periodic interior tile.

    Parameters are those of :func:`overlap_map`.

    Returns
    -------
    OverlapSummary

    Examples
    --------
    >>> import tconv_sparse as ts
    >>> s = ts.overlap_summary((3, 3), (4, 4), stride=2, padding=1)
    >>> s.counts
    array([[1, 2, 1, 2, 1, 2, 1],
           [2, 4, 2, 4, 2, 4, 2],
           [1, 2, 1, 2, 1, 2, 1],
           [2, 4, 2, 4, 2, 4, 2],
           [1, 2, 1, 2, 1, 2, 1],
           [2, 4, 2, 4, 2, 4, 2],
           [1, 2, 1, 2, 1, 2, 1]])
    >>> s.tile, s.tile_ratio, s.checkerboard
    (array([[4, 2],
           [2, 1]]), 4.0, True)
    >>> ts.overlap_summary(4, 8, stride=2, padding=1).checkerboard
    False
    """
    geometry = kernel_geometry(kernel_shape, input_shape, stride=stride, padding=padding,
                               output_padding=output_padding, output_size=output_size, dilation=dilation)
    counts = _outer(_axis_counts(geometry)).astype(np.int64)
    tile = interior_tile(geometry.kernel_shape, geometry.stride, geometry.dilation)
    tile_ratio = _ratio(tile)
    return OverlapSummary(counts=counts, min=int(counts.min()), max=int(counts.max()),
                          ratio=_ratio(counts), tile=tile, tile_ratio=tile_ratio,
                          checkerboard=tile_ratio > 1)
