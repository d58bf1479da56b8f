"""The PyTorch bridge's benchmark: one definition for ``scripts/bench_torch_bridge.py`` and asv.

:mod:`tconv_sparse.torch` against PyTorch's own transposed convolution on cases
PyTorch supports (zero padding), as a function (``conv_transpose`` against
``F.conv_transpose{1,2,3}d``) and as a 2-D layer (``ConvTranspose2d`` against
``torch.nn.ConvTranspose2d``), and the bridge with circular padding, which has
no PyTorch peer. Every contender of a case gets the same float32 tensors.
The functions import PyTorch (the ``torch`` extra); the tables here do not, so
asv lists the benchmarks without it.
"""

from __future__ import annotations

from tconv_sparse.bench.cases import SEED, ConvCase

__all__ = ["CASES", "CONTENDERS", "KINDS", "PASSES", "tensors", "forwards", "call"]

#: a single-channel image, a small- and a channel-heavy decoder batch, a 1-D and a 3-D layer
CASES = (
    ConvCase("image", 1, 1, 1, (64, 64), 3, 2),
    ConvCase("batch", 8, 16, 16, (32, 32), 3, 2),
    ConvCase("decoder", 8, 64, 64, (32, 32), 4, 2),
    ConvCase("signal", 8, 16, 16, (4096,), 5, 2),
    ConvCase("volume", 1, 4, 4, (32, 32, 32), 3, 2),
)
#: PyTorch (zero padding), the bridge with zero padding, the bridge with circular padding
CONTENDERS = ("torch", "bridge", "circular")
#: the functions, or the ``ConvTranspose2d`` layers (2-D cases only)
KINDS = ("conv_transpose", "ConvTranspose2d")
#: forward only, or forward and backward into the input, the weight and the bias
PASSES = ("fwd", "fwd+bwd")


def tensors(case):
    """``(y, weight, bias)`` of ``case``'s transposed convolution, float32, fixed seed.

    Examples
    --------
    >>> from tconv_sparse.bench.torch_bridge import CASES, tensors
    >>> [tuple(t.shape) for t in tensors(CASES[0])]
    [(1, 1, 32, 32), (1, 1, 3, 3), (1,)]
    """
    import torch

    generator = torch.Generator().manual_seed(SEED)
    y = torch.randn(case.input_shape("conv_transpose"), generator=generator)
    weight = torch.randn(case.weight_shape, generator=generator) / case.kernel
    return y, weight, torch.randn(case.out_channels, generator=generator)


def forwards(case, kind, weight, bias):
    """``{contender: forward(y, weight, bias)}``; the layers hold ``weight`` and ``bias``.

    Raises ``ValueError`` for the ``ConvTranspose2d`` kind of a case that is not 2-D.

    Examples
    --------
    >>> import torch
    >>> from tconv_sparse.bench.torch_bridge import CASES, forwards, tensors
    >>> y, weight, bias = tensors(CASES[0])
    >>> results = {name: f(y, weight, bias) for name, f in forwards(CASES[0], "ConvTranspose2d",
    ...                                                             weight, bias).items()}
    >>> bool(torch.allclose(results["bridge"], results["torch"], atol=1e-5))
    True
    >>> tuple(results["circular"].shape)
    (1, 1, 64, 64)
    """
    import torch

    import tconv_sparse.torch as tst

    arguments = case.keywords("conv_transpose")
    ndim = len(case.shape)
    if kind == "conv_transpose":
        transpose = getattr(torch.nn.functional, f"conv_transpose{ndim}d")
        return {"torch": lambda y, w, b: transpose(y, w, b, **arguments),
                "bridge": lambda y, w, b: tst.conv_transpose(y, w, b, **arguments),
                "circular": lambda y, w, b: tst.conv_transpose(y, w, b, padding_mode="circular",
                                                               **arguments)}
    if kind != "ConvTranspose2d" or ndim != 2:
        raise ValueError(f"kind must be 'conv_transpose', or 'ConvTranspose2d' for a 2-D case; got "
                         f"{kind!r} for {case.name}")
    shape = (case.channels, case.out_channels, case.kernel)
    layers = {"torch": torch.nn.ConvTranspose2d(*shape, **arguments),
              "bridge": tst.ConvTranspose2d(*shape, **arguments),
              "circular": tst.ConvTranspose2d(*shape, padding_mode="circular", **arguments)}
    for layer in layers.values():
        layer.load_state_dict({"weight": weight, "bias": bias})
    return {name: (lambda layer: lambda y, w, b: layer(y))(layer) for name, layer in layers.items()}


def call(forward, y, weight, bias, backward):
    """A call without arguments: ``forward``, or forward + ``sum().backward()`` into every input.

    Examples
    --------
    >>> import torch
    >>> from tconv_sparse.bench.torch_bridge import call
    >>> step = call(lambda y, w, b: y * w + b, *torch.ones(3), backward=True)
    >>> step()
    """
    if not backward:
        return lambda: forward(y, weight, bias)
    leaves = [t.detach().requires_grad_() for t in (y, weight, bias)]

    def step():
        for leaf in leaves:
            leaf.grad = None
        forward(*leaves).sum().backward()

    return step
