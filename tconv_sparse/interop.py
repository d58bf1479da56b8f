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
* ``input_shape`` is the spatial shape of the **layer's** input.
* A convolution layer computes ``layer(x) = C @ x + bias``. A *transposed*
  convolution layer computes ``layer(y) = C.T @ y + bias`` for the forward
  convolution ``C`` with the same weight; the returned operator is that ``C``
  (``op.T @ y`` is the layer, ``op.shape[0]`` its input size).
* The bias is not part of the (linear) operator.
* Vectors are flattened channel-first ``(C, *spatial)`` as everywhere in the
  package. PyTorch weights need no change: ``Conv`` is ``(C_out, C_in/groups,
  *k)`` and ``ConvTranspose`` is ``(C_in, C_out/groups, *k)``, the forward
  convolution's layout. Keras kernels ``(*k, C_in/groups, C_out)`` (``Conv``) and
  ``(*k, C_out, C_in)`` (``ConvTranspose``) are moved to that layout, and Keras'
  channels-last data ``(N, *spatial, C)`` is ``np.moveaxis(x, -1, 1)`` here.
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.operator import ConvOperator

__all__ = ["from_torch", "from_keras"]

_KERAS_CONV = {"Conv1D", "Conv2D", "Conv3D"}
_KERAS_TRANSPOSE = {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}


def _operator(weight, input_shape, transposed, method, **kwargs):
    """The ConvOperator of the forward convolution ``C`` of a (transposed) layer."""
    if not transposed:
        return ConvOperator(weight, input_shape, method=method, **kwargs)
    output_padding = kwargs.pop("output_padding")
    geometry = Geometry.transposed(weight.shape, input_shape, output_padding=output_padding, **kwargs)
    kwargs["padding"] = geometry.padding
    if min(hi for _, hi in geometry.padding) >= 0 and \
            Geometry.forward(weight.shape, geometry.input_shape, **kwargs) == geometry:
        return ConvOperator(weight, geometry.input_shape, method=method, **kwargs)
    raise ValueError(
        f"this transposed layer (input {geometry.output_shape}, padding {kwargs['padding']!r}, "
        f"output_padding {output_padding}) gives output {geometry.input_shape}, which is not a forward "
        f"convolution with non-negative padding of that output (its forward padding would be "
        f"{geometry.padding}); tconv_sparse.conv_transpose computes it, but a ConvOperator cannot hold it"
    )


def from_torch(module, input_shape, *, method="auto") -> ConvOperator:
    """The :class:`~tconv_sparse.ConvOperator` of a ``torch.nn.Conv{1,2,3}d`` or ``ConvTranspose{1,2,3}d``.

    Parameters
    ----------
    module : torch.nn.Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d or ConvTranspose3d
        Any padding (ints, ``"same"``, ``"valid"``), padding mode, groups,
        dilation and output_padding.
    input_shape : int or tuple of int
        Spatial shape of the module's input.
    method : str or (str, str)
        As in :class:`~tconv_sparse.ConvOperator`.

    Returns
    -------
    ConvOperator
        ``C`` of the module (``module(x) = C @ x + bias``), or for a
        transposed module the forward convolution ``C`` with
        ``module(y) = C.T @ y + bias``; weights as float arrays in the module's
        dtype (see the module notes for layouts).

    Raises
    ------
    ValueError
        For a module that is not one of the six convolution classes, an
        uninitialised lazy module, or a transposed module whose output is no
        forward convolution of its input (``output_padding >= stride``,
        possible when ``dilation > stride``).

    Examples
    --------
    >>> import numpy as np, pytest, tconv_sparse as ts
    >>> torch = pytest.importorskip("torch")
    >>> layer = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1).double()
    >>> op = ts.from_torch(layer, (4, 4))
    >>> op.shape                            # C: 3*4*4 transposed inputs <- 2*8*8 outputs
    (48, 128)
    >>> y = np.random.default_rng(0).standard_normal((3, 4, 4))
    >>> expected = layer(torch.from_numpy(y)[None])[0].detach().numpy()
    >>> bias = layer.bias.detach().numpy()[:, None, None]
    >>> np.allclose((op.T @ y.ravel()).reshape(2, 8, 8) + bias, expected)
    True
    """
    import torch

    classes = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
               torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    if not isinstance(module, classes):
        raise v.ParameterTypeError(
            f"module must be a torch.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d, got {type(module).__name__}"
        )
    if isinstance(module.weight, torch.nn.parameter.UninitializedParameter):
        raise ValueError(f"the lazy module {type(module).__name__} is not initialised yet; run it once first")
    weight = module.weight.detach().cpu().resolve_conj().numpy()
    padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
    kwargs = dict(stride=tuple(module.stride), padding=padding, dilation=tuple(module.dilation),
                  groups=module.groups, padding_mode=module.padding_mode)
    if module.transposed:
        kwargs["output_padding"] = tuple(module.output_padding)
    return _operator(weight, input_shape, module.transposed, method, **kwargs)


def from_keras(layer, input_shape, *, method="auto") -> ConvOperator:
    """The :class:`~tconv_sparse.ConvOperator` of a built Keras ``Conv{1,2,3}D`` or ``Conv{1,2,3}DTranspose``.

    Parameters
    ----------
    layer : keras.layers.Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose or Conv3DTranspose
        A built layer (it has weights): padding ``"valid"``, ``"same"`` or
        ``"causal"``, strides, dilation_rate, groups, output_padding, either
        data_format.
    input_shape : int or tuple of int
        Spatial shape of the layer's input.
    method : str or (str, str)
        As in :class:`~tconv_sparse.ConvOperator`.

    Returns
    -------
    ConvOperator
        As :func:`from_torch`; vectors are channel-first, so channels-last data
        is ``np.moveaxis(x, -1, 1)`` first. The kernel is moved to the
        ``(C_out, C_in/groups, *k)`` layout of the forward convolution.

    Raises
    ------
    ValueError
        For another layer type (e.g. depthwise or separable convolutions), an
        unbuilt layer, or a transposed layer whose output is no forward
        convolution of its input with non-negative padding (``"same"`` with a
        kernel smaller than the stride).

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
    >>> y = np.moveaxis(np.asarray(layer(x)) - layer.get_weights()[1], -1, 1)[0]
    >>> bool(np.allclose((op @ np.moveaxis(x, -1, 1)[0].ravel()).reshape(4, 5, 5), y, atol=1e-5))
    True
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
    transposed = name in _KERAS_TRANSPOSE
    padding = config["padding"]
    if padding == "causal":
        padding = tuple((d * (k - 1), 0) for k, d in zip(weight.shape[2:], config["dilation_rate"]))
    kwargs = dict(stride=tuple(config["strides"]), padding=padding,
                  dilation=tuple(config["dilation_rate"]), groups=config.get("groups", 1))
    if transposed:
        op = config.get("output_padding")
        kwargs["output_padding"] = None if op is None else tuple(np.broadcast_to(op, weight.ndim - 2))
    return _operator(weight, input_shape, transposed, method, **kwargs)
