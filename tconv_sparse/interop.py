"""Convolution layers of trained networks as :class:`~tconv_sparse.ConvOperator`.

:func:`from_torch` and :func:`from_keras` read a layer's weight and
hyper-parameters (stride, padding and padding mode, dilation, groups,
output_padding) and return the operator ``C`` of one sample, so that the
analyses of this package (:func:`~tconv_sparse.singular_values`,
:func:`~tconv_sparse.operator_norm`, :func:`~tconv_sparse.conv_matrix`
through ``op.matrix``) apply to the layer. Neither framework is imported by
this module; the layer object is inspected.

Conventions
-----------
* ``input_shape`` is the spatial shape of the tensor the layer is applied to.
* The result applies the layer, bias aside (the bias is kept on ``.bias``,
  ``None`` without one). A convolution layer computes ``layer(x) = C @ x + bias``
  and the result is the :class:`~tconv_sparse.ConvOperator` ``C``. A
  *transposed* convolution layer computes ``layer(y) = C.T @ y + bias`` for the
  forward convolution ``C`` with the same weight, and the result is the
  transposed operator ``A = C.T``: ``A @ y`` is the layer and ``A.T`` is the
  forward convolution ``C``.
* Vectors are flattened channel-first ``(C, *spatial)`` as everywhere in the
  package. PyTorch weights need no change: ``Conv`` is ``(C_out, C_in/groups,
  *k)`` and ``ConvTranspose`` is ``(C_in, C_out/groups, *k)``, the forward
  convolution's layout. Keras kernels ``(*k, C_in/groups, C_out)`` (``Conv``) and
  ``(*k, C_out, C_in)`` (``ConvTranspose``) are moved to that layout, and Keras'
  channels-last data ``(N, *spatial, C)`` is ``np.moveaxis(x, -1, 1)`` here.
* A transposed layer's forward convolution is taken with the smallest change
  of its high-side padding that keeps the geometry (Keras ``"same"`` with a
  kernel smaller than the stride crops past the canvas, a negative padding;
  ``output_padding >= stride`` extends past it): the high padding decides only
  how many outputs the forward convolution has, never which inputs a window reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.operator import ConvOperator

__all__ = ["from_torch", "from_keras"]

_KERAS_CONV = {"Conv1D", "Conv2D", "Conv3D"}
_KERAS_TRANSPOSE = {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}


@dataclass(frozen=True)
class _LayerArguments:
    """What a framework layer computes: the forward-layout weight, bias and geometry keywords."""

    weight: np.ndarray
    bias: np.ndarray | None
    transposed: bool
    keywords: dict


def _forward_keywords(weight_shape, input_shape, keywords):
    """``(forward input shape, keywords)`` of the forward convolution ``C`` of a transposed layer.

    ``C`` has non-negative padding; its high side is the layer's, clipped to the
    range ``[0, i*stride + k_eff - 1 - n - lo]`` that gives the layer's input size
    ``i`` as its output.
    """
    keywords = dict(keywords)
    output_padding = keywords.pop("output_padding")
    geometry = Geometry.transposed(weight_shape, input_shape, output_padding=output_padding, **keywords)
    pads = []
    for n, i, s, k_eff, (lo, hi) in zip(geometry.input_shape, geometry.output_shape, geometry.stride,
                                        geometry.effective_kernel_shape, geometry.padding):
        hi_max = i * s + k_eff - 1 - n - lo
        if hi_max < 0:
            raise ValueError(
                f"this transposed layer (input {geometry.output_shape}, padding {keywords['padding']!r}, "
                f"output_padding {output_padding}) gives output {geometry.input_shape}, which is not the "
                f"transpose of a forward convolution with non-negative padding of that output (without "
                f"high-side padding its forward convolution already has more than {geometry.output_shape} "
                "outputs); "
                "tconv_sparse.conv_transpose computes it, but a ConvOperator cannot hold it"
            )
        pads.append((lo, min(max(hi, 0), hi_max)))
    keywords["padding"] = tuple(pads)
    return geometry.input_shape, keywords


def _layer_operator(arguments: _LayerArguments, input_shape, method) -> LinearOperator:
    """The operator applying the layer (bias aside), with ``.bias`` attached."""
    if arguments.transposed:
        forward_shape, keywords = _forward_keywords(arguments.weight.shape, input_shape, arguments.keywords)
        result = ConvOperator(arguments.weight, forward_shape, method=method, **keywords).T
    else:
        result = ConvOperator(arguments.weight, input_shape, method=method, **arguments.keywords)
    result.bias = arguments.bias
    return result


def _torch_arguments(module) -> _LayerArguments:
    """Weight, bias and keywords of a ``torch.nn.Conv*d`` / ``ConvTranspose*d`` module."""
    import torch

    classes = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
               torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    if not isinstance(module, classes):
        raise v.ParameterTypeError(
            f"module must be a torch.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d, got {type(module).__name__}"
        )
    if isinstance(module.weight, torch.nn.parameter.UninitializedParameter):
        raise ValueError(f"the lazy module {type(module).__name__} is not initialised yet; run it once first")

    def array(tensor):
        return None if tensor is None else tensor.detach().cpu().resolve_conj().numpy()

    padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
    keywords = dict(stride=tuple(module.stride), padding=padding, dilation=tuple(module.dilation),
                    groups=module.groups, padding_mode=module.padding_mode)
    if module.transposed:
        keywords["output_padding"] = tuple(module.output_padding)
    return _LayerArguments(array(module.weight), array(module.bias), module.transposed, keywords)


def from_torch(module, input_shape, *, method="auto") -> LinearOperator:
    """The linear operator of a ``torch.nn.Conv{1,2,3}d`` or ``ConvTranspose{1,2,3}d`` module.

    Parameters
    ----------
    module : torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d or ConvTranspose3d
        Any padding (ints, ``"same"``, ``"valid"``), padding mode, groups,
        dilation and output_padding.
    input_shape : int or tuple of int
        Spatial shape of the tensor the module is applied to.
    method : str or (str, str)
        As in :class:`~tconv_sparse.ConvOperator`.

    Returns
    -------
    ConvOperator or scipy.sparse.linalg.LinearOperator
        ``A`` with ``A @ x.ravel() == module(x) - bias`` for one sample, the
        bias (or ``None``) on ``A.bias``. For a ``Conv`` module ``A`` is the
        :class:`~tconv_sparse.ConvOperator` ``C``; for a ``ConvTranspose``
        module it is ``C.T`` (``op.T`` of the forward ``ConvOperator`` ``C``
        with the module's weight), and ``A.T`` is the forward convolution.
        Weights are float arrays in the module's dtype (see the module notes
        for layouts).

    Raises
    ------
    ValueError
        For a module that is not one of the six convolution classes, an
        uninitialised lazy module, or a transposed module whose output is no
        forward convolution of its input (``output_padding >= stride`` beyond
        what the padding crops, possible when ``dilation > stride``).

    Examples
    --------
    >>> import numpy as np, pytest, tconv_sparse as ts
    >>> torch = pytest.importorskip("torch")
    >>> layer = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1).double()
    >>> A = ts.from_torch(layer, (4, 4))
    >>> A.shape                             # 2*8*8 outputs <- 3*4*4 inputs
    (128, 48)
    >>> y = np.random.default_rng(0).standard_normal((3, 4, 4))
    >>> expected = layer(torch.from_numpy(y)[None])[0].detach().numpy()
    >>> np.allclose((A @ y.ravel()).reshape(2, 8, 8) + A.bias[:, None, None], expected)
    True
    >>> A.T.shape                           # the forward convolution C
    (48, 128)
    """
    return _layer_operator(_torch_arguments(module), input_shape, method)


def _keras_arguments(layer) -> _LayerArguments:
    """Weight (moved to the forward layout), bias and keywords of a built Keras convolution layer.

    Reads ``type(layer).__name__``, ``layer.get_weights()`` and ``layer.get_config()``
    (``padding``, ``strides``, ``dilation_rate``, ``groups``, ``output_padding``).
    """
    name = type(layer).__name__
    if name not in _KERAS_CONV | _KERAS_TRANSPOSE:
        raise v.ParameterTypeError(
            f"layer must be a Keras Conv1D/2D/3D or Conv1DTranspose/2D/3D, got {name}"
        )
    weights = layer.get_weights()
    if not weights:
        raise ValueError(f"the Keras layer {layer.name!r} is not built yet (it has no weights); "
                         "call it on an input or build(input_shape) first")
    config = layer.get_config()
    # (*k, C_in/groups, C_out) for Conv, (*k, C_out, C_in) for Transpose -> (C_out|C_in, ., *k)
    weight = np.moveaxis(np.asarray(weights[0]), (-1, -2), (0, 1))
    ndim = weight.ndim - 2
    transposed = name in _KERAS_TRANSPOSE
    padding = config["padding"]
    if padding == "causal":
        padding = tuple((d * (k - 1), 0) for k, d in zip(weight.shape[2:], config["dilation_rate"]))
    keywords = dict(stride=tuple(np.broadcast_to(config["strides"], ndim).tolist()), padding=padding,
                    dilation=tuple(np.broadcast_to(config["dilation_rate"], ndim).tolist()),
                    groups=config.get("groups", 1))
    if transposed:
        op = config.get("output_padding")
        keywords["output_padding"] = None if op is None else tuple(np.broadcast_to(op, ndim).tolist())
    bias = np.asarray(weights[1]) if len(weights) > 1 else None
    return _LayerArguments(weight, bias, transposed, keywords)


def from_keras(layer, input_shape, *, method="auto") -> LinearOperator:
    """The linear operator of a built Keras ``Conv{1,2,3}D`` or ``Conv{1,2,3}DTranspose`` layer.

    Parameters
    ----------
    layer : keras.layers.Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose or Conv3DTranspose
        A built layer (it has weights): padding ``"valid"``, ``"same"`` or
        ``"causal"``, strides, dilation_rate, groups, output_padding, either
        data_format.
    input_shape : int or tuple of int
        Spatial shape of the tensor the layer is applied to.
    method : str or (str, str)
        As in :class:`~tconv_sparse.ConvOperator`.

    Returns
    -------
    ConvOperator or scipy.sparse.linalg.LinearOperator
        As :func:`from_torch`: ``A @ x.ravel() == layer(x) - bias`` (the
        transposed operator ``C.T`` for a ``Conv*DTranspose`` layer, whose
        ``A.T`` is the forward convolution), the bias on ``A.bias``. Vectors
        are channel-first, so channels-last data is ``np.moveaxis(x, -1, 1)``
        first. The kernel is moved to the ``(C_out, C_in/groups, *k)`` layout
        of the forward convolution.

    Raises
    ------
    ValueError
        For another layer type (e.g. depthwise or separable convolutions) or
        an unbuilt layer.

    Examples
    --------
    >>> import numpy as np, pytest, tconv_sparse as ts
    >>> keras = pytest.importorskip("keras")
    >>> layer = keras.layers.Conv2D(4, 3, strides=2, padding="same")
    >>> layer.build((None, 9, 9, 3))
    >>> op = ts.from_keras(layer, (9, 9))
    >>> op.shape                            # 4*5*5 outputs <- 3*9*9 inputs
    (100, 243)
    >>> x = np.random.default_rng(0).standard_normal((1, 9, 9, 3)).astype("float32")
    >>> y = np.moveaxis(np.asarray(layer(x)) - op.bias, -1, 1)[0]
    >>> bool(np.allclose((op @ np.moveaxis(x, -1, 1)[0].ravel()).reshape(4, 5, 5), y, atol=1e-5))
    True
    """
    return _layer_operator(_keras_arguments(layer), input_shape, method)
