"""Figures of the transposed convolution's *canvas*: the window each padding convention keeps, and
the two constructions of the canvas ("scatter the kernel", "insert zeros, then convolve").

The canvas is the uncropped transposed convolution, ``(i - 1) * stride + k_eff`` cells per axis
(Keras' ``padding="valid"``): every input times the kernel, added in at ``input * stride``. Every
other convention keeps a window of it, ``canvas[lo : lo + n]`` per axis. Both functions take one
channel (a 1-D or 2-D ``y`` and kernel; 1-D is drawn as a single row), compute every number with
:func:`tconv_sparse.conv_transpose`, and return the matplotlib Figure.
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.core.geometry import Geometry
from tconv_sparse.functional import conv_transpose
from tconv_sparse.analysis.plotting import _annotate, _as_image, _cell_grid, _fontsize, _pyplot, _text_colors

__all__ = ["plot_canvas_windows", "plot_scatter_vs_zero_insertion"]

_WINDOW_COLOR = "tab:green"


def _single_channel(y, kernel):
    """``(y[None], kernel[None, None])`` of a 1-D or 2-D input and kernel of the same rank."""
    y, kernel = np.asarray(y, dtype=float), np.asarray(kernel, dtype=float)
    if y.ndim not in (1, 2) or kernel.ndim != y.ndim:
        raise ValueError(f"y and kernel must both be 1-D or both 2-D, got shapes {y.shape} and {kernel.shape}")
    return y[None], kernel[None, None]


def _draw_values(ax, image, title, cmap="Blues"):
    image = _as_image(image, "image")
    ax.imshow(image, cmap=cmap, vmin=min(image.min(), 0), vmax=max(image.max(), 1e-12))
    _cell_grid(ax, image.shape)
    labels = np.vectorize(lambda value: f"{value:g}")(image)
    _annotate(ax, labels, _fontsize(image.shape, max(len(s) for s in labels.flat)), _text_colors(image))
    ax.set_title(title, fontsize=9)


def plot_canvas_windows(y, kernel, conventions, *, stride=1, dilation=1):
    """The canvas of ``conv_transpose(y, kernel)`` and, in one panel per convention, the window kept.

    Parameters
    ----------
    y : array_like, 1-D or 2-D
        The transposed convolution's input (one channel).
    kernel : array_like, same rank as ``y``
    conventions : dict
        ``label -> keyword arguments`` of :func:`tconv_sparse.conv_transpose` (``padding``,
        ``output_padding``, ``output_size``), e.g. ``{"CS231n": {"padding": 1,
        "output_padding": 1}, "Keras valid": {"padding": "valid"}}``.
    stride, dilation : int or tuple
        Shared by every convention.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per convention; each panel's title gives the output shape, and each panel
        checks that the window equals ``conv_transpose`` with that convention.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from tconv_sparse.analysis.canvas_figures import plot_canvas_windows
    >>> fig = plot_canvas_windows(np.arange(1.0, 5.0).reshape(2, 2), np.arange(1.0, 10.0).reshape(3, 3),
    ...     {"CS231n": {"padding": 1, "output_padding": 1}, "Keras": {"padding": "valid"}}, stride=2)
    >>> [ax.get_title() for ax in fig.axes]
    ['CS231n\\n4x4 = canvas[1:5, 1:5]', 'Keras\\n5x5 = canvas[0:5, 0:5]']
    """
    import matplotlib.patches as patches

    y, weight = _single_channel(y, kernel)
    canvas = conv_transpose(y, weight, stride=stride, dilation=dilation, padding="valid")[0]
    image = _as_image(canvas, "canvas")
    plt = _pyplot()
    width = max(0.45 * image.shape[1] + 0.6, 0.075 * max(map(len, conventions)) + 0.4, 2.6)
    figure, axes = plt.subplots(1, len(conventions), figsize=(width * len(conventions), 0.45 * image.shape[0] + 1.4),
                                layout="constrained", squeeze=False)
    for ax, (label, options) in zip(axes[0], conventions.items()):
        result = conv_transpose(y, weight, stride=stride, dilation=dilation, **options)[0]
        geometry = Geometry.transposed(weight.shape, y.shape[1:], stride=stride, dilation=dilation, **options)
        starts = [lo for lo, _ in geometry.padding]
        window = tuple(slice(lo, lo + n) for lo, n in zip(starts, result.shape))
        if not np.array_equal(canvas[window], result):   # hi < 0: the window reaches past the canvas
            raise ValueError(f"convention {label!r} keeps cells outside the canvas: {options}")
        _draw_values(ax, image, "")
        (r0, c0), (rows, cols) = ([0] + starts)[-2:], ((1,) + result.shape)[-2:]
        ax.add_patch(patches.Rectangle((c0 - 0.5, r0 - 0.5), cols, rows, fill=False,
                                       edgecolor=_WINDOW_COLOR, linewidth=3, linestyle="--"))
        ax.set_title(f"{label}\n{'x'.join(map(str, result.shape))} = canvas["
                     + ", ".join(f"{s.start}:{s.stop}" for s in window) + "]", fontsize=9)
    figure.suptitle(f"the {'x'.join(map(str, canvas.shape))} canvas: every input times the kernel, added in at "
                    "input * stride;\nthe window each convention keeps is dashed", fontsize=10)
    return figure


def _zero_inserted(y, kernel_shape, stride, dilation):
    """``y`` with ``stride - 1`` zeros between its samples, padded by ``k_eff - 1`` on both sides."""
    y = np.asarray(y)
    stride = np.broadcast_to(stride, y.ndim)
    k_eff = [d * (k - 1) + 1 for k, d in zip(kernel_shape, np.broadcast_to(dilation, y.ndim))]
    spread = np.zeros([(n - 1) * s + 1 for n, s in zip(y.shape, stride)])
    spread[tuple(slice(None, None, s) for s in stride)] = y
    return np.pad(spread, [(k - 1, k - 1) for k in k_eff])


def plot_scatter_vs_zero_insertion(y, kernel, *, stride=1):
    """"Scatter the kernel" and "insert zeros, then convolve" side by side, with their equal results.

    The top row scatters: every input value times the kernel, added into the canvas at
    ``input * stride`` (``method="scatter"``). The bottom row inserts ``stride - 1`` zeros between
    the inputs, pads by ``k - 1``, and slides the *flipped* kernel with stride 1
    (``method="zero_insert"``). Both give the canvas, :func:`tconv_sparse.conv_transpose` with
    ``padding="valid"``.

    Parameters
    ----------
    y : array_like, 1-D or 2-D
    kernel : array_like, same rank as ``y``
    stride : int or tuple

    Returns
    -------
    matplotlib.figure.Figure
        Six panels; the suptitle states whether the two results are identical.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from tconv_sparse.analysis.canvas_figures import plot_scatter_vs_zero_insertion
    >>> fig = plot_scatter_vs_zero_insertion([[1.0, 2.0], [3.0, 4.0]], np.arange(1.0, 10.0).reshape(3, 3),
    ...                                      stride=2)
    >>> fig.get_suptitle()
    'scatter == zero insertion: True (largest difference 0)'
    """
    y, weight = _single_channel(y, kernel)
    scatter = conv_transpose(y, weight, stride=stride, padding="valid", method="scatter")[0]
    zero_insert = conv_transpose(y, weight, stride=stride, padding="valid", method="zero_insert")[0]
    flipped = weight[0, 0][(slice(None, None, -1),) * (weight.ndim - 2)]
    plt = _pyplot()
    image = _as_image(_zero_inserted(y[0], weight.shape[2:], stride, 1), "y")
    cell = 0.42
    figure, axes = plt.subplots(2, 3, figsize=(cell * (image.shape[1] + 2 * scatter.shape[-1]) + 3,
                                               2 * cell * image.shape[0] + 2), layout="constrained")
    _draw_values(axes[0, 0], y[0], "input y", cmap="Greys")
    _draw_values(axes[0, 1], weight[0, 0], "kernel", cmap="Reds")
    _draw_values(axes[0, 2], scatter, "scatter: y[i] * kernel added at i * stride")
    _draw_values(axes[1, 0], image, "y with stride - 1 zeros inserted, padded by k - 1", cmap="Greys")
    _draw_values(axes[1, 1], flipped, "kernel flipped", cmap="Reds")
    _draw_values(axes[1, 2], zero_insert, "zero insertion: slide the flipped kernel, stride 1")
    difference = float(np.max(np.abs(scatter - zero_insert)))
    figure.suptitle(f"scatter == zero insertion: {np.array_equal(scatter, zero_insert)} "
                    f"(largest difference {difference:g})", fontsize=10)
    return figure
