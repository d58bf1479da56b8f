"""Checks of the Dask inputs and the output chunks of :mod:`tconv_sparse.dask`."""

from __future__ import annotations

import math

import numpy as np

import dask.array as da
from dask.array.core import normalize_chunks

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry


def as_dask(name: str, data, numpy_function: str) -> da.Array:
    if not isinstance(data, da.Array):
        raise v.ParameterTypeError(
            f"{name} must be a dask.array.Array, got {type(data).__name__}; for in-memory arrays "
            f"use tconv_sparse.{numpy_function}"
        )
    if any(math.isnan(size) for size in data.shape):
        raise ValueError(
            f"{name} has unknown chunk sizes (shape {data.shape}); the halo of each block is derived "
            f"from the chunk sizes, so call {name}.compute_chunk_sizes() first"
        )
    return data


def as_weight(weight) -> np.ndarray:
    if isinstance(weight, da.Array):
        raise v.ParameterTypeError(
            "weight must be an in-memory array (it is sent once to every worker), got a "
            "dask.array.Array; call weight.compute() first"
        )
    return v.as_weight(weight)


def as_sample(name: str, data: da.Array, spatial_ndim: int):
    """``v.as_data`` on a zero-copy stand-in of ``data``'s shape and dtype: the same checks, no compute."""
    return v.as_data(name, np.broadcast_to(np.zeros((), data.dtype), data.shape), spatial_ndim)


def bounds(chunks) -> np.ndarray:
    """Block boundaries ``0, c0, c0 + c1, ...`` of the chunk sizes ``chunks``."""
    return np.cumsum((0, *chunks))


def _scaled_chunks(input_chunks, scale: int, divisor: int, output_size: int) -> tuple:
    """The input's chunk boundaries ``b`` mapped to ``b * scale // divisor``, the last one to ``output_size``."""
    scaled = np.minimum(bounds(input_chunks)[:-1] * scale // divisor, output_size)
    return tuple(int(size) for size in np.diff(np.unique(np.append(scaled, output_size))))


def output_chunks(chunks, data: da.Array, geometry: Geometry, transposed: bool, dtype) -> tuple:
    """Spatial chunks of the output: the input's scaled by the stride, or ``chunks``."""
    outputs = geometry.input_shape if transposed else geometry.output_shape
    if chunks is None:
        return tuple(_scaled_chunks(c, s if transposed else 1, 1 if transposed else s, m)
                     for c, s, m in zip(data.chunks[2:], geometry.stride, outputs))
    try:
        normalized = normalize_chunks(chunks, shape=outputs, dtype=dtype)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"chunks={chunks!r} is not a chunking of the output's spatial shape {outputs} (one entry "
            f"per spatial axis: a chunk size, or chunk sizes that add up to the axis): {error}"
        ) from None
    if any(min(axis) < 1 for axis in normalized):
        raise ValueError(f"chunks={chunks!r} has an empty chunk ({normalized}); every chunk must be >= 1")
    return normalized
