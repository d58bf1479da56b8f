"""The ``"auto"`` method choice: a small cost model over the geometry.

GEMM-based methods (``im2col``) win when the per-position work
``channels x taps`` is large enough for BLAS to amortise the unfolding;
the Numba stencils (``direct``, ``gather``) win on few channels.
"""

from __future__ import annotations

import math

__all__ = ["choose_forward", "choose_transpose"]

_GEMM_MIN_WORK = 64


def _gemm_wins(geometry) -> bool:
    taps = math.prod(geometry.kernel_shape)
    return geometry.in_channels_per_group * geometry.out_channels_per_group * taps >= _GEMM_MIN_WORK * 8 \
        and min(geometry.in_channels_per_group, geometry.out_channels_per_group) >= 4


def choose_forward(geometry, batch: int, dtype) -> str:
    """Method for ``conv`` with this geometry, batch size and dtype."""
    return "im2col" if _gemm_wins(geometry) else "direct"


def choose_transpose(geometry, batch: int, dtype) -> str:
    """Method for ``conv_transpose`` with this geometry, batch size and dtype."""
    return "im2col" if _gemm_wins(geometry) else "gather"
