"""PyTorch bridge: differentiable ``conv`` and ``conv_transpose`` with every padding mode.

``import tconv_sparse.torch as tst`` (needs the ``torch`` extra:
``pip install "tconv-sparse[torch]"``; ``import tconv_sparse`` never imports
PyTorch). :func:`conv` and :func:`conv_transpose` take torch tensors and the
arguments of :func:`tconv_sparse.conv` and :func:`tconv_sparse.conv_transpose`
(rank 1-3, padding ints, per-axis tuples, per-side ``(lo, hi)`` pairs,
``"valid"``/``"same"``/``"full"``, every ``padding_mode``), and the modules
:class:`Conv1d` ... :class:`ConvTranspose3d` are ``torch.nn`` layers with
``torch.nn``'s constructor arguments and parameters, so a ``state_dict`` loads
both ways. PyTorch's own ``ConvTranspose`` layers support only zero padding
(pytorch/pytorch#46027) and no ``"same"`` for a stride above 1 (#80301).

How it is computed
------------------
Only torch operations are used, so autograd (double backward included), every
device and ``torch.compile`` work. :class:`~tconv_sparse.Geometry` validates the
arguments and derives every size and the per-side padding ``(lo, hi)``.

* **forward**: pad, then an unpadded ``F.conv{d}d``. Zero padding passes its
  symmetric part to the convolution and ``F.pad``-s the rest; the other modes
  concatenate, along each axis, the input with the border runs of the library's
  padding index map (:func:`~tconv_sparse.core.index_maps.padding_index`):
  slices of the input, reversed for reflect, repeated for replicate.
* **transposed**: the exact adjoint ``C.T = P.T S.T``: the unpadded
  ``F.conv_transpose{d}d`` (``S.T``) onto the padded canvas, then the padding
  map's transpose ``P.T`` folds the border back: a crop for zeros (PyTorch's
  own ``padding``/``output_padding`` where they express it, so that the call
  is PyTorch's own), and for the other modes an in-place add of each border
  run (consecutive, reversed or repeated positions of the same index map) onto
  the samples it copied: wrap-add, mirror-add, edge-add. Keras ``"same"``
  crops with ``hi < 0`` pad zeros instead.

A call is checked and planned once per signature (the arguments' exact types
and values, the tensors' types, shapes and dtypes) and the plan cached, so a
repeated call runs one torch function after a dictionary look-up (not while
``torch.compile`` traces: then the plan becomes part of the graph's constants).
The layers read their attributes on every call, as ``torch.nn``'s do.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401 - the extra's check, before the submodules need it
except ImportError as error:  # pragma: no cover - the extra is not installed
    raise ImportError("tconv_sparse.torch needs PyTorch: pip install 'tconv-sparse[torch]'") from error

from tconv_sparse.torch.functional import conv, conv_transpose
from tconv_sparse.torch.modules import (Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d,
                                        ConvTranspose3d)

__all__ = ["conv", "conv_transpose", "Conv1d", "Conv2d", "Conv3d",
           "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
