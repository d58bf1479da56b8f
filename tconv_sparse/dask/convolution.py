"""``conv``, ``conv_transpose`` and ``read_amplification`` on Dask arrays (see :mod:`tconv_sparse.dask`)."""

from __future__ import annotations

from tconv_sparse.dask._blocks import block_graph

__all__ = ["conv", "conv_transpose", "read_amplification"]


def conv(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
         method="auto", chunks=None):
    """Lazy N-D convolution of a Dask array; :func:`tconv_sparse.conv` per block.

    Parameters
    ----------
    x : dask.array.Array, shape ``(N, C_in, *spatial)`` or ``(C_in, *spatial)``
        Any chunking with known chunk sizes; the channel axis is rechunked to
        one chunk.
    weight, bias, stride, padding, dilation, groups, padding_mode, method
        As in :func:`tconv_sparse.conv`; ``weight`` and ``bias`` in memory.
    chunks : optional
        Spatial chunks of the output (anything
        :func:`dask.array.core.normalize_chunks` accepts for the output's
        spatial shape). Default: the input's chunk boundaries divided by the
        stride, the last chunk taking the remainder.

    Returns
    -------
    dask.array.Array
        ``(N, C_out, *out)`` or ``(C_out, *out)``, the batch chunks of ``x``,
        one channel chunk, equal to ``tconv_sparse.conv(x.compute(), ...)``
        to float rounding.

    Raises
    ------
    ValueError
        Everything :func:`tconv_sparse.conv` rejects, unknown chunk sizes, an
        invalid ``chunks``, or a Dask ``weight``; raised before any work.

    Examples
    --------
    A 3x3 "same" convolution with circular padding, each 5x4 tile reading
    its wrapped halo:

    >>> import numpy as np, dask.array as da, tconv_sparse as ts, tconv_sparse.dask as tsd
    >>> x, w = np.arange(2 * 10 * 8.0).reshape(2, 1, 10, 8), np.ones((1, 1, 3, 3))
    >>> lazy = tsd.conv(da.from_array(x, chunks=(1, 1, 5, 4)), w, padding="same",
    ...                 padding_mode="circular")
    >>> lazy.chunks
    ((1, 1), (1,), (5, 5), (4, 4))
    >>> bool(np.allclose(lazy.compute(), ts.conv(x, w, padding="same", padding_mode="circular")))
    True
    """
    return block_graph("x", x, weight, bias, method, chunks, False,
                 {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                  "padding_mode": padding_mode}).lazy()


def conv_transpose(y, weight, bias=None, *, stride=1, padding=0, output_padding=None, output_size=None,
                   dilation=1, groups=1, padding_mode="zeros", method="auto", chunks=None):
    """Lazy N-D transposed convolution ``C.T @ y`` of a Dask array; the in-memory kernels per block.

    Parameters
    ----------
    y : dask.array.Array, shape ``(N, C_in_t, *spatial)`` or ``(C_in_t, *spatial)``
        Any chunking with known chunk sizes; the channel axis is rechunked to
        one chunk.
    weight, bias, stride, padding, output_padding, output_size, dilation, groups, padding_mode, method
        As in :func:`tconv_sparse.conv_transpose`; ``weight`` and ``bias``
        in memory.
    chunks : optional
        Spatial chunks of the result (anything
        :func:`dask.array.core.normalize_chunks` accepts for the result's
        spatial shape). Default: ``y``'s chunk boundaries times the stride,
        the last chunk taking the remainder.

    Returns
    -------
    dask.array.Array
        ``(N, C_out_t, *out)`` or ``(C_out_t, *out)``, the batch chunks of
        ``y``, one channel chunk, equal to
        ``tconv_sparse.conv_transpose(y.compute(), ...)`` to float rounding.

    Raises
    ------
    ValueError
        Everything :func:`tconv_sparse.conv_transpose` rejects, unknown chunk
        sizes, an invalid ``chunks``, or a Dask ``weight``; raised before any
        work.

    Examples
    --------
    Keras-style ``"same"`` 2x upsampling of a 1-D signal in chunks of 3
    (smaller than the kernel), written to 4 uniform chunks of 6:

    >>> import numpy as np, dask.array as da, tconv_sparse as ts, tconv_sparse.dask as tsd
    >>> y, w = np.arange(12.0).reshape(1, 12), np.array([[[1.0, 2.0, 3.0, 2.0, 1.0]]])
    >>> lazy = tsd.conv_transpose(da.from_array(y, chunks=3), w, stride=2, padding="same", chunks=6)
    >>> lazy.shape, lazy.chunks[1]
    ((1, 24), (6, 6, 6, 6))
    >>> bool(np.allclose(lazy.compute(), ts.conv_transpose(y, w, stride=2, padding="same")))
    True
    """
    return block_graph("y", y, weight, bias, method, chunks, True,
                 {"stride": stride, "padding": padding, "output_padding": output_padding,
                  "output_size": output_size, "dilation": dilation, "groups": groups,
                  "padding_mode": padding_mode}).lazy()


def read_amplification(data, weight, *, transposed=False, chunks=None, **geometry) -> float:
    """Input elements the blocks of :func:`conv` (or :func:`conv_transpose`) read, per input element.

    The halo overhead of a chunking is ``read_amplification - 1``: every
    output block reads its input window plus the halo (and, with circular or
    reflect padding, the far-end pieces its border needs). It is a product of
    one factor per spatial axis, ``sum of the blocks' read lengths / size``.

    Parameters
    ----------
    data : dask.array.Array
        The input of :func:`conv` (``x``) or :func:`conv_transpose` (``y``).
    weight : array_like
    transposed : bool
        Plan :func:`conv_transpose` instead of :func:`conv`.
    chunks : optional
        The output chunks, as in :func:`conv`.
    **geometry
        ``stride``, ``padding``, ``dilation``, ``groups``, ``padding_mode``
        (and ``output_padding``/``output_size`` when transposed), as in
        :func:`conv` / :func:`conv_transpose`.

    Examples
    --------
    A 5x5 kernel on 100x100 tiles reads a 2-pixel halo on each side (one
    side at the image border, where "same" pads zeros): per axis
    ``(8 * 104 + 2 * 102) / 1000 = 1.036``, squared.

    >>> import numpy as np, dask.array as da, tconv_sparse.dask as tsd
    >>> x = da.zeros((1, 1, 1000, 1000), chunks=(1, 1, 100, 100))
    >>> round(tsd.read_amplification(x, np.ones((1, 1, 5, 5)), padding="same"), 4)
    1.0733
    """
    return block_graph("y" if transposed else "x", data, weight, None, "auto", chunks, transposed,
                 geometry).read_amplification
