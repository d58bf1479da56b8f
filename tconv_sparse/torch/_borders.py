"""The padding index map's border as slices of torch tensors: padding ``P`` and its transpose ``P.T``.

Per axis, the padded positions ``[lo, lo + n)`` are the input itself; the
others copy input samples (circular, reflect, replicate) in a few runs of
consecutive, reversed or repeated positions (:func:`border_runs`). Padding
concatenates those slices (:func:`border_pad`); the transpose adds each run
back onto the samples it copied (:func:`fold`). :func:`border_plan` computes
the runs once per geometry, so a call only slices.
"""

from __future__ import annotations

import torch

from tconv_sparse.core.index_maps import padding_index

__all__ = ["border_runs", "border_plan", "border_pad", "fold", "pad_arguments"]


@torch.compiler.assume_constant_result
def border_runs(n, lo, size, mode):
    """The border of one axis' padding index map as runs ``(position, length, target, step)``.

    The padded positions ``[lo, lo + n)`` copy the input itself; every other
    position copies the input ``padding_index(n, lo, size, mode)[position]``
    (never a zero: ``mode`` is not ``"zeros"``). Consecutive positions whose
    targets step by +1 (circular), -1 (reflect) or 0 (replicate) form one run,
    so padding and folding are slices of the input, not per-element indices.
    A constant for ``torch.compile`` (computed once per geometry, at tracing).
    """
    index = padding_index(n, lo, size, mode).tolist()
    border = [p for p in range(size) if not lo <= p < lo + n]
    runs, start = [], 0
    while start < len(border):
        end, step = start + 1, None
        while end < len(border) and border[end] == border[end - 1] + 1:
            difference = index[border[end]] - index[border[end - 1]]
            if difference not in (-1, 0, 1) or step not in (None, difference):
                break
            step, end = difference, end + 1
        runs.append((border[start], end - start, index[border[start]], 1 if step is None else step))
        start = end
    return tuple(runs)


def border_plan(geometry):
    """Per padded axis ``(axis, n, lo, size, runs)`` of a non-zero ``padding_mode`` (tensor axes)."""
    plan = []
    for axis, (n, (lo, hi)) in enumerate(zip(geometry.input_shape, geometry.padding), start=2):
        if lo or hi:
            size = n + lo + hi
            plan.append((axis, n, lo, size, border_runs(n, lo, size, geometry.padding_mode)))
    return tuple(plan)


def pad_arguments(pads):
    """``F.pad``'s argument (last axis first) for per-axis ``(lo, hi)``; ``None`` when all zero."""
    flat = [side for lo_hi in reversed(pads) for side in lo_hi]
    return flat if any(flat) else None


def _run_source(x, axis, length, target, step):
    """The input slice a run copies (forward padding)."""
    if step == 1:
        return x.narrow(axis, target, length)
    if step == -1:
        return x.narrow(axis, target - length + 1, length).flip(axis)
    shape = list(x.shape)
    shape[axis] = length
    return x.narrow(axis, target, 1).expand(shape)


def _run_fold(piece, axis, target, step):
    """``(first target, values)`` a canvas run adds onto (the adjoint of :func:`_run_source`)."""
    if step == 1:
        return target, piece
    if step == -1:
        return target - piece.shape[axis] + 1, piece.flip(axis)
    return target, piece.sum(axis, keepdim=True)


def border_pad(x, plan):
    """``P x``: concatenate, along each axis of ``plan`` (:func:`border_plan`), the border runs."""
    for axis, _, lo, _, runs in plan:
        left = [_run_source(x, axis, *run[1:]) for run in runs if run[0] < lo]
        right = [_run_source(x, axis, *run[1:]) for run in runs if run[0] >= lo]
        x = torch.cat([*left, x, *right], axis)
    return x


def fold(canvas, plan):
    """``P.T``: add every padded position onto the input position it copies.

    Per axis of ``plan`` (:func:`border_plan`) the centre ``[lo, lo + n)`` is
    the input itself (zero-extended when ``hi < 0``); each border run is added
    onto its targets.
    """
    for axis, n, lo, size, runs in plan:
        pieces = [_run_fold(canvas.narrow(axis, position, length), axis, target, step)
                  for position, length, target, step in runs]
        centre = canvas.narrow(axis, lo, min(n, size - lo))
        if centre.shape[axis] < n:
            shape = list(centre.shape)
            shape[axis] = n - centre.shape[axis]
            canvas = torch.cat([centre, centre.new_zeros(shape)], axis)
        else:
            canvas = centre.clone(memory_format=torch.contiguous_format)
        for start, piece in pieces:
            canvas.narrow(axis, start, piece.shape[axis]).add_(piece)
    return canvas
