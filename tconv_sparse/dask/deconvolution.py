"""``deconvolve`` on a Dask batch: independent problems, one task per batch chunk (see :mod:`tconv_sparse.dask`)."""

from __future__ import annotations

import string
import sys
from dataclasses import dataclass

import numpy as np

import dask
import dask.array as da

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry, conv_transpose_output_shape
from tconv_sparse.solvers.deconvolution import DeconvolutionResult
from tconv_sparse.solvers.deconvolution import deconvolve as _deconvolve
from tconv_sparse.dask._inputs import as_dask, as_sample, as_weight

__all__ = ["deconvolve"]


@dataclass(frozen=True)
class _Solve:
    """Runs :func:`tconv_sparse.deconvolve` on one batch chunk; one record per sample."""

    weight: np.ndarray
    options: dict

    def __call__(self, h: np.ndarray, x0) -> np.ndarray:
        result = _deconvolve(h, self.weight, x0=x0, **self.options)
        records = np.empty(len(h), dtype=object)
        for sample in range(len(h)):
            records[sample] = DeconvolutionResult(result.x[sample], result.iterations[sample],
                                                  result.residuals[sample], result.converged[sample],
                                                  result.solver, result.damp[sample])
        return records


def _solve_block(h, x0, solve):
    return solve(h, x0)


def _field(records: np.ndarray, name: str) -> np.ndarray:
    values = [getattr(record, name) for record in records]
    if name != "residuals":
        return np.stack(values)
    histories = np.empty(len(values), dtype=object)
    for sample, history in enumerate(values):
        histories[sample] = history
    return histories


def deconvolve(h, weight, input_shape=None, *, stride=1, padding=0, dilation=1, groups=1,
               padding_mode="zeros", solver="lsqr", damp=0.0, damp_rule="gcv", noise_std=None, regularizer=None,
               x0=None, maxiter=None, tol=None, clip=False, callback=None, progress=False):
    """Lazy :func:`tconv_sparse.deconvolve` of a Dask batch: independent problems, one task per batch chunk.

    Every sample is solved by the in-memory :func:`tconv_sparse.deconvolve`
    with these arguments, so its result is identical to the in-memory one.
    Each batch chunk shares one operator (and, for ``"direct"``, one
    factorisation). The solver options are checked by the in-memory function
    inside each task, so an invalid option surfaces when the result is
    computed; the Dask layout (and the shapes) are checked here.

    Parameters
    ----------
    h : dask.array.Array, shape ``(N, C_out, *out)`` or ``(C_out, *out)``
        Chunked along the batch axis only: one sample must fit a worker.
    weight, input_shape, stride, padding, dilation, groups, padding_mode, solver, damp, damp_rule, noise_std
        As in :func:`tconv_sparse.deconvolve` (``damp="auto"`` chooses each sample's ``damp`` in its task).
    regularizer
        As in :func:`tconv_sparse.deconvolve`.
    maxiter, tol, clip
        As in :func:`tconv_sparse.deconvolve`.
    x0 : array_like or dask.array.Array, optional
        Shaped like the result (batched: rechunked to ``h``'s batch chunks)
        or like one sample (shared).
    callback : callable, optional
        As in :func:`tconv_sparse.deconvolve`, called inside the tasks (on
        the workers), concurrently for different batch chunks.
    progress : bool
        ``True``: solve now, under :class:`dask.diagnostics.ProgressBar` on
        stderr (one bar over the tasks; a bar per task would interleave):
        the result's arrays are persisted (:func:`dask.persist`), still Dask
        arrays. With a ``distributed`` client persisting returns at once;
        follow it on the dashboard or with ``distributed.progress``.

    Returns
    -------
    DeconvolutionResult
        ``.x`` a lazy ``(N, C_in, *input_shape)`` array (``h``'s batch
        chunks), ``.iterations``, ``.converged`` and ``.damp`` lazy ``(N,)`` arrays,
        ``.residuals`` a lazy ``(N,)`` object array of histories. They share
        their solves: compute them together,
        ``dask.compute(result.x, result.converged)``, to solve once.

    Raises
    ------
    ValueError
        Before any work: ``h`` chunked along a channel or spatial axis, ``h``
        whose shape does not match the geometry, a batched ``x0`` with another
        batch size, a ``progress`` that is not a bool, a Dask ``weight``.

    Examples
    --------
    >>> import dask, numpy as np, dask.array as da, tconv_sparse as ts, tconv_sparse.dask as tsd
    >>> w = np.array([[[0.25, 0.5, 0.25]]])
    >>> g = np.random.default_rng(0).random((6, 1, 16))
    >>> h = da.from_array(ts.conv(g, w, padding=1), chunks=(2, 1, 16))
    >>> result = tsd.deconvolve(h, w, padding=1, solver="cg")
    >>> x, converged = dask.compute(result.x, result.converged)
    >>> bool(np.abs(x - g).max() < 1e-3), converged.tolist() == [True] * 6, result.x.chunks[0]
    (True, True, (2, 2, 2))
    """
    weight = as_weight(weight)
    h = as_dask("h", h, "deconvolve")
    sample, batched = as_sample("h", h, weight.ndim - 2)
    if not isinstance(progress, (bool, np.bool_)):
        raise v.ParameterTypeError(f"progress must be True or False, got {progress!r}")
    h = h if batched else h[None]
    if any(len(chunks) > 1 for chunks in h.chunks[1:]):
        axes = range(1, h.ndim) if batched else range(h.ndim - 1)
        raise ValueError(
            f"h must be chunked along the batch axis only (each task solves whole samples), got chunks "
            f"{h.chunks[1:]} on the channel and spatial axes; rechunk with "
            f"h.rechunk({{{', '.join(f'{axis}: -1' for axis in axes)}}})"
        )
    conv_kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                   "padding_mode": padding_mode}
    spatial = h.shape[2:]
    if input_shape is None:
        input_shape = conv_transpose_output_shape(spatial, weight.shape[2:], stride=stride, padding=padding,
                                                  dilation=dilation)
    geometry = Geometry.forward(weight.shape, input_shape, **conv_kwargs)
    if geometry.output_shape != tuple(spatial) or h.shape[1] != geometry.out_channels:
        raise ValueError(
            f"h has shape {sample.shape}, but the convolution of input_shape={geometry.input_shape} with "
            f"the weight {weight.shape} and these parameters produces {geometry.out_channels} channels of "
            f"{geometry.output_shape}"
        )
    # blockwise indices: "n" the batch, lower case h's other axes, upper case x0's (whole per task)
    if x0 is None:
        x0_arguments = (None, None)
    else:
        x0 = da.asarray(x0)
        if batched and x0.ndim == h.ndim:
            if x0.shape[0] != h.shape[0]:
                raise ValueError(f"x0 has {x0.shape[0]} samples but h has {h.shape[0]}")
            x0 = x0.rechunk((h.chunks[0],) + (-1,) * (x0.ndim - 1))
            x0_arguments = (x0, "n" + string.ascii_uppercase[:x0.ndim - 1])
        else:  # one sample, shared by every task
            x0_arguments = (x0, string.ascii_uppercase[:x0.ndim])
    solve = _Solve(weight, {"input_shape": geometry.input_shape, "solver": solver, "damp": damp,
                            "damp_rule": damp_rule, "noise_std": noise_std, "regularizer": regularizer,
                            "maxiter": maxiter, "tol": tol, "clip": clip, "callback": callback, **conv_kwargs})
    records = da.blockwise(_solve_block, "n", h, "n" + string.ascii_lowercase[:h.ndim - 1], *x0_arguments,
                           dask.delayed(solve, pure=True, traverse=False), None, concatenate=True,
                           dtype=object, meta=np.empty((0,), dtype=object), token="tconv_sparse-deconvolve")
    dtype = v.result_dtype(sample, weight)
    x = records.map_blocks(_field, "x", new_axis=list(range(1, h.ndim)), dtype=dtype,
                           chunks=(h.chunks[0], (geometry.in_channels,), *((n,) for n in geometry.input_shape)),
                           meta=np.empty((0,) * h.ndim, dtype=dtype))
    fields = [x] + [records.map_blocks(_field, name, dtype=kind, meta=np.empty((0,), dtype=kind))
                    for name, kind in (("iterations", np.int64), ("residuals", object), ("converged", bool),
                                       ("damp", np.float64))]
    if not batched:
        fields = [field[0] for field in fields]
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            fields = dask.persist(*fields)
    return DeconvolutionResult(*fields[:4], solver, fields[4])
