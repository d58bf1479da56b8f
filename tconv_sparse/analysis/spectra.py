"""Singular values and operator norms of convolutions.

Three routes, chosen from the geometry alone (before any work):

* **Exact, frequency domain.** With circular padding the convolution is
  block-circulant whenever every axis satisfies ``n % stride == 0`` and
  ``out * stride == n`` (for stride 1: ``lo + hi == k_eff - 1``, e.g.
  ``padding="same"``). Then its singular values are the union, over the
  ``prod(n / stride)`` frequencies of the polyphase grid, of the singular values
  of the small ``C_out/G x (C_in/G * prod(stride))`` matrices of the kernel's
  DFT, for each group ``G`` (Sedghi, Gupta & Long, "The Singular Values of
  Convolutional Layers", ICLR 2019; the stride enters through the polyphase
  decomposition of the input). Any rank, groups and dilation.
* **Exact, from the matrix.** Otherwise the explicit ``C`` of
  :func:`~tconv_sparse.conv_matrix`: all values by a dense SVD when small, the
  top ``k`` by :func:`scipy.sparse.linalg.svds` (ARPACK) when large.
* **Upper bound** (``operator_norm(..., bound=True)``, the circular
  embedding bound): ``C`` is a row selection of a strided circular convolution
  on the smallest stride-divisible grid that holds the padded input without
  wrap-around, applied to the padded input; so
  ``||C|| <= max_f ||K_f|| * ||P||``, where ``K_f`` are that circular
  convolution's frequency blocks and ``||P|| = prod_axes sqrt(max copies of an
  input in the padding)`` is the norm of the padding (1 for zero padding). Its
  cost grows with the number of frequencies, not with the size of ``C``
  squared, so it stays cheap where the exact norm needs many sparse
  matrix-vector products. For block-circulant geometries it is exact.

Cost limits: a computation whose estimated memory exceeds the library limit
(:func:`tconv_sparse.set_max_bytes`, or ``max_bytes=``) or whose estimated
floating-point operations exceed ``max_flops`` is refused with a
``ValueError`` stating both estimates.

Progress (``progress=``): ``None`` (default) states the route and its
estimated time on stderr before a dense SVD or the frequency blocks when the
estimate exceeds :data:`ANNOUNCE_SECONDS` (at :data:`FLOP_RATE`); ``True``
always does, and draws a bar over the products of ARPACK's iterative SVD
(:mod:`tconv_sparse.core.progress`: tqdm when installed); ``False`` is silent.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.config import WORK_CHUNK_BYTES, get_max_bytes
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.matrix import build_matrix, matrix_bytes
from tconv_sparse.core.progress import Progress, note
from tconv_sparse.operator import ConvOperator

__all__ = ["singular_values", "operator_norm", "DEFAULT_MAX_FLOPS"]

#: Default refusal threshold for the estimated floating-point operations of one call.
DEFAULT_MAX_FLOPS = 1e12
#: floating-point operations per second of the time estimates: LAPACK's SVD on the 2-core benchmark
#: machine (the 4096 x 4096 one of ``singular_values(w, (64, 64), padding="same")``, 8.2e11 flops,
#: took 55 s)
FLOP_RATE = 1.5e10
#: with ``progress=None``, computations estimated to take longer than this are announced on stderr
ANNOUNCE_SECONDS = 10.0
#: The top ``k`` values come from a dense SVD when it costs at most this many flops.
_DENSE_TOP_K_MAX_FLOPS = 2e9
#: Working-set target of one chunk of frequency blocks.


# --------------------------------------------------------------------- arguments
def _resolve(weight, input_shape, stride, padding, dilation, groups, padding_mode):
    """``(weight, geometry)`` from an array and its geometry, or from a ConvOperator."""
    if isinstance(weight, ConvOperator):
        given = {"input_shape": (input_shape, None), "stride": (stride, 1), "padding": (padding, 0),
                 "dilation": (dilation, 1), "groups": (groups, 1), "padding_mode": (padding_mode, "zeros")}
        names = [name for name, (value, default) in given.items()
                 if not (type(value) is type(default) and value == default)]
        if names:
            raise ValueError(
                f"a ConvOperator carries its own geometry; do not also pass {', '.join(names)}"
            )
        return weight.weight, weight.geometry
    weight = v.as_weight(weight)
    if input_shape is None:
        raise ValueError("input_shape (the forward convolution's spatial input shape) is required "
                         "unless the first argument is a ConvOperator")
    geometry = Geometry.forward(weight.shape, input_shape, stride=stride, padding=padding,
                                dilation=dilation, groups=groups, padding_mode=padding_mode)
    return weight, geometry


def _parse_limits(max_bytes, max_flops):
    """Check ``max_bytes`` (None or an int > 0) and ``max_flops`` (a number > 0)."""
    for name, value, kinds in (("max_bytes", max_bytes, numbers.Integral),
                               ("max_flops", max_flops, numbers.Real)):
        if value is None and name == "max_bytes":
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds):
            raise v.ParameterTypeError(f"{name} must be a positive number, got {value!r}")
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    return max_bytes, float(max_flops)


def _parse_k(k, count):
    if k is None:
        return None
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise v.ParameterTypeError(f"k must be None or an int, got {k!r}")
    if not 1 <= k <= count:
        raise ValueError(f"k must satisfy 1 <= k <= min(matrix shape) = {count}, got {k}")
    return int(k)


def _value_dtype(weight):
    """Complex128 for complex weights, float64 otherwise (exact for float32 weights)."""
    return np.dtype(np.complex128 if weight.dtype.kind == "c" else np.float64)


def _refuse_if_costly(what, size_bytes, flops, max_bytes, max_flops, advice):
    limit = get_max_bytes() if max_bytes is None else max_bytes
    if size_bytes > limit or flops > max_flops:
        raise ValueError(
            f"{what} would need an estimated {v.format_bytes(size_bytes)} and {flops:.2g} "
            f"floating-point operations, above the limits (memory {v.format_bytes(limit)}, "
            f"max_flops={max_flops:.2g}); {advice}"
        )


def _parse_progress(progress):
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise v.ParameterTypeError(f"progress must be None, True or False, got {progress!r}")
    return progress


def _announce(progress, what: str, flops: float) -> None:
    """State ``what`` and its estimated time on stderr (always with ``progress=True``; with ``None``
    when it exceeds :data:`ANNOUNCE_SECONDS`)."""
    seconds = flops / FLOP_RATE
    if progress or (progress is None and seconds > ANNOUNCE_SECONDS):
        note(f"tconv_sparse: {what}: {flops:.2g} floating-point operations, an estimated {seconds:.2g} s "
             f"at {FLOP_RATE:.2g} flop/s (progress=False silences this)")


def _svd_flops(rows, cols):
    """Estimated flops of the singular values (no vectors) of a ``rows x cols`` matrix."""
    small, large = sorted((rows, cols))
    return 4.0 * large * small * small + 8.0 * small**3


# --------------------------------------------------------- frequency-domain blocks
def _circulant_grid(geometry):
    """Per-axis grid ``n / stride`` when ``C`` is exactly block-circulant, else ``None``."""
    if geometry.padding_mode != "circular":
        return None
    if all(n % s == 0 and out * s == n
           for n, out, s in zip(geometry.input_shape, geometry.output_shape, geometry.stride)):
        return tuple(n // s for n, s in zip(geometry.input_shape, geometry.stride))
    return None


def _embedding(geometry):
    """``(grid, offsets, factor)`` of the strided circular convolution bounding ``C``."""
    grid = _circulant_grid(geometry)
    if grid is not None:
        return grid, tuple(lo for lo, _ in geometry.padding), 1.0
    grid = tuple(-(-(n + lo + hi) // s)
                 for n, (lo, hi), s in zip(geometry.input_shape, geometry.padding, geometry.stride))
    copies = [np.asarray(p.sum(axis=0)).max() for p in geometry.padding_matrices]
    return grid, (0,) * geometry.ndim, float(np.sqrt(np.prod(copies)))


def _block_shape(geometry):
    """``(groups, rows, cols)`` of each frequency block."""
    phases = math.prod(geometry.stride)
    return geometry.groups, geometry.out_channels_per_group, geometry.in_channels_per_group * phases


def _frequency_blocks(weight, geometry, grid, offsets):
    """Yield the blocks ``K_f`` for chunks of frequencies: arrays ``(F, G, rows, cols)``.

    On axis ``a`` tap ``t`` reads input ``t * dilation - offset`` relative to
    ``output * stride``; writing that as ``shift * stride + phase`` makes the
    strided circular convolution a stride-1 one on the ``grid`` over
    ``prod(stride)`` phases (polyphase channels), whose DFT at frequency ``f``
    is ``sum_t w[:, :, t] exp(-2 pi i f . shift(t) / grid)`` per phase.
    """
    groups, rows, cols = _block_shape(geometry)
    dtype = np.complex128
    shifts, phases = [], []
    for k, d, s, offset in zip(geometry.kernel_shape, geometry.dilation, geometry.stride, offsets):
        position = np.arange(k) * d - offset
        shifts.append(position // s)
        phases.append(position % s)
    phase_of_tap = np.ravel_multi_index(np.meshgrid(*phases, indexing="ij"), geometry.stride).ravel()
    taps_by_phase = [np.flatnonzero(phase_of_tap == r) for r in range(math.prod(geometry.stride))]
    w = np.asarray(weight, dtype=dtype).reshape(geometry.out_channels * geometry.in_channels_per_group, -1)
    num_frequencies = math.prod(grid)
    row_bytes = 16 * (rows * cols * groups + w.shape[1])
    chunk = max(1, min(num_frequencies, WORK_CHUNK_BYTES // row_bytes))
    for start in range(0, num_frequencies, chunk):
        frequencies = np.unravel_index(np.arange(start, min(start + chunk, num_frequencies)), grid)
        exponent = np.zeros((len(frequencies[0]),) + geometry.kernel_shape)
        for axis, (f, shift, m) in enumerate(zip(frequencies, shifts, grid)):
            expand = [None] * geometry.ndim
            expand[axis] = slice(None)
            exponent = exponent + np.multiply.outer(f / m, shift)[(slice(None), *expand)]
        dft = np.exp(-2j * np.pi * exponent).reshape(len(frequencies[0]), -1)
        blocks = np.empty((len(frequencies[0]), geometry.out_channels, geometry.in_channels_per_group,
                           len(taps_by_phase)), dtype=dtype)
        for r, taps in enumerate(taps_by_phase):
            blocks[..., r] = (dft[:, taps] @ w[:, taps].T).reshape(blocks.shape[:3])
        yield blocks.reshape(-1, groups, rows, cols)


def _check_block_cost(geometry, grid, max_bytes, max_flops, what, keep_all):
    """Refuse (``ValueError``) frequency-block SVDs estimated above the limits; return their flops."""
    groups, rows, cols = _block_shape(geometry)
    frequencies = math.prod(grid)
    flops = 8.0 * frequencies * geometry.out_channels * geometry.in_channels_per_group \
        * math.prod(geometry.kernel_shape) + frequencies * groups * _svd_flops(rows, cols)
    size = 3 * WORK_CHUNK_BYTES + (8 * frequencies * groups * min(rows, cols) if keep_all else 0)
    _refuse_if_costly(what, size, flops, max_bytes, max_flops, "raise max_flops / max_bytes")
    return flops


def _block_values(weight, geometry, grid, offsets, max_bytes, max_flops, what, keep_all, progress=False):
    """Singular values of the frequency blocks, one array ``(F, G, min)`` per chunk.

    The cost is checked (and the call refused) before anything is computed.
    """
    flops = _check_block_cost(geometry, grid, max_bytes, max_flops, what, keep_all)
    _, rows, cols = _block_shape(geometry)
    _announce(progress, f"{what} from {math.prod(grid)} frequency blocks of {rows}x{cols}", flops)
    return (np.linalg.svd(blocks, compute_uv=False)
            for blocks in _frequency_blocks(weight, geometry, grid, offsets))


def circulant_coefficients(weight, geometry, h, max_bytes=None, max_flops=DEFAULT_MAX_FLOPS):
    """Singular values of a block-circulant ``C`` and the data's coefficients in its left basis.

    Returns ``None`` unless ``C`` is exactly block-circulant (see
    :func:`singular_values`); otherwise ``(sigma, coefficients, floor)``:
    every singular value, ``|u_i^H h|`` for its left singular vector ``u_i``
    (both flat, in the same order), and ``||h||^2 - sum |u_i^H h|^2``, the
    part of ``h`` outside the span of the ``u_i``. The ``u_i`` are the
    blocks' left singular vectors at each frequency, so ``u_i^H h`` comes
    from the unitary DFT of ``h`` (one sample, flat, ``C_out * prod(out)``).

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.core.geometry import Geometry
    >>> g = Geometry.forward((1, 1, 3), 4, padding=1, padding_mode="circular")
    >>> sigma, coefficients, floor = circulant_coefficients(np.array([[[1.0, 2, 1]]]), g, np.eye(4)[0])
    >>> sigma.round(6), coefficients.round(6), round(abs(floor), 12)
    (array([4., 2., 0., 2.]), array([0.5, 0.5, 0.5, 0.5]), 0.0)
    """
    grid = _circulant_grid(geometry)
    if grid is None:
        return None
    groups, rows, cols = _block_shape(geometry)
    offsets = tuple(lo for lo, _ in geometry.padding)
    _check_block_cost(geometry, grid, max_bytes, max_flops, "the frequency-domain singular vectors",
                      keep_all=True)
    axes = tuple(range(1, geometry.ndim + 1))
    spectrum = np.fft.ifftn(np.asarray(h).reshape(geometry.out_channels, *grid), axes=axes, norm="ortho")
    spectrum = spectrum.reshape(geometry.out_channels, -1).T.reshape(-1, groups, rows)
    sigmas, coefficients, start = [], [], 0
    for blocks in _frequency_blocks(weight, geometry, grid, offsets):
        u, s, _ = np.linalg.svd(blocks, full_matrices=False)
        stop = start + len(blocks)
        coefficients.append(np.abs(np.einsum("fgrk,fgr->fgk", u.conj(), spectrum[start:stop])).ravel())
        sigmas.append(s.ravel())
        start = stop
    coefficients = np.concatenate(coefficients)
    floor = max(float(np.vdot(h, h).real - np.sum(coefficients ** 2)), 0.0)
    return np.concatenate(sigmas), coefficients, floor


# ------------------------------------------------------------------- matrix route
def _dense_values(weight, geometry, max_bytes, max_flops, what, progress=False):
    rows, cols = geometry.matrix_shape
    dtype = _value_dtype(weight)
    size = 2 * rows * cols * dtype.itemsize + matrix_bytes(geometry, dtype)
    _refuse_if_costly(
        f"{what} by a dense SVD of the {rows}x{cols} matrix", size, _svd_flops(rows, cols),
        max_bytes, max_flops,
        "ask for the top k values (k=...), use circular padding with an exactly circulant "
        "geometry, or raise max_flops / max_bytes",
    )
    _announce(progress, f"{what} by a dense SVD of the {rows}x{cols} matrix", _svd_flops(rows, cols))
    dense = build_matrix(weight, geometry, dtype, max_bytes).toarray()
    return np.linalg.svd(dense, compute_uv=False)


def _counted(matrix, bar: Progress):
    """``matrix`` as a ``LinearOperator`` that advances ``bar`` at every product."""
    from scipy.sparse.linalg import LinearOperator

    def product(function):
        def run(x):
            bar.step(bar.done + 1)
            return function(x)
        return run

    return LinearOperator(matrix.shape, matvec=product(matrix.__matmul__), dtype=matrix.dtype,
                          rmatvec=product(lambda y: matrix.conj().T @ y))


def _sparse_top(weight, geometry, k, max_bytes, progress=False):
    from scipy.sparse.linalg import svds

    rows, cols = geometry.matrix_shape
    dtype = _value_dtype(weight)
    basis = max(2 * k + 1, 20)
    v.check_bytes(f"the top {k} singular values of the {rows}x{cols} matrix by svds",
                  matrix_bytes(geometry, dtype) + 2 * basis * max(rows, cols) * dtype.itemsize,
                  max_bytes)
    matrix = build_matrix(weight, geometry, dtype, max_bytes)
    start = np.random.default_rng(0).standard_normal(min(rows, cols))
    if not progress:
        values = svds(matrix, k=k, tol=0, v0=start, return_singular_vectors=False, solver="arpack")
        return np.sort(values)[::-1]
    with Progress(None, desc=f"svds: top {k} of {rows}x{cols}", unit="product", shown=True) as bar:
        values = svds(_counted(matrix, bar), k=k, tol=0, v0=start, return_singular_vectors=False,
                      solver="arpack")
    return np.sort(values)[::-1]


def _use_dense(geometry, k):
    return (k is None or 2 * k > min(geometry.matrix_shape)
            or _svd_flops(*geometry.matrix_shape) <= _DENSE_TOP_K_MAX_FLOPS)


def _values(weight, geometry, k, max_bytes, max_flops, progress=None):
    """Descending singular values (the top ``k`` when given) of a validated geometry."""
    grid = _circulant_grid(geometry)
    if grid is not None:
        offsets = tuple(lo for lo, _ in geometry.padding)
        chunks = _block_values(weight, geometry, grid, offsets, max_bytes, max_flops,
                               "the frequency-domain singular values", keep_all=True, progress=progress)
        values = np.sort(np.concatenate([chunk.ravel() for chunk in chunks]))[::-1]
    elif _use_dense(geometry, k):
        values = _dense_values(weight, geometry, max_bytes, max_flops,
                               "all singular values" if k is None else f"the top {k} singular values", progress)
    else:
        values = _sparse_top(weight, geometry, k, max_bytes, progress)
    return values if k is None else values[:k]


# --------------------------------------------------------------------- public API
def singular_values(weight, input_shape=None, *, stride=1, padding=0, dilation=1, groups=1,
                    padding_mode="zeros", k=None, max_bytes=None, max_flops=DEFAULT_MAX_FLOPS, progress=None):
    """Singular values of the convolution matrix ``C``, in descending order.

    Parameters
    ----------
    weight : array_like or ConvOperator
        Forward-convolution weight ``(C_out, C_in // groups, *kernel_size)``,
        or a :class:`~tconv_sparse.ConvOperator` (then give no geometry
        arguments: the operator's own are used).
    input_shape : int or tuple of int
        Spatial shape of the forward convolution's input.
    stride, padding, dilation, groups, padding_mode
        As in :func:`tconv_sparse.conv`.
    k : int, optional
        Return only the ``k`` largest values (``1 <= k <= min(C.shape)``).
    max_bytes : int, optional
        Memory limit (default: the library limit).
    max_flops : float
        Refuse computations estimated above this many floating-point operations.
    progress : bool or None
        ``None``: state the route and its estimated time on stderr before a
        computation estimated above 10 s (a dense SVD cannot report
        progress); ``True``: always, plus a bar over the products of the
        iterative SVD; ``False``: silent. See the module notes.

    Returns
    -------
    numpy.ndarray of float64
        All ``min(C.shape)`` singular values, or the top ``k``.

    Notes
    -----
    Circular padding with an exactly block-circulant geometry (every axis
    ``n % stride == 0`` and ``out * stride == n``) uses the frequency-domain
    result of Sedghi, Gupta & Long (2019), extended to strides by the
    polyphase decomposition: cost ``prod(n/stride)`` small SVDs. Otherwise
    all values come from a dense SVD of ``C``, and the top ``k`` from
    :func:`scipy.sparse.linalg.svds` unless a dense SVD is cheap (about
    ``2e9`` flops) or ``2 k > min(C.shape)``. The transposed convolution ``C.T`` has the same
    singular values.

    Raises
    ------
    ValueError
        For invalid arguments, or when the estimated memory or flops exceed
        the limits (the message states both estimates).

    Examples
    --------
    A circular 1-D convolution is circulant: its singular values are the
    magnitudes of the kernel's DFT.

    >>> import numpy as np, tconv_sparse as ts
    >>> w = np.array([[[1.0, 2.0, 1.0]]])
    >>> ts.singular_values(w, 4, padding=1, padding_mode="circular").round(6)
    array([4., 2., 2., 0.])
    >>> np.abs(np.fft.fft([2.0, 1.0, 0.0, 1.0])).round(6)     # kernel centred on the grid
    array([4., 2., 0., 2.])

    Zero padding goes through the matrix; ``k`` picks the largest values.

    >>> ts.singular_values(w, 4, padding=1, k=2).round(4)
    array([3.618, 2.618])
    """
    weight, geometry = _resolve(weight, input_shape, stride, padding, dilation, groups, padding_mode)
    k = _parse_k(k, min(geometry.matrix_shape))
    max_bytes, max_flops = _parse_limits(max_bytes, max_flops)
    return _values(weight, geometry, k, max_bytes, max_flops, _parse_progress(progress))


def operator_norm(weight, input_shape=None, *, stride=1, padding=0, dilation=1, groups=1,
                  padding_mode="zeros", bound=False, max_bytes=None, max_flops=DEFAULT_MAX_FLOPS,
                  progress=None):
    """Operator 2-norm (largest singular value) of the convolution ``C``, or an upper bound.

    Parameters
    ----------
    weight, input_shape, stride, padding, dilation, groups, padding_mode, max_bytes, max_flops, progress
        As in :func:`singular_values`.
    bound : bool
        ``False`` (default): the exact largest singular value (see
        :func:`singular_values` for the route taken). ``True``: a guaranteed
        upper bound (up to float rounding), the circular-embedding bound
        ``max_f ||K_f||_2 * prod_axes sqrt(max copies of an input in the padding)``,
        where ``K_f`` are the frequency blocks of the strided circular
        convolution on the smallest stride-divisible grid that holds the
        padded input (see the module notes). The factor is 1 for zero padding;
        for exactly block-circulant geometries the blocks are ``C``'s own and
        the bound is the exact norm. Its cost is ``prod(grid)`` small SVDs of
        ``C_out/G x C_in/G * prod(stride)`` blocks, against many sparse
        products with ``C`` for the exact norm.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np, tconv_sparse as ts
    >>> w = np.array([[[1.0, 2.0, 1.0]]])
    >>> round(ts.operator_norm(w, 8, padding=1), 6)
    3.879385
    >>> round(ts.operator_norm(w, 8, padding=1, bound=True), 6)   # max |DFT| = 4
    4.0
    """
    weight, geometry = _resolve(weight, input_shape, stride, padding, dilation, groups, padding_mode)
    if not isinstance(bound, (bool, np.bool_)):
        raise v.ParameterTypeError(f"bound must be True or False, got {bound!r}")
    max_bytes, max_flops = _parse_limits(max_bytes, max_flops)
    progress = _parse_progress(progress)
    if not bound:
        return float(_values(weight, geometry, 1, max_bytes, max_flops, progress)[0])
    grid, offsets, factor = _embedding(geometry)
    chunks = _block_values(weight, geometry, grid, offsets, max_bytes, max_flops,
                           "the operator-norm bound", keep_all=False, progress=progress)
    return max(float(chunk.max()) for chunk in chunks) * factor
