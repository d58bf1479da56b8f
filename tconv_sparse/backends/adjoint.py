"""The transpose of a stride-1 zero-padded convolution as a forward convolution.

With stride 1 and zero padding, ``C.T`` is itself a convolution: of the
forward output, with the kernel flipped on every spatial axis and its
channel axes swapped per group, padded by ``k_eff - 1 - lo`` below and
``k_eff - 1 - hi`` above (``k_eff = d (k - 1) + 1``). So one kernel, the
forward ``direct`` kernel, serves both directions there; the flipped weight is
a weight transform made once per plan (:class:`~tconv_sparse.backends.Prepared`).
Other strides need the phases of the gather kernel, other padding modes the
fold-back of the border.
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.core.geometry import Geometry

__all__ = ["adjoint_geometry", "adjoint_weight"]


def adjoint_geometry(geometry: Geometry) -> Geometry | None:
    """The forward convolution equal to ``C.T`` of ``geometry``, or ``None`` when there is none
    (a stride above 1, a padding mode other than zeros, or a padding wider than the kernel).

    Examples
    --------
    >>> from tconv_sparse.core.geometry import Geometry
    >>> from tconv_sparse.backends.adjoint import adjoint_geometry
    >>> g = Geometry.forward((4, 2, 3), (10,), padding=((0, 1),))
    >>> a = adjoint_geometry(g)
    >>> a.in_channels, a.out_channels, a.input_shape, a.output_shape, a.padding
    (4, 2, (9,), (10,), ((2, 1),))
    """
    if geometry.padding_mode != "zeros" or any(s != 1 for s in geometry.stride):
        return None
    padding = []
    for k, d, (lo, hi) in zip(geometry.kernel_shape, geometry.dilation, geometry.padding):
        span = d * (k - 1)
        if not (0 <= lo <= span and 0 <= hi <= span):
            return None
        padding.append((span - lo, span - hi))
    return Geometry(geometry.out_channels, geometry.in_channels, geometry.groups, geometry.output_shape,
                    geometry.input_shape, geometry.kernel_shape, geometry.stride, geometry.dilation,
                    tuple(padding), "zeros")


def adjoint_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """The weight of :func:`adjoint_geometry`: ``(C_in, C_out / groups, *k)``, spatially flipped.

    Entry ``[g*cin_g + c, j, *t]`` is ``weight[g*cout_g + j, c, *(k - 1 - t)]``.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.backends.adjoint import adjoint_weight
    >>> adjoint_weight(np.arange(6.0).reshape(2, 1, 3), 1).tolist()
    [[[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]]
    """
    out_channels, cin_g, *kernel = weight.shape
    cout_g = out_channels // groups
    grouped = weight.reshape(groups, cout_g, cin_g, *kernel).swapaxes(1, 2)
    flipped = grouped[(Ellipsis, *(slice(None, None, -1),) * len(kernel))]
    return np.ascontiguousarray(flipped.reshape(groups * cin_g, cout_g, *kernel))
