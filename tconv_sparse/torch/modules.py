"""The layers of :mod:`tconv_sparse.torch`: ``torch.nn`` convolutions whose forward is the bridge's.

:class:`Conv1d` ... :class:`ConvTranspose3d` subclass ``torch.nn.Conv{d}d`` /
``torch.nn.ConvTranspose{d}d`` (same constructor arguments, parameters and
initialisation) and apply :func:`~tconv_sparse.torch.conv` /
:func:`~tconv_sparse.torch.conv_transpose`.
"""

from __future__ import annotations

import numbers

import torch

from tconv_sparse.core import validation as v
from tconv_sparse.torch.functional import _call

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


def _padding_attribute(padding, ndim):
    """``padding`` as torch.nn stores it: a string, a tuple of ints, or of ``(lo, hi)`` pairs."""
    parsed = v.parse_padding(padding, ndim)
    if isinstance(parsed, str) or any(lo != hi for lo, hi in parsed):
        return parsed
    return tuple(lo for lo, _ in parsed)


def _check_layer(ndim, in_channels, out_channels, kernel_size, stride, dilation, groups):
    """Refuse bad constructor arguments by name, before ``torch.nn`` allocates the weight."""
    for name, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        v.parse_int_tuple(name, value, ndim, 1)
    groups = v.parse_groups(groups)
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise v.ParameterTypeError(f"{name} must be an int, got {value!r}")
        if value < 1 or value % groups:
            raise ValueError(f"{name} must be an int >= 1 divisible by groups={groups}, got {value!r}")


class _Conv:
    """``torch.nn.Conv{d}d`` with this module's :func:`conv` as its forward."""

    _ndim = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        _check_layer(self._ndim, in_channels, out_channels, kernel_size, stride, dilation, groups)
        padding = _padding_attribute(padding, self._ndim)
        padding_mode = v.parse_padding_mode(padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias,
                         "zeros", device, dtype)
        self.padding, self.padding_mode = padding, padding_mode

    def forward(self, input):  # noqa: A002 - torch.nn's argument name
        """Apply the layer: :func:`~tconv_sparse.torch.conv` with the layer's current attributes."""
        return _call(False, input, self.weight, self.bias,
                     (self.stride, self.padding, self.dilation, self.groups, self.padding_mode))


class _ConvTranspose:
    """``torch.nn.ConvTranspose{d}d`` with this module's :func:`conv_transpose` as its forward."""

    _ndim = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=None,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        _check_layer(self._ndim, in_channels, out_channels, kernel_size, stride, dilation, groups)
        padding = _padding_attribute(padding, self._ndim)
        output_padding = v.parse_optional_int_tuple("output_padding", output_padding, self._ndim, 0)
        if output_padding is None and not isinstance(padding, str):
            output_padding = (0,) * self._ndim
        padding_mode = v.parse_padding_mode(padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, 0, groups, bias, dilation,
                         "zeros", device, dtype)
        self.padding, self.output_padding, self.padding_mode = padding, output_padding, padding_mode

    def forward(self, input, output_size=None):  # noqa: A002 - torch.nn's argument name
        """Apply the layer: :func:`~tconv_sparse.torch.conv_transpose` with its current attributes.

        ``output_size`` (spatial, or with the leading axes) picks the size
        instead of ``output_padding``.
        """
        output_padding = self.output_padding
        if output_size is not None:
            output_size = list(output_size)
            if len(output_size) not in (self._ndim, input.ndim):
                raise ValueError(
                    f"output_size must have {self._ndim} (spatial) or {input.ndim} entries, got "
                    f"{output_size!r}"
                )
            output_size, output_padding = output_size[-self._ndim:], None
        return _call(True, input, self.weight, self.bias, (self.stride, self.padding, output_padding,
                                                           output_size, self.dilation, self.groups,
                                                           self.padding_mode))

    def extra_repr(self):
        """``torch.nn``'s representation: the arguments that differ from the defaults."""
        ones, zeros = (1,) * self._ndim, (0,) * self._ndim
        shown = [f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                 f"stride={self.stride}"]
        optional = (("padding", self.padding, zeros), ("dilation", self.dilation, ones),
                    ("output_padding", self.output_padding, zeros), ("groups", self.groups, 1))
        shown += [f"{name}={value}" for name, value, default in optional
                  if value not in (default, None)]
        if self.bias is None:
            shown.append("bias=False")
        if self.padding_mode != "zeros":
            shown.append(f"padding_mode={self.padding_mode}")
        return ", ".join(shown)


_CONV_DOC = """``torch.nn.Conv{d}d`` with every padding and padding mode, {extra}

    The constructor arguments, the parameters (``weight``, ``bias``) and their
    initialisation are ``torch.nn.Conv{d}d``'s, so a ``state_dict`` loads both
    ways; ``padding`` also takes per-side ``(lo, hi)`` pairs and ``"same"`` /
    ``"full"`` for any stride, and every ``padding_mode`` works. The forward is
    :func:`conv`.

    Examples
    --------
    >>> import torch, tconv_sparse.torch as tst
    >>> layer = tst.Conv{d}d(2, 4, 3, stride=2, padding="same", padding_mode="circular")
    >>> layer(torch.randn(1, 2, {sizes})).shape
    torch.Size([1, 4, {halves}])
    """

_CONV_TRANSPOSE_DOC = """``torch.nn.ConvTranspose{d}d`` with every padding mode and ``"same"``, {extra}

    The constructor arguments, the parameters (``weight``, ``bias``) and their
    initialisation are ``torch.nn.ConvTranspose{d}d``'s, so a ``state_dict``
    loads both ways; ``padding_mode`` takes all four modes (the transpose of
    the forward convolution's padding: the border is folded back), and
    ``padding`` also takes per-side ``(lo, hi)`` pairs and ``"valid"`` /
    ``"same"`` / ``"full"`` (Keras rule: ``"same"`` gives ``stride * n``).
    ``output_padding`` defaults to ``None``: 0 for numeric padding, as in
    PyTorch, and the Keras default for ``"valid"``/``"same"``. The forward is
    :func:`conv_transpose` and accepts ``output_size`` as PyTorch's does.

    Examples
    --------
    >>> import torch, tconv_sparse.torch as tst
    >>> layer = tst.ConvTranspose{d}d(4, 2, 3, stride=2, padding="same", padding_mode="circular")
    >>> layer(torch.randn(1, 4, {sizes})).shape
    torch.Size([1, 2, {doubles}])
    """


def _doc(template, d):
    sizes = ", ".join(["6"] * d)
    return template.format(d=d, extra=f"{d} spatial axis." if d == 1 else f"{d} spatial axes.",
                           sizes=sizes, halves=", ".join(["3"] * d), doubles=", ".join(["12"] * d))


class Conv1d(_Conv, torch.nn.Conv1d):
    __doc__ = _doc(_CONV_DOC, 1)
    _ndim = 1


class Conv2d(_Conv, torch.nn.Conv2d):
    __doc__ = _doc(_CONV_DOC, 2)
    _ndim = 2


class Conv3d(_Conv, torch.nn.Conv3d):
    __doc__ = _doc(_CONV_DOC, 3)
    _ndim = 3


class ConvTranspose1d(_ConvTranspose, torch.nn.ConvTranspose1d):
    __doc__ = _doc(_CONV_TRANSPOSE_DOC, 1)
    _ndim = 1


class ConvTranspose2d(_ConvTranspose, torch.nn.ConvTranspose2d):
    __doc__ = _doc(_CONV_TRANSPOSE_DOC, 2)
    _ndim = 2


class ConvTranspose3d(_ConvTranspose, torch.nn.ConvTranspose3d):
    __doc__ = _doc(_CONV_TRANSPOSE_DOC, 3)
    _ndim = 3
