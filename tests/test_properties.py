"""Property tests: random geometries drawn jointly; every method agrees with the definition."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tconv_sparse as ts
from tconv_sparse.functional import FORWARD_METHODS, TRANSPOSE_METHODS
from conftest import DTYPES, assert_close, random_array
from reference import conv_reference, conv_transpose_reference, forward_padding, transposed_geometry

MODES = ("zeros", "circular", "reflect", "replicate")
relaxed = settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


def _padding(draw, ndim):
    kind = draw(st.sampled_from(["int", "axes", "pairs", "valid", "same", "full"]))
    small = st.integers(0, 3)
    if kind == "int":
        return draw(small)
    if kind == "axes":
        return tuple(draw(small) for _ in range(ndim))
    if kind == "pairs":
        return tuple((draw(small), draw(small)) for _ in range(ndim))
    return kind


def _pads_valid(pads, n, mode):
    for (lo, hi), size in zip(pads, n):
        if mode == "reflect" and max(lo, hi) >= size:
            return False
        if mode == "circular" and max(lo, hi) > size:
            return False
    return True


@st.composite
def conv_problems(draw, transposed):
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    cin_g, cout_g = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    axes = lambda low, high: tuple(draw(st.integers(low, high)) for _ in range(ndim))
    kernel, stride, dilation = axes(1, 4), axes(1, 3), axes(1, 3)
    mode = draw(st.sampled_from(MODES))
    padding = _padding(draw, ndim)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    weight_shape = (groups * cout_g, cin_g, *kernel)
    if transposed:
        size_of_i = axes(1, 4)
        choice = draw(st.sampled_from(["none", "output_padding", "output_size"]))
        if isinstance(padding, int) or (isinstance(padding, tuple) and choice == "none"):
            choice = "output_padding" if choice == "none" else choice
        op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        n, pads = transposed_geometry(size_of_i, kernel, stride, dilation, padding,
                                      None if choice == "none" else op)
        assume(min(n) >= 1 and _pads_valid(pads, n, mode))
        if choice == "output_padding":
            kwargs["output_padding"] = op
        elif choice == "output_size":
            kwargs["output_size"] = n
        shape = size_of_i
        channels = groups * cout_g
    else:
        shape = axes(1, 8)
        pads = forward_padding(padding, shape, kernel, stride, dilation)
        k_eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
        assume(all(s + lo + hi >= k for s, (lo, hi), k in zip(shape, pads, k_eff)))
        assume(_pads_valid(pads, shape, mode))
        channels = groups * cin_g
    batch = draw(st.sampled_from([None, 1, 2]))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data_shape = (channels, *shape) if batch is None else (batch, channels, *shape)
    return random_array(rng, data_shape, dtype), random_array(rng, weight_shape, dtype), kwargs


def _small(array, weight):
    return array.size * math.prod(weight.shape) < 20000


@relaxed
@given(conv_problems(transposed=False))
def test_every_conv_method_agrees(problem):
    x, weight, kwargs = problem
    dtype = x.dtype
    expected = ts.conv(x, weight, method="sparse", **kwargs)
    matrix = ts.conv_matrix(weight, x.shape[-(weight.ndim - 2):], **kwargs)
    flat = x.reshape(-1, matrix.shape[1])
    assert_close(expected.reshape(len(flat), -1), (matrix @ flat.T).T, dtype)
    for method in FORWARD_METHODS:
        assert_close(ts.conv(x, weight, method=method, **kwargs), expected, dtype)
    if _small(x, weight):
        samples = x if x.ndim == weight.ndim else x[None]
        reference = np.stack([conv_reference(s, weight, **kwargs) for s in samples])
        assert_close(expected, reference if x.ndim == weight.ndim else reference[0], dtype)


@relaxed
@given(conv_problems(transposed=True))
def test_every_conv_transpose_method_agrees(problem):
    y, weight, kwargs = problem
    dtype = y.dtype
    expected = ts.conv_transpose(y, weight, method="sparse", **kwargs)
    spatial = weight.ndim - 2
    shape_kwargs = {k: v for k, v in kwargs.items() if k not in ("groups", "padding_mode")}
    assert expected.shape[-spatial:] == ts.conv_transpose_output_shape(y.shape[-spatial:], weight.shape[2:],
                                                                       **shape_kwargs)
    for method in TRANSPOSE_METHODS:
        assert_close(ts.conv_transpose(y, weight, method=method, **kwargs), expected, dtype)
    if _small(expected, weight):
        samples = y if y.ndim == weight.ndim else y[None]
        reference = np.stack([conv_transpose_reference(s, weight, **kwargs) for s in samples])
        assert_close(expected, reference if y.ndim == weight.ndim else reference[0], dtype)


@relaxed
@given(conv_problems(transposed=False), st.data())
def test_dot_test_random_geometry(problem, data):
    """<C u, v> == <u, C^H v> for a random forward and transposed method."""
    u, weight, kwargs = problem
    forward = data.draw(st.sampled_from(FORWARD_METHODS))
    transpose = data.draw(st.sampled_from(TRANSPOSE_METHODS))
    cu = ts.conv(u, weight, method=forward, **kwargs)
    v = random_array(np.random.default_rng(0), cu.shape, u.dtype)
    spatial = weight.ndim - 2
    # the forward padding as explicit (lo, hi) pairs: "same" is a forward rule, the transposed
    # call takes the numeric (PyTorch) rule with the exact output size
    pads = forward_padding(kwargs["padding"], u.shape[-spatial:], weight.shape[2:], kwargs["stride"],
                           kwargs["dilation"])
    transposed_kwargs = dict(kwargs, padding=tuple(pads), output_size=u.shape[-spatial:])
    chv = np.conj(ts.conv_transpose(np.conj(v), weight, method=transpose, **transposed_kwargs))
    tolerance = 1e-10 if u.dtype in (np.float64, np.complex128) else 1e-4
    assert abs(np.vdot(cu, v) - np.vdot(u, chv)) <= tolerance * max(np.linalg.norm(cu) * np.linalg.norm(v), 1)
