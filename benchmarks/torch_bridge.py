"""``tconv_sparse.torch`` (the PyTorch bridge) against PyTorch's own transposed convolution.

The cases and contenders are :mod:`tconv_sparse.bench.torch_bridge`'s (also timed by
``scripts/bench_torch_bridge.py``): ``torch`` is ``F.conv_transpose{1,2,3}d`` /
``torch.nn.ConvTranspose2d`` with zero padding, ``bridge`` the bridge on the same case, and
``circular`` the bridge with ``padding_mode="circular"`` (no PyTorch peer).
"""

from tconv_sparse.bench import torch_bridge


class TorchBridge:
    """One case, kind (function or 2-D layer), contender and pass (forward, or forward+backward).

    ``setup`` builds the tensors from the fixed seed and calls the contender once. Without
    PyTorch, and for the layer kind of a case that is not 2-D, it raises
    ``NotImplementedError`` (asv skips the benchmark).
    """

    param_names = ["case", "kind", "contender", "pass"]
    params = [[case.name for case in torch_bridge.CASES], list(torch_bridge.KINDS),
              list(torch_bridge.CONTENDERS), list(torch_bridge.PASSES)]
    timeout = 300

    def setup(self, case, kind, contender, which):
        case = next(c for c in torch_bridge.CASES if c.name == case)
        try:
            y, weight, bias = torch_bridge.tensors(case)
            forward = torch_bridge.forwards(case, kind, weight, bias)[contender]
        except ImportError as error:
            raise NotImplementedError(f"PyTorch is not importable ({error})") from None
        except ValueError as error:
            raise NotImplementedError(str(error)) from None
        self.run = torch_bridge.call(forward, y, weight, bias, backward=which == "fwd+bwd")
        self.run()

    def time_call(self, case, kind, contender, which):
        self.run()
