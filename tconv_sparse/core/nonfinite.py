"""Non-finite weights, propagated exactly as the stored entries of ``C`` propagate them.

``C`` stores one entry per (output, input, tap) that reads a real input; padding
is never stored. So a NaN or infinite weight reaches exactly the outputs whose
row of ``C`` (forward) or column (transposed) holds it. The fast methods
multiply whole padded planes or zero-inserted inputs by each tap, which would
spread a non-finite tap to outputs that only read padding (``NaN * 0`` is NaN).

The fast methods therefore run on the finite part of the weight (non-finite
entries set to zero), and the non-finite entries are added through their own
stored entries of ``C`` (:func:`nonfinite_product`): one one-tap sparse matrix
per kernel tap that holds a non-finite value, with only the non-finite
entries stored. A finite weight costs one ``isfinite`` pass over the weight.
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.matrix import build_matrix

__all__ = ["split_nonfinite", "nonfinite_product"]


def split_nonfinite(weight: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``(finite, taps)``: ``weight`` with non-finite entries set to zero, and the kernel taps
    (index tuples over the spatial axes) that hold a non-finite entry (empty: ``weight`` itself).

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.core.nonfinite import split_nonfinite
    >>> w = np.ones((1, 1, 3)); w[0, 0, 1] = np.nan
    >>> finite, taps = split_nonfinite(w)
    >>> finite.tolist(), taps
    ([[[1.0, 0.0, 1.0]]], ((1,),))
    """
    bad = ~np.isfinite(weight)
    if not bad.any():
        return weight, ()
    taps = tuple(tuple(int(t) for t in tap) for tap in np.argwhere(bad.any(axis=(0, 1))))
    return np.where(bad, weight.dtype.type(0), weight), taps


def _one_tap(geometry: Geometry, tap) -> Geometry:
    """The geometry of tap ``tap`` alone: a kernel of one tap reading what ``tap`` reads."""
    padding = []
    for t, d, (lo, _), n, out, s in zip(tap, geometry.dilation, geometry.padding, geometry.input_shape,
                                        geometry.output_shape, geometry.stride):
        lo -= t * d
        padding.append((lo, (out - 1) * s + 1 - n - lo))
    ones = (1,) * geometry.ndim
    return Geometry(geometry.in_channels, geometry.out_channels, geometry.groups, geometry.input_shape,
                    geometry.output_shape, ones, geometry.stride, ones, tuple(padding),
                    geometry.padding_mode)


def nonfinite_product(data: np.ndarray, weight: np.ndarray, geometry: Geometry, taps,
                      transposed: bool) -> np.ndarray:
    """``C_nf @ data`` (``C_nf.T`` with ``transposed``) for batched ``data``, where ``C_nf`` stores
    only the non-finite entries of ``weight`` at the ``taps`` of :func:`split_nonfinite`."""
    batch = data.shape[0]
    columns = data.reshape(batch, -1).T
    total = None
    for tap in taps:
        values = weight[(Ellipsis, *tap)]
        values = np.where(np.isfinite(values), values.dtype.type(0), values)
        matrix = build_matrix(values.reshape(*values.shape, *(1,) * geometry.ndim),
                              _one_tap(geometry, tap), weight.dtype, transpose=transposed)
        matrix.eliminate_zeros()
        product = matrix @ columns
        total = product if total is None else total + product
    channels, shape = ((geometry.in_channels, geometry.input_shape) if transposed
                       else (geometry.out_channels, geometry.output_shape))
    return np.ascontiguousarray(total.T).reshape(batch, channels, *shape)
