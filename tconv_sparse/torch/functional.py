"""The functions of :mod:`tconv_sparse.torch`: :func:`conv` and :func:`conv_transpose` on torch tensors.

See the package's docstring for how they are computed. A call is prepared
once per signature (:func:`_prepared`): the arguments and tensors are checked,
the :class:`Geometry` derived and turned into a plan, one torch function and
its positional arguments (:func:`_forward_plan`, :func:`_transposed_plan`).
Later calls with the same signature look the plan up and run it.
"""

from __future__ import annotations

import collections
import marshal

import torch
import torch.nn.functional as F

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.torch._borders import border_pad, border_plan, fold, pad_arguments

__all__ = ["conv", "conv_transpose"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
#: the arguments after the tensors, in the order :func:`_call` takes them (False: conv, True: transposed)
_ARGUMENTS = {False: ("stride", "padding", "dilation", "groups", "padding_mode"),
             True: ("stride", "padding", "output_padding", "output_size", "dilation", "groups",
                    "padding_mode")}


# ------------------------------------------------------------------ checks
def _check_tensor(name, value, optional=False):
    if (value is None and optional) or isinstance(value, torch.Tensor):
        return
    raise v.ParameterTypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")


def _check_data(name, data, weight, bias):
    """Check the tensors' types and ranks; return ``(dtype, batched)`` of the result."""
    _check_tensor(name, data)
    _check_tensor("weight", weight)
    _check_tensor("bias", bias, optional=True)
    if not 3 <= weight.ndim <= 5:
        raise ValueError(
            "weight must have shape (C_out, C_in // groups, *kernel_size) with 1, 2 or 3 spatial "
            f"axes, got shape {tuple(weight.shape)}"
        )
    spatial = weight.ndim - 2
    if data.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(
            f"{name} must have {spatial + 1} (unbatched C, *spatial) or {spatial + 2} (batched N, C, "
            f"*spatial) dimensions for a weight with {spatial} spatial axes, got shape "
            f"{tuple(data.shape)}"
        )
    dtype = data.dtype
    if weight.dtype != dtype:
        dtype = torch.promote_types(dtype, weight.dtype)
    if bias is not None and bias.dtype != dtype:
        dtype = torch.promote_types(dtype, bias.dtype)
    if not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.float64
    return dtype, data.ndim == spatial + 2


def _sizes(tensor, compiling):
    """The shape as ints (``torch.compile`` specialises symbolic sizes: one graph per shape)."""
    return tuple(map(int, tensor.shape)) if compiling else tuple(tensor.shape)


def _check_bias(bias_shape, channels):
    if bias_shape is not None and bias_shape != (channels,):
        raise ValueError(
            f"bias must have shape ({channels},) (one per output channel), got {bias_shape}"
        )


# ------------------------------------------------------------------ plans
def _pad_then_conv(x, weight, bias, pad, pads, convolution, *options):
    """``convolution(pad(x, pads), weight, bias, *options)``: a forward plan's function."""
    return convolution(pad(x, pads), weight, bias, *options)


def _transpose_then_crop(y, weight, bias, crop, crops, transpose, *options):
    """``crop(transpose(y, weight, None, *options), crops) + bias``: a transposed plan's function."""
    canvas = crop(transpose(y, weight, None, *options), crops)
    return canvas if bias is None else canvas + bias.reshape(1, -1, *(1,) * (canvas.ndim - 2))


def _forward_plan(geometry):
    """``(function, arguments)``: ``function(x, weight, bias, *arguments)`` is ``C x`` (plus bias).

    Zero padding passes its symmetric part to ``F.conv{d}d`` and ``F.pad``-s
    the rest; the other modes pad with the border runs (:func:`border_pad`).
    """
    convolution, pads = _CONV[geometry.ndim], geometry.padding
    if geometry.padding_mode != "zeros":
        return _pad_then_conv, (border_pad, border_plan(geometry), convolution, geometry.stride,
                                (0,) * geometry.ndim, geometry.dilation, geometry.groups)
    native = tuple(min(lo, hi) for lo, hi in pads)
    options = (geometry.stride, native, geometry.dilation, geometry.groups)
    rest = pad_arguments([(lo - p, hi - p) for (lo, hi), p in zip(pads, native)])
    return (convolution, options) if rest is None else (_pad_then_conv, (F.pad, rest, convolution,
                                                                         *options))


def _full_sizes(geometry):
    """Per axis: the unpadded transposed canvas ``(i - 1) * s + k_eff`` and the padded size."""
    full = tuple((i - 1) * s + k for i, s, k in zip(geometry.output_shape, geometry.stride,
                                                     geometry.effective_kernel_shape))
    return full, geometry.padded_shape


def _zeros_plan(geometry):
    """PyTorch's ``(padding, output_padding)`` and the residual ``F.pad`` of the zero-mode crop.

    PyTorch keeps canvas positions ``[p, full - p + q)``; the result is
    ``[lo, lo + n)``. ``p = min(lo, hi)`` and the smallest sufficient ``q``
    leave nothing to do in PyTorch's own cases; any rest is cropped (or
    zero-extended when Keras "same" gives ``hi < 0``).
    """
    native, output_padding, rest = [], [], []
    full, _ = _full_sizes(geometry)
    for f, n, (lo, hi), s, d in zip(full, geometry.input_shape, geometry.padding, geometry.stride,
                                    geometry.dilation):
        p = max(0, min(lo, hi))
        q = min(max(0, lo + n - (f - p)), max(s, d) - 1)
        native.append(p)
        output_padding.append(q)
        rest.append((p - lo, lo + n - (f - p + q)))
    return tuple(native), tuple(output_padding), pad_arguments(rest)


def _transposed_plan(geometry):
    """``(function, arguments)``: ``function(y, weight, bias, *arguments)`` is ``C.T y`` (plus bias).

    ``C.T = P.T S.T``: the unpadded ``F.conv_transpose{d}d`` onto the padded
    canvas, then the fold of the border (:func:`fold`). For zero padding the
    fold is a crop, PyTorch's own ``padding``/``output_padding`` where they
    express it (then the plan is PyTorch's call), with any rest ``F.pad``-ed.
    """
    transpose = _CONV_TRANSPOSE[geometry.ndim]
    if geometry.padding_mode == "zeros":
        native, output_padding, rest = _zeros_plan(geometry)
        options = (geometry.stride, native, output_padding, geometry.groups, geometry.dilation)
        return (transpose, options) if rest is None else (_transpose_then_crop, (F.pad, rest, transpose,
                                                                                 *options))
    full, padded = _full_sizes(geometry)
    extra = tuple(p - f for p, f in zip(padded, full))
    return _transpose_then_crop, (fold, border_plan(geometry), transpose, geometry.stride, 0, extra,
                                  geometry.groups, geometry.dilation)


# ------------------------------------------------------------------ calls
def _validated(transposed, data, weight, bias, arguments, compiling):
    """Check a call and plan it: ``(batched, dtype to cast to or None, function, its arguments)``."""
    dtype, batched = _check_data("y" if transposed else "x", data, weight, bias)
    weight_shape, data_shape = _sizes(weight, compiling), _sizes(data, compiling)[1 if batched else 0:]
    bias_shape = None if bias is None else _sizes(bias, compiling)
    options = dict(zip(_ARGUMENTS[transposed], arguments))
    if transposed:
        geometry = Geometry.transposed(weight_shape, data_shape[1:], **options)
        geometry.check_channels("y", data_shape[0], transposed=True)
        _check_bias(bias_shape, geometry.in_channels)
        plan = _transposed_plan(geometry)
    else:
        geometry = Geometry.forward(weight_shape, data_shape[1:], **options)
        geometry.check_channels("x", data_shape[0])
        _check_bias(bias_shape, geometry.out_channels)
        plan = _forward_plan(geometry)
    cast = not all(t is None or t.dtype == dtype for t in (data, weight, bias))
    return (batched, dtype if cast else None, *plan)


def _plain(value):
    """Whether ``value`` holds only exact ints, strings and ``None``, in tuples and lists."""
    if type(value) in (tuple, list):
        return all(_plain(item) for item in value)
    return type(value) in (int, str, type(None))


#: prepared calls by signature (:func:`_prepared`), oldest dropped first
_CALLS: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 256


def _prepared(transposed, data, weight, bias, arguments):
    """:func:`_validated` for the call, cached per signature (not while ``torch.compile`` traces).

    The signature is the arguments' ``marshal`` serialisation, which is
    type-exact (``1``, ``True`` and ``1.0``, tuples and lists, write
    differently, subclasses and NumPy scalars fail or write as bytes), and each
    tensor's type, shape and dtype. Only calls whose arguments are
    :func:`_plain` are stored, so a hit stands for a call that passed every
    check with arguments of the very same types and values, and tensors of the
    same types, shapes and dtypes: the checks it would run cannot fail.
    Other calls are checked every time. While compiling the plan becomes
    part of the graph's constants.
    """
    if torch.compiler.is_compiling():
        return _validated(transposed, data, weight, bias, arguments, True)
    try:
        key = (transposed, marshal.dumps(arguments, 2), type(data), data.shape, data.dtype,
               type(weight), weight.shape, weight.dtype,
               None if bias is None else (type(bias), bias.shape, bias.dtype))
    except (AttributeError, ValueError):  # not tensors, or arguments marshal cannot write
        return _validated(transposed, data, weight, bias, arguments, False)
    found = _CALLS.get(key)
    if found is None:
        found = _validated(transposed, data, weight, bias, arguments, False)
        if _plain(arguments):
            if len(_CALLS) >= _CACHE_SIZE:
                _CALLS.popitem(last=False)  # one call: safe with other threads
            _CALLS[key] = found
    return found


def _call(transposed, data, weight, bias, arguments):
    """:func:`conv` (``transposed`` False) or :func:`conv_transpose`; ``arguments`` as ``_ARGUMENTS``."""
    batched, dtype, function, options = _prepared(transposed, data, weight, bias, arguments)
    if dtype is not None:
        data, weight, bias = (t if t is None or t.dtype == dtype else t.to(dtype)
                              for t in (data, weight, bias))
    if batched:
        return function(data, weight, bias, *options)
    return function(data.unsqueeze(0), weight, bias, *options)[0]


def conv(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """N-D convolution (cross-correlation) of torch tensors, every padding and padding mode.

    The arguments and the result are those of :func:`tconv_sparse.conv`, on
    torch tensors: padding may be an int, a tuple of ints or of ``(lo, hi)``
    pairs, or ``"valid"``, ``"same"`` (any stride, TensorFlow/Keras rule) or
    ``"full"``. Differentiable (double backward too), on any device.

    Parameters
    ----------
    x : torch.Tensor, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
    weight : torch.Tensor, shape ``(C_out, C_in // groups, *kernel_size)``
        1, 2 or 3 spatial axes.
    bias : torch.Tensor, shape ``(C_out,)``, optional
    stride, padding, dilation, groups, padding_mode
        As in :func:`tconv_sparse.conv`.

    Returns
    -------
    torch.Tensor
        ``(N, C_out, *out)`` or ``(C_out, *out)``; the dtype is the promoted
        dtype of the inputs (integers give float64).

    Examples
    --------
    ``"same"`` with stride 2 and circular padding, which ``F.conv2d`` has not:

    >>> import torch, tconv_sparse.torch as tst
    >>> x, w = torch.ones(1, 1, 5, 5), torch.ones(1, 1, 3, 3)
    >>> tst.conv(x, w, stride=2, padding="same", padding_mode="circular")
    tensor([[[[9., 9., 9.],
              [9., 9., 9.],
              [9., 9., 9.]]]])
    """
    return _call(False, x, weight, bias, (stride, padding, dilation, groups, padding_mode))


# ------------------------------------------------------------------ transposed
def conv_transpose(y, weight, bias=None, *, stride=1, padding=0, output_padding=None, output_size=None,
                   dilation=1, groups=1, padding_mode="zeros"):
    """N-D transposed convolution of torch tensors: the exact adjoint of :func:`conv`.

    The arguments and the result are those of
    :func:`tconv_sparse.conv_transpose`, on torch tensors: the parameters are
    the forward convolution's, so every ``padding_mode`` works (the border is
    folded back: crop for zeros, wrap-add for circular, mirror-add for
    reflect, edge-add for replicate), and ``"valid"``/``"same"`` follow Keras 3
    / JAX for any stride. Differentiable (double backward too), on any device.

    Parameters
    ----------
    y : torch.Tensor, shape ``(N, C_in_t, *spatial)`` or ``(C_in_t, *spatial)``
    weight : torch.Tensor, shape ``(C_in_t, C_out_t // groups, *kernel_size)``
        PyTorch's ``ConvTranspose`` layout (the forward convolution's weight).
    bias : torch.Tensor, shape ``(C_out_t,)``, optional
    stride, padding, output_padding, output_size, dilation, groups, padding_mode
        As in :func:`tconv_sparse.conv_transpose`; ``output_size`` is spatial.

    Returns
    -------
    torch.Tensor
        ``(N, C_out_t, *out)`` or ``(C_out_t, *out)``.

    Examples
    --------
    Circular padding folds the border back around: upsampling a constant
    periodic signal gives a pattern that is periodic to the end, where zero
    padding (PyTorch's only mode) drops the wrapped tap of the last output:

    >>> import torch, tconv_sparse.torch as tst
    >>> y, w = torch.ones(1, 1, 4), torch.ones(1, 1, 3)
    >>> tst.conv_transpose(y, w, stride=2, padding=1, output_padding=1, padding_mode="circular")
    tensor([[[1., 2., 1., 2., 1., 2., 1., 2.]]])
    >>> tst.conv_transpose(y, w, stride=2, padding=1, output_padding=1)
    tensor([[[1., 2., 1., 2., 1., 2., 1., 1.]]])

    ``"same"`` for any stride gives ``stride * n`` outputs (Keras rule):

    >>> tst.conv_transpose(y, w, stride=2, padding="same").shape
    torch.Size([1, 1, 8])
    """
    return _call(True, y, weight, bias, (stride, padding, output_padding, output_size, dilation, groups,
                                         padding_mode))
