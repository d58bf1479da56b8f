"""The benchmark grid: one definition shared by ``tconv-sparse bench`` and the asv suite.

A :class:`ConvCase` is one layer shape, written the way a decoder layer is
read: ``batch x channels -> out_channels x *shape``, kernel ``k``, stride
``s``. ``channels``/``out_channels`` are those of the transposed convolution,
and ``shape`` is its output (upsampled) spatial shape. The forward
convolution of the same case uses the same weight, so it maps
``(batch, out_channels, *shape)`` down to ``(batch, channels, *small_shape)``
and the transposed convolution maps back. Padding is ``(k - 1) // 2`` and
``output_padding`` is chosen so that the transposed output is exactly
``shape``, which is what a decoder layer does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

import tconv_sparse as ts

__all__ = [
    "ConvCase",
    "DIRECTIONS",
    "DTYPES",
    "QUICK_DTYPES",
    "SEED",
    "CONV_CASES",
    "CASES",
    "QUICK_CASES",
    "MATRIX_CASES",
    "APPLY_CASES",
    "APPLY_COLUMNS",
    "LSQR_CASES",
    "LSQR_ITERATIONS",
    "LSQR_METHODS",
    "DEBLUR_ITERATIONS",
    "DEBLUR_DAMP",
    "DEBLUR_PADDING",
    "deblur_problem",
    "find_cases",
]

#: the two operations benchmarked: the transposed convolution ``C.T y`` and the convolution ``C x``
DIRECTIONS = ("conv_transpose", "conv")
DTYPES = ("float32", "float64")
#: dtypes of the quick default of ``tconv-sparse bench``
QUICK_DTYPES = ("float32",)
#: every array in the benchmarks is drawn from ``numpy.random.default_rng(SEED)``
SEED = 0


@dataclass(frozen=True)
class ConvCase:
    """One layer shape of the grid.

    Parameters
    ----------
    regime : str
        The family the case belongs to (``"image"``, ``"batch"``, ...); the
        first part of :attr:`name`, so ``--case image`` selects the family.
    batch : int
        Samples per call.
    channels : int
        Input channels of the transposed convolution (output channels of the forward one).
    out_channels : int
        Output channels of the transposed convolution (input channels of the forward one).
    shape : tuple of int
        Spatial output shape of the transposed convolution (input shape of the forward one).
    kernel : int
        Kernel size on every axis.
    stride : int
        Stride on every axis.
    quick : bool
        Whether the case belongs to the quick default of ``tconv-sparse bench``.
    """

    regime: str
    batch: int
    channels: int
    out_channels: int
    shape: tuple
    kernel: int
    stride: int
    quick: bool = False

    @property
    def name(self) -> str:
        """``regime:NxC->C'xHxW:kKsS``, e.g. ``decoder:8x64->64x32x32:k3s2``."""
        spatial = "x".join(map(str, self.shape))
        return (f"{self.regime}:{self.batch}x{self.channels}->{self.out_channels}x{spatial}:"
                f"k{self.kernel}s{self.stride}")

    @property
    def padding(self) -> int:
        """``(kernel - 1) // 2`` on both sides of every axis."""
        return (self.kernel - 1) // 2

    @property
    def kernel_shape(self) -> tuple:
        return (self.kernel,) * len(self.shape)

    @property
    def weight_shape(self) -> tuple:
        """``(channels, out_channels, *kernel)``: PyTorch's ``ConvTranspose`` layout,
        which is the forward convolution's ``(C_out, C_in, *kernel)``."""
        return (self.channels, self.out_channels, *self.kernel_shape)

    @property
    def small_shape(self) -> tuple:
        """Spatial input shape of the transposed convolution (output of the forward one)."""
        return ts.conv_output_shape(self.shape, self.kernel_shape, stride=self.stride,
                                    padding=self.padding)

    @property
    def output_padding(self) -> tuple:
        """The ``output_padding`` that makes the transposed output exactly :attr:`shape`."""
        return tuple((n + 2 * self.padding - self.kernel) % self.stride for n in self.shape)

    @property
    def nnz(self) -> int:
        """Nonzeros of the sparse matrix ``C`` of one sample (computed, not built)."""
        return ts.Geometry.forward(self.weight_shape, self.shape, stride=self.stride,
                                   padding=self.padding).nnz

    def keywords(self, direction: str) -> dict:
        """Keyword arguments of ``direction`` for this case; valid for tconv_sparse and torch alike."""
        keywords = {"stride": self.stride, "padding": self.padding}
        if direction == "conv_transpose":
            keywords["output_padding"] = self.output_padding
        return keywords

    def input_shape(self, direction: str) -> tuple:
        """Full shape ``(N, C, *spatial)`` of the input of ``direction``."""
        if direction == "conv_transpose":
            return (self.batch, self.channels, *self.small_shape)
        return (self.batch, self.out_channels, *self.shape)

    def output_shape(self, direction: str) -> tuple:
        """Full shape ``(N, C, *spatial)`` of the output of ``direction``."""
        if direction == "conv_transpose":
            return (self.batch, self.out_channels, *self.shape)
        return (self.batch, self.channels, *self.small_shape)

    def weight(self, dtype) -> np.ndarray:
        """The weight in ``dtype``, drawn from :data:`SEED` and scaled by ``1 / sqrt(fan_in)``.

        The scaling keeps outputs of order one, so relative errors are
        meaningful in float32.
        """
        rng = np.random.default_rng(SEED)
        scale = 1 / math.sqrt(math.prod(self.weight_shape[1:]))
        return (scale * rng.standard_normal(self.weight_shape)).astype(dtype)

    def data(self, direction: str, dtype) -> tuple[np.ndarray, np.ndarray]:
        """``(input, weight)`` of ``direction`` in ``dtype``, drawn from :data:`SEED`."""
        rng = np.random.default_rng(SEED + 1)
        return rng.standard_normal(self.input_shape(direction)).astype(dtype), self.weight(dtype)

    def matrix(self, dtype) -> sp.csr_array:
        """The sparse matrix ``C`` of one sample, ``tconv_sparse.conv_matrix`` of the weight."""
        return ts.conv_matrix(self.weight(dtype), self.shape, **self.keywords("conv"))

    def operator(self, method, dtype) -> ts.ConvOperator:
        """``ConvOperator`` of the case with ``method`` (a name or a ``(forward, transpose)`` pair)."""
        return ts.ConvOperator(self.weight(dtype), self.shape, method=method, **self.keywords("conv"))

    def columns(self, direction: str, count: int, dtype) -> np.ndarray:
        """``count`` flattened samples of the input of ``direction``, one per column.

        Shape ``(C.shape[1], count)`` for ``"conv"`` (``C @ x``) and
        ``(C.shape[0], count)`` for ``"conv_transpose"`` (``C.T @ y``).
        """
        rng = np.random.default_rng(SEED + 2)
        return rng.standard_normal((math.prod(self.input_shape(direction)[1:]), count)).astype(dtype)


def _grid() -> tuple[ConvCase, ...]:
    images = [ConvCase("image", 1, 1, 1, (512, 512), k, s, quick=(k, s) == (3, 2))
              for k in (3, 4, 5) for s in (1, 2)]
    batches = [ConvCase("batch", 8, 16, 16, (32, 32), 3, s, quick=s == 2) for s in (1, 2)]
    decoders = [
        ConvCase("decoder", 8, 64, 64, (32, 32), 3, 2, quick=True),
        ConvCase("decoder", 8, 64, 64, (64, 64), 4, 2),
        ConvCase("decoder", 32, 128, 64, (16, 16), 3, 2),
    ]
    signals = [ConvCase("signal", 1, 1, 1, (65536,), 9, s, quick=s == 2) for s in (1, 2, 3, 4)]
    volumes = [ConvCase("volume", 1, 4, 4, (32, 32, 32), 3, 2, quick=True)]
    # per-call cost: the transposed convolution of 1x1x8x8 (k3), 1x1x64 (k9), 1x1x4x4x4 (k3), stride 2
    tiny = [ConvCase("tiny", 1, 1, 1, shape, k, 2, quick=len(shape) == 2)
            for shape, k in (((16, 16), 3), ((128,), 9), ((8, 8, 8), 3))]
    return (*images, *batches, *decoders, *signals, *volumes, *tiny)


#: every conv / conv_transpose case, in table order
CONV_CASES = _grid()
#: the quick default of ``tconv-sparse bench``: one case per regime
QUICK_CASES = tuple(case for case in CONV_CASES if case.quick)
#: 64 -> 64 channels at 72x72, k3: about 1.9e8 nonzeros (2.1 GiB in float64), for conv_matrix only
_LARGEST_MATRIX = ConvCase("matrix", 1, 64, 64, (72, 72), 3, 1)
#: name -> case, for every case of this module (asv parameters are case names)
CASES = {case.name: case for case in (*CONV_CASES, _LARGEST_MATRIX)}

#: ``conv_matrix`` build sizes, from 5.9e5 to 1.9e8 nonzeros
MATRIX_CASES = (
    "image:1x1->1x512x512:k3s2",
    "volume:1x4->4x32x32x32:k3s2",
    "decoder:8x64->64x32x32:k3s2",
    "decoder:8x64->64x64x64:k4s2",
    "matrix:1x64->64x72x72:k3s1",
)
#: matrices for ``C @ x`` and ``C.T @ y``
APPLY_CASES = ("image:1x1->1x512x512:k5s1", "decoder:8x64->64x32x32:k3s2")
#: number of vectors per product: a single vector and a batch of columns
APPLY_COLUMNS = (1, 32)
#: ``ConvOperator`` + ``scipy.sparse.linalg.lsqr`` problems
LSQR_CASES = ("image:1x1->1x512x512:k5s1", "volume:1x4->4x32x32x32:k3s2")
#: fixed iteration count of the lsqr benchmark (``iter_lim``, tolerances off)
LSQR_ITERATIONS = 20
#: ``ConvOperator(method=...)`` choices: label -> method
LSQR_METHODS = {
    "auto": "auto",
    "sparse": "sparse",
    "direct+gather": ("direct", "gather"),
    "im2col": "im2col",
}


#: the deblurring benchmark (issue 11, asv ``DeblurLsqr200`` and ``scripts/bench_lsqr.py``):
#: ``deconvolve(h, weight, padding=DEBLUR_PADDING, solver="lsqr", damp=DEBLUR_DAMP,
#: maxiter=DEBLUR_ITERATIONS, tol=0)`` on :func:`deblur_problem`
DEBLUR_ITERATIONS, DEBLUR_DAMP, DEBLUR_PADDING = 200, 0.05, 3


def deblur_problem(dtype="float64") -> tuple[np.ndarray, np.ndarray]:
    """``(h, weight)``: a 64x64 single-channel random image blurred by a 7x7 Gaussian.

    The PSF has sigma 1.5 and unit sum; zero padding 3 keeps the size; the
    noise has standard deviation 0.01. Drawn from :data:`SEED`.

    Examples
    --------
    >>> from tconv_sparse.bench.cases import deblur_problem
    >>> h, weight = deblur_problem("float32")
    >>> h.shape, weight.shape, h.dtype.name, round(float(weight.sum()), 6)
    ((1, 64, 64), (1, 1, 7, 7), 'float32', 1.0)
    """
    rng = np.random.default_rng(SEED)
    taps = np.exp(-(np.arange(7) - 3) ** 2 / (2 * 1.5 ** 2))
    weight = (np.multiply.outer(taps, taps) / taps.sum() ** 2)[None, None].astype(dtype)
    h = ts.conv(rng.random((1, 64, 64)).astype(dtype), weight, padding=DEBLUR_PADDING)
    return h + (0.01 * rng.standard_normal(h.shape)).astype(dtype), weight


def find_cases(substrings=None, *, full: bool = False) -> tuple[ConvCase, ...]:
    """The conv cases to run.

    Parameters
    ----------
    substrings : sequence of str, optional
        Keep the cases whose name contains any of them; given, they select
        from the whole grid.
    full : bool
        Without ``substrings``: the whole grid if true, else :data:`QUICK_CASES`.

    Examples
    --------
    >>> from tconv_sparse.bench.cases import find_cases
    >>> [case.name for case in find_cases(["signal"]) if case.stride < 3]
    ['signal:1x1->1x65536:k9s1', 'signal:1x1->1x65536:k9s2']
    """
    if substrings:
        return tuple(case for case in CONV_CASES if any(s in case.name for s in substrings))
    return CONV_CASES if full else QUICK_CASES
