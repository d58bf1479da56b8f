"""``conv`` and ``conv_transpose``: fetch or build a plan, apply it.

Same-geometry calls reuse one validated plan through the cache of
:mod:`tconv_sparse.plan.cache` (the weight enters its key by value); a call
repeated exactly (same arrays' shapes and dtypes, weight, arguments) goes
straight to the runner that call was checked for.
"""

from __future__ import annotations

from tconv_sparse.core import validation as v
from tconv_sparse.plan import FORWARD_METHODS, TRANSPOSE_METHODS, parse_method
from tconv_sparse.plan.cache import call_key, function_plan, remember_call, repeated_call

__all__ = ["conv", "conv_transpose", "FORWARD_METHODS", "TRANSPOSE_METHODS"]


def conv(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
         method="auto"):
    """N-D convolution (cross-correlation, as in PyTorch and Keras).

    ``y[n, o, i] = bias[o] + sum_{c, t} weight[o, c, t] * xpad[n, g(o) * C_in/G + c, i * stride + t * dilation]``

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
        The spatial rank is ``weight.ndim - 2``.
    bias : array_like, shape ``(C_out,)``, optional
    stride : int or tuple of int
        ``>= 1`` per axis.
    padding : int, tuple, or {"valid", "same", "full"}
        An int (both sides of every axis), a tuple of one int or one
        ``(lo, hi)`` pair per axis, or a string: ``"same"`` gives
        ``ceil(n / stride)`` outputs for any stride (TensorFlow/Keras rule),
        ``"full"`` pads ``k_eff - 1`` on both sides.
    dilation : int or tuple of int
        ``>= 1`` per axis.
    groups : int
        Divides both channel counts.
    padding_mode : {"zeros", "circular", "reflect", "replicate"}
        How the padding is filled, as ``torch.nn.functional.pad``.
    method : {"auto", "sparse", "direct", "im2col"}
        ``"sparse"`` is the definition ``C @ x``; ``"direct"`` a Numba loop;
        ``"im2col"`` unfolds windows and calls BLAS; ``"auto"`` picks the
        fastest for the case.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, *out)`` or ``(C_out, *out)``, dtype
        ``np.result_type(x, weight)`` (integers promoted to float64).

    Notes
    -----
    Non-finite values propagate as the stored entries of ``C`` propagate them,
    whatever the method: a NaN or infinite weight tap reaches only the outputs
    whose entry of ``C`` stores it (padding is never multiplied), a NaN in the
    data only the outputs that read it.

    Examples
    --------
    The seed's first picture: a 4x4 input and a 3x3 kernel give a 2x2 output.

    >>> import numpy as np, tconv_sparse as ts
    >>> x = np.arange(16.0).reshape(1, 4, 4)
    >>> ts.conv(x, np.ones((1, 1, 3, 3))).tolist()
    [[[45.0, 54.0], [81.0, 90.0]]]
    """
    arguments = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=padding_mode)
    key = call_key(False, x, weight, bias, method, arguments)
    replay = repeated_call(key)
    if replay is not None:
        return replay(x, bias)
    weight = v.as_weight(weight)
    method = parse_method(method, FORWARD_METHODS)
    x, batched = v.as_data("x", x, weight.ndim - 2)
    plan = function_plan(False, weight, x.shape[2 if batched else 1:], method, arguments)
    plan.geometry.check_channels("x", x.shape[1 if batched else 0])
    result = plan.apply(x if batched else x[None], bias=bias)
    remember_call(key, plan, x, batched)
    return result if batched else result[0]


def conv_transpose(y, weight, bias=None, *, stride=1, padding=0, output_padding=None, output_size=None,
                   dilation=1, groups=1, padding_mode="zeros", method="auto"):
    """N-D transposed convolution: ``C.T @ y`` for the convolution ``C`` with these parameters.

    The parameters are those of the forward convolution whose transpose is
    taken, so ``padding`` crops the output and ``padding_mode`` folds the border
    back (crop for zeros, wrap-add for circular, mirror-add for reflect,
    edge-add for replicate). No conjugation for complex data.

    Parameters
    ----------
    y : array_like, shape ``(N, C_in_t, *spatial)`` or ``(C_in_t, *spatial)``
    weight : array_like, shape ``(C_in_t, C_out_t // groups, *kernel_size)``
        PyTorch's ``ConvTranspose`` layout, i.e. the forward convolution's weight.
    bias : array_like, shape ``(C_out_t,)``, optional
    stride, dilation, groups, padding_mode
        As in :func:`conv` (of the forward convolution).
    padding : int, tuple, or {"valid", "same", "full"}
        Numeric padding and ``"full"`` follow PyTorch's output-size rule;
        ``"valid"``/``"same"`` follow Keras 3 / JAX (see
        :func:`conv_transpose_output_shape`).
    output_padding : int or tuple of int, optional
        Extra size on the high side, ``0 <= op < max(stride, dilation)``.
    output_size : tuple of int, optional
        The exact spatial output size, instead of ``output_padding``.
    method : {"auto", "sparse", "scatter", "gather", "zero_insert", "im2col"}
        ``"sparse"`` is the definition ``C.T @ y``; ``"scatter"`` adds each
        input times the kernel into the output (Numba); ``"gather"`` has each
        output collect its taps (Numba); ``"zero_insert"`` is the textbook
        fractionally-strided method (NumPy); ``"im2col"`` is one GEMM per tap, written
        into the output phase it lands on (no col2im).

    Returns
    -------
    numpy.ndarray
        ``(N, C_out_t, *out)`` or ``(C_out_t, *out)``.

    Notes
    -----
    Non-finite values propagate as the stored entries of ``C.T`` propagate
    them, whatever the method (see :func:`conv`).

    Examples
    --------
    CS231n's example: 2x2 input, 3x3 kernel, stride 2, padding 1 gives 3x3, or
    4x4 with ``output_padding=1``; Keras' ``"valid"`` gives 5x5.

    >>> import numpy as np, tconv_sparse as ts
    >>> y, w = np.ones((1, 2, 2)), np.ones((1, 1, 3, 3))
    >>> ts.conv_transpose(y, w, stride=2, padding=1).shape
    (1, 3, 3)
    >>> ts.conv_transpose(y, w, stride=2, padding=1, output_padding=1).shape
    (1, 4, 4)
    >>> ts.conv_transpose(y, w, stride=2, padding="valid")[0]
    array([[1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.],
           [2., 2., 4., 2., 2.],
           [1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.]])
    """
    arguments = dict(stride=stride, padding=padding, output_padding=output_padding, output_size=output_size,
                     dilation=dilation, groups=groups, padding_mode=padding_mode)
    key = call_key(True, y, weight, bias, method, arguments)
    replay = repeated_call(key)
    if replay is not None:
        return replay(y, bias)
    weight = v.as_weight(weight)
    method = parse_method(method, TRANSPOSE_METHODS)
    y, batched = v.as_data("y", y, weight.ndim - 2)
    plan = function_plan(True, weight, y.shape[2 if batched else 1:], method, arguments)
    plan.geometry.check_channels("y", y.shape[1 if batched else 0], transposed=True)
    result = plan.apply(y if batched else y[None], transposed=True, bias=bias)
    remember_call(key, plan, y, batched)
    return result if batched else result[0]
