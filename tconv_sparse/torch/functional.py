"""The functions of :mod:`tconv_sparse.torch`: :func:`conv` and :func:`conv_transpose` on torch tensors.

See the package's docstring for how they are computed.
"""

from __future__ import annotations

import collections

import torch
import torch.nn.functional as F

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.index_maps import padding_index

__all__ = ["conv", "conv_transpose"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


# ------------------------------------------------------------------ arguments
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


def _cast(dtype, batched, data, weight, bias):
    """The tensors in the result dtype, the data batched (after every check)."""
    data = data if batched else data.unsqueeze(0)
    return tuple(t if t is None or t.dtype == dtype else t.to(dtype) for t in (data, weight, bias))


def _validated(transposed, weight_shape, data_shape, bias_shape, options):
    """The :class:`Geometry` of a call (channels and bias checked), and the zero-mode crop plan."""
    if not transposed:
        geometry = Geometry.forward(weight_shape, data_shape[1:], **options)
        geometry.check_channels("x", data_shape[0])
        _check_bias(bias_shape, geometry.out_channels)
        return geometry, None
    geometry = Geometry.transposed(weight_shape, data_shape[1:], **options)
    geometry.check_channels("y", data_shape[0], transposed=True)
    _check_bias(bias_shape, geometry.in_channels)
    return geometry, _zeros_plan(geometry) if geometry.padding_mode == "zeros" else None


#: validated geometries by call signature (:func:`_geometry`), oldest dropped first
_GEOMETRIES: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 256


def _geometry(transposed, data, weight, bias, batched, **options):
    """:func:`_validated` for the call, cached per shapes and arguments (not while compiling).

    The arguments are checked once per geometry, so a training loop pays little
    more than PyTorch's own call. The key holds the arguments' ``repr``, which
    tells ``1``, ``1.0`` and ``True`` apart (equal as dictionary keys, not
    equally valid) and takes lists and arrays.
    """
    compiling = torch.compiler.is_compiling()
    shapes = (_sizes(weight, compiling), _sizes(data, compiling)[1 if batched else 0:],
              None if bias is None else _sizes(bias, compiling))
    if compiling:
        return _validated(transposed, *shapes, options)
    key = (transposed, *shapes, repr(tuple(options.values())))
    found = _GEOMETRIES.get(key)
    if found is None:
        found = _validated(transposed, *shapes, options)
        if len(_GEOMETRIES) >= _CACHE_SIZE:
            _GEOMETRIES.popitem(last=False)  # one call: safe with other threads
        _GEOMETRIES[key] = found
    return found


def _add_bias(result, bias):
    if bias is None:
        return result
    return result + bias.reshape(1, -1, *(1,) * (result.ndim - 2))


@torch.compiler.assume_constant_result
def _border_runs(n, lo, size, mode):
    """The border of one axis' padding index map as runs ``(position, length, target, step)``.

    The padded positions ``[lo, lo + n)`` copy the input itself; every other
    position copies the input ``padding_index(n, lo, size, mode)[position]``
    (never a zero: ``mode`` is not ``"zeros"``). Consecutive positions whose
    targets step by +1 (circular), -1 (reflect) or 0 (replicate) form one run,
    so padding and folding are slices of the input, not per-element indices.
    A constant for ``torch.compile`` (computed once per geometry, at tracing).
    """
    index = padding_index(n, lo, size, mode).tolist()
    border = [p for p in range(size) if not lo <= p < lo + n]
    runs, start = [], 0
    while start < len(border):
        end, step = start + 1, None
        while end < len(border) and border[end] == border[end - 1] + 1:
            difference = index[border[end]] - index[border[end - 1]]
            if difference not in (-1, 0, 1) or step not in (None, difference):
                break
            step, end = difference, end + 1
        runs.append((border[start], end - start, index[border[start]], 1 if step is None else step))
        start = end
    return tuple(runs)


def _run_source(x, axis, length, target, step):
    """The input slice a run copies (forward padding)."""
    if step == 1:
        return x.narrow(axis, target, length)
    if step == -1:
        return x.narrow(axis, target - length + 1, length).flip(axis)
    shape = list(x.shape)
    shape[axis] = length
    return x.narrow(axis, target, 1).expand(shape)


def _run_fold(piece, axis, target, step):
    """``(first target, values)`` a canvas run adds onto (the adjoint of :func:`_run_source`)."""
    if step == 1:
        return target, piece
    if step == -1:
        return target - piece.shape[axis] + 1, piece.flip(axis)
    return target, piece.sum(axis, keepdim=True)


def _pad_arguments(pads):
    """``F.pad``'s argument (last axis first) for per-axis ``(lo, hi)``; ``None`` when all zero."""
    flat = [side for lo_hi in reversed(pads) for side in lo_hi]
    return flat if any(flat) else None


# ------------------------------------------------------------------ forward
def _padded(x, geometry):
    """``(padded input, symmetric zero padding left to the convolution)``."""
    pads = geometry.padding
    if geometry.padding_mode == "zeros":
        native = tuple(min(lo, hi) for lo, hi in pads)
        rest = _pad_arguments([(lo - p, hi - p) for (lo, hi), p in zip(pads, native)])
        return (x if rest is None else F.pad(x, rest)), native
    for axis, (n, (lo, hi)) in enumerate(zip(geometry.input_shape, pads), start=2):
        if lo or hi:
            runs = _border_runs(n, lo, n + lo + hi, geometry.padding_mode)
            left = [_run_source(x, axis, *run[1:]) for run in runs if run[0] < lo]
            right = [_run_source(x, axis, *run[1:]) for run in runs if run[0] >= lo]
            x = torch.cat([*left, x, *right], axis)
    return x, (0,) * geometry.ndim


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
    dtype, batched = _check_data("x", x, weight, bias)
    geometry, _ = _geometry(False, x, weight, bias, batched, stride=stride, padding=padding,
                            dilation=dilation, groups=groups, padding_mode=padding_mode)
    x, weight, bias = _cast(dtype, batched, x, weight, bias)
    padded, native = _padded(x, geometry)
    result = _CONV[geometry.ndim](padded, weight, bias, stride=geometry.stride, padding=native,
                                  dilation=geometry.dilation, groups=geometry.groups)
    return result if batched else result[0]


# ------------------------------------------------------------------ transposed
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
    return tuple(native), tuple(output_padding), _pad_arguments(rest)


def _fold(canvas, geometry):
    """``P.T``: add every padded position onto the input position it copies.

    Per axis the centre ``[lo, lo + n)`` is the input itself (zero-extended
    when ``hi < 0``); each border run is added onto its targets.
    """
    for axis, (n, (lo, hi)) in enumerate(zip(geometry.input_shape, geometry.padding), start=2):
        if not (lo or hi):
            continue
        size = n + lo + hi
        runs = _border_runs(n, lo, size, geometry.padding_mode)
        pieces = [_run_fold(canvas.narrow(axis, position, length), axis, target, step)
                  for position, length, target, step in runs]
        centre = canvas.narrow(axis, lo, min(n, size - lo))
        if centre.shape[axis] < n:
            shape = list(centre.shape)
            shape[axis] = n - centre.shape[axis]
            canvas = torch.cat([centre, centre.new_zeros(shape)], axis)
        else:
            canvas = centre.clone(memory_format=torch.contiguous_format)
        for start, piece in pieces:
            canvas.narrow(axis, start, piece.shape[axis]).add_(piece)
    return canvas


def _transposed(y, weight, bias, geometry, plan):
    """``C.T @ y`` (plus bias) for a batched ``y``; ``plan`` is :func:`_zeros_plan`'s, or ``None``."""
    transpose = _CONV_TRANSPOSE[geometry.ndim]
    options = dict(stride=geometry.stride, dilation=geometry.dilation, groups=geometry.groups)
    if plan is not None:
        native, output_padding, rest = plan
        if rest is None:
            return transpose(y, weight, bias, padding=native, output_padding=output_padding, **options)
        canvas = transpose(y, weight, None, padding=native, output_padding=output_padding, **options)
        return _add_bias(F.pad(canvas, rest), bias)
    full, padded = _full_sizes(geometry)
    extra = tuple(p - f for p, f in zip(padded, full))
    canvas = transpose(y, weight, None, padding=0, output_padding=extra, **options)
    return _add_bias(_fold(canvas, geometry), bias)


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
    dtype, batched = _check_data("y", y, weight, bias)
    geometry, plan = _geometry(True, y, weight, bias, batched, stride=stride, padding=padding,
                               output_padding=output_padding, output_size=output_size,
                               dilation=dilation, groups=groups, padding_mode=padding_mode)
    y, weight, bias = _cast(dtype, batched, y, weight, bias)
    result = _transposed(y, weight, bias, geometry, plan)
    return result if batched else result[0]
