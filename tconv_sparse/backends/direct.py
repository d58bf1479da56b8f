"""Numba kernels: direct convolution, and the scatter and gather transposes.

All three work on the two-level canonical form of
:attr:`~tconv_sparse.geometry.Geometry.canonical_maps`: spatial axes before the
last are fused into one, so one kernel serves every spatial rank and every
padding mode (the index maps carry the padding).

Parallel loops never race. ``direct`` and ``gather`` write one output element
per iteration. ``scatter`` adds into outputs shared between iterations, so it
either gives each thread a disjoint set of output channels
(``batch * channels >= threads``) or its own private buffer that is summed
afterwards.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._config import jit, jit_parallel, num_threads
from ..matrix import canonical_weight

__all__ = ["conv", "conv_transpose_scatter", "conv_transpose_gather"]


def _canonical(array: np.ndarray, spatial) -> np.ndarray:
    """View ``(N, C, *spatial)`` as ``(N, C, prod(spatial[:-1]), spatial[-1])``."""
    return array.reshape(array.shape[0], array.shape[1], math.prod(spatial[:-1]), spatial[-1])


def _forward_tables(geometry):
    lead, last = geometry.canonical_maps
    return (lead.row_ptr, lead.col, lead.tap_ptr, lead.tap,
            last.row_ptr, last.col, last.tap_ptr, last.tap)


@jit_parallel
def _direct(x, w, groups, a_ptr, a_col, a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr, b_tap, out):
    batch, out_channels, rows_a, rows_b = out.shape
    cin_g = w.shape[1]
    cout_g = out_channels // groups
    for task in prange(batch * out_channels * rows_a):
        n = task // (out_channels * rows_a)
        co = (task // rows_a) % out_channels
        oa = task % rows_a
        first_channel = (co // cout_g) * cin_g
        for ob in range(rows_b):
            acc = out[n, co, oa, ob]
            for c in range(cin_g):
                for ua in range(a_ptr[oa], a_ptr[oa + 1]):
                    ia = a_col[ua]
                    for ub in range(b_ptr[ob], b_ptr[ob + 1]):
                        value = x[n, first_channel + c, ia, b_col[ub]]
                        for ja in range(a_tap_ptr[ua], a_tap_ptr[ua + 1]):
                            for jb in range(b_tap_ptr[ub], b_tap_ptr[ub + 1]):
                                acc += value * w[co, c, a_tap[ja], b_tap[jb]]
            out[n, co, oa, ob] = acc


def conv(x: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Direct convolution: each output element sums its taps (Numba, parallel)."""
    out = np.zeros((x.shape[0], geometry.out_channels, *geometry.output_shape), dtype=x.dtype)
    _direct(_canonical(x, geometry.input_shape), canonical_weight(weight, geometry), geometry.groups,
            *_forward_tables(geometry), _canonical(out, geometry.output_shape))
    return out


@jit_parallel
def _gather(y, w, groups, a_ptr, a_out, a_tap, b_ptr, b_out, b_tap, out):
    batch, in_channels, rows_a, rows_b = out.shape
    cin_g = w.shape[1]
    cout_g = y.shape[1] // groups
    for task in prange(batch * in_channels * rows_a):
        n = task // (in_channels * rows_a)
        ci = (task // rows_a) % in_channels
        ia = task % rows_a
        g = ci // cin_g
        c = ci % cin_g
        for ib in range(rows_b):
            acc = out[n, ci, ia, ib]
            for co in range(g * cout_g, (g + 1) * cout_g):
                for ea in range(a_ptr[ia], a_ptr[ia + 1]):
                    oa = a_out[ea]
                    ta = a_tap[ea]
                    for eb in range(b_ptr[ib], b_ptr[ib + 1]):
                        acc += y[n, co, oa, b_out[eb]] * w[co, c, ta, b_tap[eb]]
            out[n, ci, ia, ib] = acc


def conv_transpose_gather(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Gather transpose: each output element collects the taps that land on it.

    This is the fractionally-strided view without materialised zeros: output
    ``i`` receives input ``o`` through tap ``t`` exactly when the forward
    convolution's output ``o`` reads ``i`` through ``t``.
    """
    lead, last = geometry.canonical_maps
    out = np.zeros((y.shape[0], geometry.in_channels, *geometry.input_shape), dtype=y.dtype)
    _gather(_canonical(y, geometry.output_shape), canonical_weight(weight, geometry), geometry.groups,
            lead.back_ptr, lead.back_out, lead.back_tap, last.back_ptr, last.back_out, last.back_tap,
            _canonical(out, geometry.input_shape))
    return out


@jit
def _scatter_value(value, w, co, c, ci, n, oa, ob, a_ptr, a_col, a_tap_ptr, a_tap,
                   b_ptr, b_col, b_tap_ptr, b_tap, out):
    """Add ``value * kernel[co, c]`` into ``out[n, ci]`` at the inputs output (oa, ob) reads."""
    for ua in range(a_ptr[oa], a_ptr[oa + 1]):
        ia = a_col[ua]
        for ub in range(b_ptr[ob], b_ptr[ob + 1]):
            ib = b_col[ub]
            for ja in range(a_tap_ptr[ua], a_tap_ptr[ua + 1]):
                for jb in range(b_tap_ptr[ub], b_tap_ptr[ub + 1]):
                    out[n, ci, ia, ib] += value * w[co, c, a_tap[ja], b_tap[jb]]


@jit_parallel
def _scatter_by_channel(y, w, groups, a_ptr, a_col, a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr,
                        b_tap, out):
    """Each task owns one (sample, output channel): writes are disjoint."""
    batch, in_channels = out.shape[0], out.shape[1]
    _, out_channels, rows_a, rows_b = y.shape
    cin_g = w.shape[1]
    cout_g = out_channels // groups
    for task in prange(batch * in_channels):
        n = task // in_channels
        ci = task % in_channels
        g = ci // cin_g
        c = ci % cin_g
        for co in range(g * cout_g, (g + 1) * cout_g):
            for oa in range(rows_a):
                for ob in range(rows_b):
                    _scatter_value(y[n, co, oa, ob], w, co, c, ci, n, oa, ob, a_ptr, a_col,
                                   a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr, b_tap, out)


@jit_parallel
def _scatter_private(y, w, groups, a_ptr, a_col, a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr,
                     b_tap, buffers):
    """Each task scatters a slice of the input rows into its own buffer."""
    tasks = buffers.shape[0]
    batch, out_channels, rows_a, rows_b = y.shape
    cin_g = w.shape[1]
    cout_g = out_channels // groups
    total = batch * out_channels * rows_a
    for task in prange(tasks):
        out = buffers[task]
        for row in range(task * total // tasks, (task + 1) * total // tasks):
            n = row // (out_channels * rows_a)
            co = (row // rows_a) % out_channels
            oa = row % rows_a
            first_channel = (co // cout_g) * cin_g
            for ob in range(rows_b):
                value = y[n, co, oa, ob]
                for c in range(cin_g):
                    _scatter_value(value, w, co, c, first_channel + c, n, oa, ob, a_ptr, a_col,
                                   a_tap_ptr, a_tap, b_ptr, b_col, b_tap_ptr, b_tap, out)


def conv_transpose_scatter(y: np.ndarray, weight: np.ndarray, geometry) -> np.ndarray:
    """Scatter transpose: each input element times the kernel, added into the output."""
    shape = (y.shape[0], geometry.in_channels, *geometry.input_shape)
    canonical_y = _canonical(y, geometry.output_shape)
    w = canonical_weight(weight, geometry)
    threads = num_threads()
    if shape[0] * shape[1] >= threads or threads == 1:
        out = np.zeros(shape, dtype=y.dtype)
        _scatter_by_channel(canonical_y, w, geometry.groups, *_forward_tables(geometry),
                            _canonical(out, geometry.input_shape))
        return out
    buffers = np.zeros((threads, *shape), dtype=y.dtype)
    canonical_buffers = buffers.reshape(threads, shape[0], shape[1],
                                        math.prod(geometry.input_shape[:-1]), geometry.input_shape[-1])
    _scatter_private(canonical_y, w, geometry.groups, *_forward_tables(geometry), canonical_buffers)
    return buffers.sum(axis=0)
