"""Slow, obviously-correct loop references, written from API.md alone.

Nothing here imports tconv_sparse: the shape rules, the padding modes and both
convolutions are re-derived with plain Python loops over every output element
and every tap, so they are an oracle independent of the library's index maps.
Use them on tiny problems only.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def _as_tuple(value, ndim):
    return (value,) * ndim if isinstance(value, int) else tuple(value)


def padded_index(j: int, n: int, mode: str):
    """Input index that padded coordinate ``j`` (relative to the input start) reads, or None."""
    if 0 <= j < n:
        return j
    if mode == "zeros":
        return None
    if mode == "circular":
        return j % n
    if mode == "replicate":
        return min(max(j, 0), n - 1)
    assert mode == "reflect"
    while not 0 <= j < n:  # mirror about the first and last sample, without repeating them
        j = -j if j < 0 else 2 * (n - 1) - j
    return j


def forward_padding(padding, n, k, stride, dilation):
    """Per-axis (lo, hi) of the forward convolution, from API.md section 2."""
    ndim = len(n)
    if isinstance(padding, str):
        pads = []
        for n_a, k_a, s_a, d_a in zip(n, k, stride, dilation):
            k_eff = d_a * (k_a - 1) + 1
            if padding == "valid":
                pads.append((0, 0))
            elif padding == "full":
                pads.append((k_eff - 1, k_eff - 1))
            else:
                total = max((math.ceil(n_a / s_a) - 1) * s_a + k_eff - n_a, 0)
                pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, int):
        return [(padding, padding)] * ndim
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def transposed_geometry(i, k, stride, dilation, padding, output_padding=None, output_size=None):
    """``(n, pads)``: transposed output size and forward padding, from API.md section 3."""
    ndim = len(i)
    sizes, pads = [], []
    for axis in range(ndim):
        i_a, k_a, s_a, d_a = i[axis], k[axis], stride[axis], dilation[axis]
        k_eff = d_a * (k_a - 1) + 1
        op = None if output_padding is None else _as_tuple(output_padding, ndim)[axis]
        if padding in ("valid", "same"):
            minimum = (i_a - 1) * s_a + (k_eff if padding == "valid" else k_eff % 2)
            if output_size is not None:
                op = output_size[axis] - minimum
            if padding == "valid":
                size = (i_a - 1) * s_a + max(k_eff, s_a) if op is None else minimum + op
                pads.append((0, 0))
            else:
                size = i_a * s_a if op is None else minimum + op
                pad_len = s_a + k_eff - 2 if op is None else k_eff + k_eff % 2 - 2 + op
                left = min(math.ceil(pad_len / 2), k_eff - 1)
                pads.append((k_eff - 1 - left, k_eff - 1 - (pad_len - left)))
        else:
            lo, hi = forward_padding(padding, [1] * ndim, k, stride, dilation)[axis]  # numeric or "full"
            minimum = (i_a - 1) * s_a - (lo + hi) + k_eff
            if output_size is not None:
                op = output_size[axis] - minimum
            size = minimum + (op or 0)
            pads.append((lo, hi))
        sizes.append(size)
    return tuple(sizes), pads


def _taps(x_shape, w, out_shape, stride, dilation, pads, groups, mode):
    """Yield ``(co, o, ci, input_index, weight)`` for every tap that reads an input."""
    c_out, cin_g = w.shape[:2]
    kernel = w.shape[2:]
    cout_g = c_out // groups
    n = x_shape[1:]
    for co in range(c_out):
        g = co // cout_g
        for o in itertools.product(*map(range, out_shape)):
            for c in range(cin_g):
                for t in itertools.product(*map(range, kernel)):
                    index = []
                    for axis in range(len(n)):
                        j = o[axis] * stride[axis] + t[axis] * dilation[axis] - pads[axis][0]
                        index.append(padded_index(j, n[axis], mode))
                    if None not in index:
                        yield co, o, g * cin_g + c, tuple(index), w[(co, c) + t]


def conv_reference(x, w, *, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Forward cross-correlation of one sample ``x`` ``(C_in, *n)``, by loops."""
    ndim = w.ndim - 2
    stride, dilation = _as_tuple(stride, ndim), _as_tuple(dilation, ndim)
    n = x.shape[1:]
    pads = forward_padding(padding, n, w.shape[2:], stride, dilation)
    out_shape = tuple((n[a] + sum(pads[a]) - dilation[a] * (w.shape[2 + a] - 1) - 1) // stride[a] + 1
                      for a in range(ndim))
    y = np.zeros((w.shape[0], *out_shape), dtype=np.result_type(x, w, np.float64))
    for co, o, ci, index, weight in _taps(x.shape, w, out_shape, stride, dilation, pads, groups,
                                          padding_mode):
        y[(co,) + o] += weight * x[(ci,) + index]
    return y


def conv_transpose_reference(y, w, *, stride=1, padding=0, output_padding=None, output_size=None,
                             dilation=1, groups=1, padding_mode="zeros"):
    """Transposed convolution of one sample ``y`` ``(C_in_t, *i)``: scatter every tap back."""
    ndim = w.ndim - 2
    stride, dilation = _as_tuple(stride, ndim), _as_tuple(dilation, ndim)
    n, pads = transposed_geometry(y.shape[1:], w.shape[2:], stride, dilation, padding,
                                  output_padding, output_size)
    x = np.zeros((w.shape[1] * groups, *n), dtype=np.result_type(y, w, np.float64))
    for co, o, ci, index, weight in _taps((x.shape[0], *n), w, y.shape[1:], stride, dilation, pads,
                                          groups, padding_mode):
        x[(ci,) + index] += weight * y[(co,) + o]
    return x
