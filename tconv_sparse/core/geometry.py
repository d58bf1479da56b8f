"""Convolution geometry: every size and padding, validated once.

A :class:`Geometry` describes one convolution ``y = C x`` for a single sample:
channels, groups, the spatial input and output sizes, kernel, stride,
dilation, the padding ``(lo, hi)`` on every axis and the padding mode. The
transposed convolution uses the *same* geometry and applies ``C.T``.

Shape rules
-----------
Forward convolution, per axis, with ``k_eff = dilation * (k - 1) + 1``::

    out = floor((n + lo + hi - k_eff) / stride) + 1

``"same"`` follows TensorFlow/Keras for every stride: ``out = ceil(n / stride)``,
``total = max((out - 1) * stride + k_eff - n, 0)``, ``lo = total // 2``,
``hi = total - lo``. ``"full"`` pads ``k_eff - 1`` on both sides.

Transposed convolution of an input of size ``i`` (the forward output):

* numeric padding (PyTorch): ``n = (i - 1) * stride - (lo + hi) + k_eff + op``;
* ``"valid"``/``"same"`` (Keras 3 / JAX): see :func:`conv_transpose_output_shape`.
  Keras' ``"same"`` crop is expressed as forward padding ``(lo, hi)`` where
  ``hi`` may be negative (the forward convolution then never reads the last
  ``-hi`` inputs, so their transposed outputs are zero).

When ``output_padding >= stride`` (allowed when ``dilation > stride``, as in
PyTorch) the forward convolution of an input of size ``n`` would produce more
than ``i`` outputs; the geometry keeps the first ``i`` (equivalently, the
transposed input is zero-extended), which is what PyTorch computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.index_maps import (
    axis_map, map_bytes, padding_matrix, product_map, product_map_bytes, tap_counts,
)

__all__ = ["Geometry", "Canonical", "conv_output_shape", "conv_transpose_output_shape",
           "kernel_geometry"]


def _effective(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def _checked_effective(axis, kernel, dilation) -> int:
    k_eff = _effective(kernel, dilation)
    v.check_size(f"the effective kernel size dilation * (kernel - 1) + 1 on spatial axis {axis}",
                 k_eff, f"lower the dilation ({dilation}) or the kernel size ({kernel})")
    return k_eff


def _check_padded(axis, n, lo, hi):
    v.check_size(f"the padded input size {n} + {lo} + {hi} on spatial axis {axis}", n + lo + hi,
                 "lower the padding")


def _same_padding(n: int, k_eff: int, stride: int) -> tuple[int, int]:
    out = -(-n // stride)
    total = max((out - 1) * stride + k_eff - n, 0)
    return total // 2, total - total // 2


def _forward_padding(padding, n, k_eff, stride) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return _same_padding(n, k_eff, stride)
    if padding == "full":
        return k_eff - 1, k_eff - 1
    return padding


def _check_kernel_fits(axis, n, lo, hi, k_eff, kernel, dilation):
    _check_padded(axis, n, lo, hi)
    if n + lo + hi < k_eff:
        raise ValueError(
            f"kernel size {kernel} with dilation {dilation} (effective size {k_eff}) is larger "
            f"than the padded input on spatial axis {axis}: input {n} + padding {lo}+{hi} = "
            f"{n + lo + hi}; the padded input must be >= {k_eff}"
        )


def _transposed_axis(axis, i, kernel, stride, dilation, padding, output_padding, output_size):
    """Return ``(n, lo, hi)``: transposed output size and the forward padding."""
    k_eff = _checked_effective(axis, kernel, dilation)
    max_op = max(stride, dilation) - 1
    if isinstance(padding, str) and padding in ("valid", "same"):
        if padding == "valid":
            min_size = (i - 1) * stride + k_eff
            default = (i - 1) * stride + max(k_eff, stride)
        else:
            min_size = (i - 1) * stride + k_eff % 2
            default = i * stride
    else:
        lo, hi = (k_eff - 1, k_eff - 1) if padding == "full" else padding
        min_size = (i - 1) * stride - (lo + hi) + k_eff
        default = min_size
    if output_size is not None:
        size = output_size[axis]
        if not min_size <= size <= min_size + max_op:
            raise ValueError(
                f"output_size[{axis}] = {size} is not reachable: the valid range for this axis is "
                f"[{min_size}, {min_size + max_op}] (input {i}, kernel {kernel}, stride {stride}, "
                f"dilation {dilation}, padding {padding!r})"
            )
        op = size - min_size
    elif output_padding is not None:
        op = output_padding[axis]
        if op > max_op:
            raise ValueError(
                f"output_padding must satisfy 0 <= output_padding < max(stride, dilation) = "
                f"{max_op + 1} on every axis, got {op} on axis {axis}"
            )
    else:
        op = None
    if isinstance(padding, str) and padding in ("valid", "same"):
        if op is None:
            n = default
            pad_len = stride + k_eff - 2
        else:
            n = min_size + op
            pad_len = k_eff + k_eff % 2 - 2 + op
        if padding == "valid":
            lo = hi = 0
        else:
            left = min(-(-pad_len // 2), k_eff - 1)
            lo, hi = k_eff - 1 - left, k_eff - 1 - (pad_len - left)
    else:
        n = min_size + (op or 0)
    if n < 1:
        raise ValueError(
            f"the transposed convolution output would be empty on spatial axis {axis}: size {n} "
            f"for input {i}, kernel {kernel}, stride {stride}, dilation {dilation}, padding "
            f"{padding!r}, output_padding {op}; the size must be >= 1 (use less padding or more "
            "output_padding)"
        )
    v.check_size(f"the transposed convolution's output size on spatial axis {axis}", n,
                 f"lower the stride ({stride}), the dilation ({dilation}), the kernel size ({kernel}) "
                 f"or the input size ({i})")
    _check_padded(axis, n, lo, hi)
    return n, lo, hi


def _parse_axes(ndim, input_shape, stride, dilation):
    return (v.parse_int_tuple("input_shape", input_shape, ndim, 1), v.parse_int_tuple("stride", stride, ndim, 1),
            v.parse_int_tuple("dilation", dilation, ndim, 1))


def _parse_common(kernel_shape, input_shape, stride, dilation):
    kernel_shape = v.parse_int_tuple("kernel_shape", kernel_shape, np.size(kernel_shape), 1)
    ndim = len(kernel_shape)
    if ndim < 1:
        raise ValueError("kernel_shape must have at least one spatial axis")
    return (ndim, kernel_shape, *_parse_axes(ndim, input_shape, stride, dilation))


def _forward_axes(kernel_shape, input_shape, stride, dilation, padding) -> tuple[tuple, tuple]:
    """``(pads, output shape)`` of a forward convolution from parsed per-axis arguments."""
    pads, out = [], []
    for axis, (n, k, s, d) in enumerate(zip(input_shape, kernel_shape, stride, dilation)):
        k_eff = _checked_effective(axis, k, d)
        lo, hi = _forward_padding(padding if isinstance(padding, str) else padding[axis], n, k_eff, s)
        _check_kernel_fits(axis, n, lo, hi, k_eff, k, d)
        pads.append((lo, hi))
        out.append((n + lo + hi - k_eff) // s + 1)
    return tuple(pads), tuple(out)


def _transposed_axes(kernel_shape, input_shape, stride, dilation, padding, output_padding,
                     output_size) -> tuple[tuple, tuple]:
    """``(pads, output shape)`` of a transposed convolution from parsed per-axis arguments."""
    axes = [_transposed_axis(axis, input_shape[axis], kernel_shape[axis], stride[axis], dilation[axis],
                             padding if isinstance(padding, str) else padding[axis], output_padding,
                             output_size)
            for axis in range(len(kernel_shape))]
    return tuple((lo, hi) for _, lo, hi in axes), tuple(n for n, _, _ in axes)


def conv_output_shape(input_shape, kernel_shape, *, stride=1, padding=0, dilation=1):
    """Spatial output shape of a forward convolution.

    Parameters
    ----------
    input_shape, kernel_shape : int or tuple of int
        Spatial sizes of the input and of the kernel (``d`` entries each).
    stride, dilation : int or tuple of int
        Per-axis stride and dilation, each ``>= 1``.
    padding : int, tuple, or {"valid", "same", "full"}
        As in :func:`tconv_sparse.conv`.

    Returns
    -------
    tuple of int
        ``floor((n + lo + hi - k_eff) / stride) + 1`` per axis.

    Examples
    --------
    >>> import tconv_sparse as ts
    >>> ts.conv_output_shape((4, 4), (3, 3))
    (2, 2)
    >>> ts.conv_output_shape((5, 5), (3, 3), stride=2, padding="same")
    (3, 3)
    """
    ndim, kernel_shape, input_shape, stride, dilation = _parse_common(
        kernel_shape, input_shape, stride, dilation
    )
    return _forward_axes(kernel_shape, input_shape, stride, dilation, v.parse_padding(padding, ndim))[1]


def conv_transpose_output_shape(
    input_shape, kernel_shape, *, stride=1, padding=0, output_padding=None, output_size=None, dilation=1
):
    """Spatial output shape of a transposed convolution.

    ``input_shape`` is the transposed convolution's input (the forward
    convolution's output). Numeric padding follows PyTorch,
    ``(i - 1) * stride - (lo + hi) + k_eff + output_padding``; ``"valid"`` and
    ``"same"`` follow Keras 3 / JAX: without ``output_padding``, valid gives
    ``(i - 1) * stride + max(k_eff, stride)`` and same gives ``i * stride``;
    with it, valid gives ``(i - 1) * stride + k_eff + op`` and same gives
    ``(i - 1) * stride + k_eff % 2 + op``. ``output_size`` picks the size
    directly within ``[min_size, min_size + max(stride, dilation) - 1]``.

    Examples
    --------
    The seed's CS231n and Keras examples: a 2x2 input, 3x3 kernel, stride 2.

    >>> import tconv_sparse as ts
    >>> ts.conv_transpose_output_shape((2, 2), (3, 3), stride=2, padding=1)
    (3, 3)
    >>> ts.conv_transpose_output_shape((2, 2), (3, 3), stride=2, padding=1, output_padding=1)
    (4, 4)
    >>> ts.conv_transpose_output_shape((2, 2), (3, 3), stride=2, padding="valid")
    (5, 5)
    >>> ts.conv_transpose_output_shape((2, 2), (3, 3), stride=2, padding="same")
    (4, 4)
    """
    ndim, kernel_shape, input_shape, stride, dilation = _parse_common(
        kernel_shape, input_shape, stride, dilation
    )
    options = _parse_transposed_options(ndim, padding, output_padding, output_size)
    return _transposed_axes(kernel_shape, input_shape, stride, dilation, *options)[1]


def _parse_transposed_options(ndim, padding, output_padding, output_size):
    padding = v.parse_padding(padding, ndim)
    output_padding = v.parse_optional_int_tuple("output_padding", output_padding, ndim, 0)
    output_size = v.parse_optional_int_tuple("output_size", output_size, ndim, 1)
    if output_padding is not None and output_size is not None:
        raise ValueError(
            f"give output_padding ({output_padding}) or output_size ({output_size}), not both"
        )
    return padding, output_padding, output_size


@dataclass(frozen=True)
class Geometry:
    """Validated geometry of one convolution ``y = C x`` (single sample).

    Build it with :meth:`forward` (from the forward input's shape) or
    :meth:`transposed` (from the transposed input's shape); both validate
    every argument and derive every size, so nothing downstream checks again.

    Attributes
    ----------
    in_channels, out_channels, groups : int
        Channels of the forward convolution's input and output.
    input_shape, output_shape, kernel_shape : tuple of int
        Spatial sizes of the forward input, forward output and kernel.
    stride, dilation : tuple of int
    padding : tuple of (int, int)
        Forward padding ``(lo, hi)`` per axis (``hi`` < 0 only for Keras "same").
    padding_mode : str
    """

    in_channels: int
    out_channels: int
    groups: int
    input_shape: tuple
    output_shape: tuple
    kernel_shape: tuple
    stride: tuple
    dilation: tuple
    padding: tuple
    padding_mode: str

    # ----------------------------------------------------------------- builders
    @classmethod
    def forward(cls, weight_shape, input_shape, *, stride=1, padding=0, dilation=1, groups=1,
                padding_mode="zeros"):
        """Geometry of a forward convolution of a ``input_shape`` (spatial) input."""
        kernel_shape, ndim, groups, padding_mode, out_channels, in_channels = _parse_weight(
            weight_shape, groups, padding_mode
        )
        input_shape, stride, dilation = _parse_axes(ndim, input_shape, stride, dilation)
        pads, out = _forward_axes(kernel_shape, input_shape, stride, dilation, v.parse_padding(padding, ndim))
        return cls._checked(in_channels, out_channels, groups, input_shape, out, kernel_shape,
                            stride, dilation, pads, padding_mode)

    @classmethod
    def transposed(cls, weight_shape, input_shape, *, stride=1, padding=0, output_padding=None,
                   output_size=None, dilation=1, groups=1, padding_mode="zeros"):
        """Geometry of the forward convolution whose transpose maps a ``input_shape`` input.

        ``input_shape`` is the transposed convolution's input (spatial), i.e.
        the forward convolution's output.
        """
        kernel_shape, ndim, groups, padding_mode, out_channels, in_channels = _parse_weight(
            weight_shape, groups, padding_mode
        )
        input_shape, stride, dilation = _parse_axes(ndim, input_shape, stride, dilation)
        options = _parse_transposed_options(ndim, padding, output_padding, output_size)
        pads, sizes = _transposed_axes(kernel_shape, input_shape, stride, dilation, *options)
        return cls._checked(in_channels, out_channels, groups, sizes, input_shape, kernel_shape,
                            stride, dilation, pads, padding_mode)

    @classmethod
    def _checked(cls, in_channels, out_channels, groups, input_shape, output_shape, kernel_shape,
                 stride, dilation, padding, padding_mode):
        for axis, (n, (lo, hi)) in enumerate(zip(input_shape, padding)):
            if padding_mode == "reflect" and max(lo, hi) >= n:
                raise ValueError(
                    f"reflect padding must be smaller than the input size on every axis: axis "
                    f"{axis} has input size {n} and padding ({lo}, {hi}); the valid range is "
                    f"0 <= padding <= {n - 1}"
                )
            if padding_mode == "circular" and max(lo, hi) > n:
                raise ValueError(
                    f"circular padding must not exceed the input size (it wraps around once): "
                    f"axis {axis} has input size {n} and padding ({lo}, {hi}); the valid range is "
                    f"0 <= padding <= {n}"
                )
        return cls(in_channels, out_channels, groups, input_shape, output_shape, kernel_shape,
                   stride, dilation, padding, padding_mode)

    # ---------------------------------------------------------------- derived
    @property
    def ndim(self) -> int:
        """Number of spatial axes ``d``."""
        return len(self.kernel_shape)

    @property
    def in_channels_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_channels_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def effective_kernel_shape(self) -> tuple:
        """``k_eff = dilation * (k - 1) + 1`` per axis."""
        return tuple(_effective(k, d) for k, d in zip(self.kernel_shape, self.dilation))

    @property
    def padded_shape(self) -> tuple:
        """Spatial shape of the padded input, ``n + lo + hi``."""
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.input_shape, self.padding))

    @property
    def input_size(self) -> int:
        """Entries of one flattened input sample, ``C_in * prod(input_shape)``."""
        return self.in_channels * math.prod(self.input_shape)

    @property
    def output_size(self) -> int:
        """Entries of one flattened output sample, ``C_out * prod(output_shape)``."""
        return self.out_channels * math.prod(self.output_shape)

    @property
    def matrix_shape(self) -> tuple:
        """Shape of ``C``: ``(output_size, input_size)``."""
        return (self.output_size, self.input_size)

    @property
    def weight_shape(self) -> tuple:
        return (self.out_channels, self.in_channels_per_group, *self.kernel_shape)

    def check_channels(self, name: str, channels: int, transposed: bool = False) -> None:
        """Raise a ``ValueError`` unless ``channels`` is what the data ``name`` must have.

        The forward convolution's input has ``C_in = weight.shape[1] * groups``
        channels; the transposed convolution's input has ``weight.shape[0]``.
        """
        expected, rule = ((self.out_channels, "weight.shape[0]") if transposed
                          else (self.in_channels, "C_in = weight.shape[1] * groups"))
        if channels != expected:
            raise ValueError(
                f"{name} has {channels} channels but the weight {self.weight_shape} with "
                f"groups={self.groups} expects {rule} = {expected}"
            )

    @cached_property
    def tap_counts(self) -> tuple:
        """Per axis and tap, how many outputs read a real input through it (closed form)."""
        return tuple(
            tap_counts(n, out, k, s, d, lo, self.padding_mode)
            for n, out, k, s, d, (lo, _) in zip(
                self.input_shape, self.output_shape, self.kernel_shape, self.stride,
                self.dilation, self.padding,
            )
        )

    @property
    def axis_triples(self) -> tuple:
        """Per axis, the (output, input, tap) triples of its map (its reads of real inputs)."""
        return tuple(int(counts.sum()) for counts in self.tap_counts)

    @cached_property
    def axis_maps(self) -> tuple:
        """Per-axis :class:`~tconv_sparse.core.index_maps.AxisMap` (padding mode included).

        Their estimated size is checked against the memory limit first.
        """
        triples = self.axis_triples
        v.check_bytes(f"the index maps ({' + '.join(map(str, triples))} (output, input, tap) triples)",
                      self.index_map_bytes - self.lead_map_bytes)
        return tuple(
            axis_map(n, out, k, s, d, lo, self.padding_mode)
            for n, out, k, s, d, (lo, _) in zip(
                self.input_shape, self.output_shape, self.kernel_shape, self.stride,
                self.dilation, self.padding,
            )
        )

    @property
    def index_map_bytes(self) -> int:
        """Estimated peak bytes of the axis maps and of the fused map of the leading axes."""
        return self.lead_map_bytes + sum(map_bytes(t, out, n, k) for t, out, n, k in zip(
            self.axis_triples, self.output_shape, self.input_shape, self.kernel_shape))

    @property
    def lead_map_bytes(self) -> int:
        """Estimated peak bytes of fusing the leading axes' maps (:attr:`canonical_maps`)."""
        return product_map_bytes(math.prod(self.axis_triples[:-1]), math.prod(self.output_shape[:-1]),
                                 math.prod(self.input_shape[:-1]))

    @cached_property
    def canonical_maps(self) -> tuple:
        """``(leading, last)``: the leading axes fused into one map, and the last axis.

        Every Numba kernel works on this two-level form, which makes them
        rank-generic: the input is viewed as ``(N, C, prod(n[:-1]), n[-1])``.
        """
        maps = self.axis_maps
        v.check_bytes("the fused index map of the leading axes", self.lead_map_bytes)
        return product_map(maps[:-1]), maps[-1]

    @cached_property
    def padding_matrices(self) -> tuple:
        """Per-axis 0/1 matrices ``P`` (padded size x input size): ``xpad = P @ x``."""
        v.check_bytes("the padding matrices", 48 * sum(self.padded_shape))
        return tuple(
            padding_matrix(n, lo, lo + hi + n, self.padding_mode)
            for n, (lo, hi) in zip(self.input_shape, self.padding)
        )

    @property
    def pattern_size(self) -> int:
        """Structural nonzeros of one (output channel, input channel) block of ``C``.

        In closed form for zero padding; the other modes fold duplicated inputs,
        counted on the index maps.
        """
        if self.padding_mode == "zeros":  # distinct taps of one output read distinct inputs
            return math.prod(self.axis_triples)
        return math.prod(m.num_pairs for m in self.axis_maps)

    @property
    def nnz(self) -> int:
        """Exact number of stored entries of ``C`` (duplicates from padding summed)."""
        return self.out_channels * self.in_channels_per_group * self.pattern_size

    @cached_property
    def canonical(self) -> "Canonical":
        """The same matrix ``C`` with the smallest kernel, stride and dilation (:class:`Canonical`).

        With zero padding, taps that read no real input on an axis are dropped
        (the kernel keeps the contiguous range of the taps that do); a stride is
        irrelevant on an axis with one output and becomes 1; a dilation with one
        tap left becomes 1. Memory and time of the kernels then follow the work,
        not the stride, dilation or padding.
        """
        axes = [_canonical_axis(*args, self.padding_mode) for args in zip(
            self.input_shape, self.output_shape, self.kernel_shape, self.stride, self.dilation,
            self.padding, self.tap_counts)]
        taps = tuple(axis[0] for axis in axes)
        if any(axis[1] is None for axis in axes):
            return Canonical(None, taps)
        kernel, stride, dilation, padding = (tuple(axis[1][j] for axis in axes) for j in range(4))
        if (kernel, stride, dilation, padding) == (self.kernel_shape, self.stride, self.dilation,
                                                   self.padding):
            return Canonical(self, taps)
        return Canonical(Geometry(self.in_channels, self.out_channels, self.groups, self.input_shape,
                                  self.output_shape, kernel, stride, dilation, padding,
                                  self.padding_mode), taps)


@dataclass(frozen=True)
class Canonical:
    """An equivalent geometry for the kernels: ``C`` of ``geometry`` with the kernel cut to
    ``weight[(..., *taps)]`` is ``C`` of the original.

    Attributes
    ----------
    geometry : Geometry or None
        ``None`` when ``C`` stores no entry at all (every tap reads padding on some axis):
        the result is zero, bias aside.
    taps : tuple of slice
        Per spatial axis, the taps kept.
    """

    geometry: Geometry | None
    taps: tuple

    def weight(self, weight: np.ndarray) -> np.ndarray:
        """The kernel of :attr:`geometry`: ``weight`` cut to the taps kept."""
        return weight[(Ellipsis, *self.taps)]


def _canonical_axis(n, out, kernel, stride, dilation, padding, counts, padding_mode):
    """``(taps, (kernel, stride, dilation, (lo, hi)))`` of one axis of :attr:`Geometry.canonical`
    (``None`` instead of the tuple when no tap reads a real input)."""
    lo, hi = padding
    first, last = 0, kernel - 1
    if padding_mode == "zeros":
        used = np.flatnonzero(counts)
        if not len(used):
            return slice(0, 0), None
        first, last = int(used[0]), int(used[-1])
    kernel_c = last - first + 1
    stride_c = 1 if out == 1 else stride
    dilation_c = dilation if kernel_c > 1 else 1
    if padding_mode == "zeros":
        lo = lo - first * dilation
        hi = (out - 1) * stride_c + _effective(kernel_c, dilation_c) - n - lo
    return slice(first, last + 1), (kernel_c, stride_c, dilation_c, (lo, hi))


def _parse_weight(weight_shape, groups, padding_mode):
    weight_shape = v.check_weight_shape(weight_shape)
    groups = v.parse_groups(groups)
    padding_mode = v.parse_padding_mode(padding_mode)
    out_channels = weight_shape[0]
    if out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide the weight's first axis (C_out of the forward "
            f"convolution, C_in of the transposed one) = {out_channels}"
        )
    return weight_shape[2:], len(weight_shape) - 2, groups, padding_mode, out_channels, weight_shape[1] * groups


def kernel_geometry(kernel_shape, input_shape, *, stride=1, padding=0, output_padding=None,
                    output_size=None, dilation=1, padding_mode="zeros") -> Geometry:
    """Validated single-channel :class:`~tconv_sparse.Geometry` of a transposed convolution.

    ``input_shape`` is the transposed convolution's spatial input; the rank
    is ``len(kernel_shape)``. Shared by the overlap, symbolic, plotting and
    explain tools, which take a kernel shape instead of a weight.
    """
    kernel_shape = v.parse_int_tuple("kernel_shape", kernel_shape, max(np.size(kernel_shape), 1), 1)
    return Geometry.transposed((1, 1, *kernel_shape), input_shape, stride=stride, padding=padding,
                               output_padding=output_padding, output_size=output_size,
                               dilation=dilation, padding_mode=padding_mode)
