"""Matplotlib figures for the analyses: overlap maps, symbolic matrices, conv-arithmetic frames.

matplotlib is imported inside each function (it is an optional dependency,
``pip install tconv-sparse[plot]``). Every function draws on a given
``matplotlib.axes.Axes`` or creates its figure with :mod:`matplotlib.pyplot`
(so notebooks and sphinx-gallery pick it up) and returns what it drew on.
1-D data is drawn as a single row.
"""

from __future__ import annotations

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import kernel_geometry
from tconv_sparse.analysis.symbolic import default_input_names, default_kernel_names

__all__ = ["plot_overlap_map", "plot_symbolic_matrix", "plot_conv_arithmetic"]

#: Largest canvas (cells per axis) drawn by :func:`plot_conv_arithmetic`.
_MAX_FRAME_CELLS = 64
_WINDOW_COLOR = "tab:green"
_FOOTPRINT_COLOR = "tab:red"


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _as_image(array, name):
    array = np.asarray(array)
    if array.ndim == 1:
        return array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D to be drawn, got shape {array.shape}")
    return array


def _text_colors(image: np.ndarray) -> np.ndarray:
    """White text on cells above 60% of the image's maximum (dark in the colour maps used), black
    elsewhere."""
    return np.where(image > 0.6 * image.max(), "white", "black")


def _cell_grid(ax, shape):
    """Cell borders and no ticks for an image of ``shape``."""
    ax.set_xticks(np.arange(shape[1] + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(shape[0] + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.6", linewidth=0.5)
    ax.tick_params(which="both", length=0)
    ax.set_xticks([])
    ax.set_yticks([])


def _annotate(ax, labels, fontsize, colors=None):
    for (row, col), text in np.ndenumerate(labels):
        if text:
            color = "black" if colors is None else colors[row, col]
            ax.text(col, row, text, ha="center", va="center", fontsize=fontsize, color=color)


def _fontsize(shape, longest=1):
    return float(np.clip(80 / (max(shape) * max(longest, 2) ** 0.5), 5, 14))


def plot_overlap_map(counts, *, ax=None, annotate=True, cmap="Blues", title="overlap map"):
    """Draw an overlap map (:func:`tconv_sparse.overlap_map`) as a shaded grid of counts.

    Parameters
    ----------
    counts : array_like of int, 1-D or 2-D
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.
    annotate : bool
        Write each count in its cell.
    cmap : str
        Colormap; darker means more products land on the pixel.
    title : str or None

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import tconv_sparse as ts
    >>> from tconv_sparse.analysis.plotting import plot_overlap_map
    >>> ax = plot_overlap_map(ts.overlap_map((3, 3), (4, 4), stride=2))
    >>> ax.images[0].get_array().shape
    (9, 9)
    """
    image = _as_image(counts, "counts")
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(0.45 * image.shape[1] + 1.5, 0.45 * image.shape[0] + 1))
    ax.imshow(image, cmap=cmap, vmin=0, vmax=max(int(image.max()), 1))
    _cell_grid(ax, image.shape)
    if annotate:
        _annotate(ax, image.astype(str), _fontsize(image.shape), _text_colors(image))
    if title:
        ax.set_title(title)
    return ax


def plot_symbolic_matrix(symbolic, *, transpose=False, ax=None, cmap="tab10"):
    """Spy plot of a symbolic ``C`` (or ``C.T``) with its tap names written in the cells.

    Parameters
    ----------
    symbolic : SymbolicConv
        From :func:`tconv_sparse.symbolic_conv_transpose`.
    transpose : bool
        Draw ``C.T`` instead of ``C``.
    ax : matplotlib.axes.Axes, optional
    cmap : str
        Qualitative colormap; each tap gets one color (by the first tap of a cell).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import tconv_sparse as ts
    >>> from tconv_sparse.analysis.plotting import plot_symbolic_matrix
    >>> ax = plot_symbolic_matrix(ts.symbolic_conv_transpose(3, 2, stride=2))
    >>> [t.get_text() for t in ax.texts]
    ['x', 'y', 'z', 'x', 'y', 'z']
    """
    import matplotlib.colors as mcolors

    labels = symbolic.transpose if transpose else symbolic.matrix
    tap_index = {name: i for i, name in enumerate(symbolic.kernel_names.ravel())}
    taps = np.array([[tap_index[s.split(" + ")[0]] if s != "0" else -1 for s in row] for row in labels])
    if ax is None:
        rows, cols = labels.shape
        _, ax = _pyplot().subplots(figsize=(min(0.4 * cols + 1.5, 20), min(0.4 * rows + 1, 20)))
    palette = _pyplot().get_cmap(cmap)
    colors = [(1, 1, 1, 1)] + [palette(i % palette.N) for i in range(len(tap_index))]
    ax.imshow(taps + 1, cmap=mcolors.ListedColormap(colors), vmin=0, vmax=len(tap_index),
              interpolation="nearest")
    _cell_grid(ax, labels.shape)
    _annotate(ax, np.where(labels == "0", "", labels),
              _fontsize(labels.shape, max(len(s) for s in labels.flat)))
    inputs = list(symbolic.input_names.ravel())
    names = ("columns: transposed inputs", "rows: transposed outputs") if transpose else \
        ("columns: transposed outputs", "rows: transposed inputs")
    axis = ax.set_xticks if transpose else ax.set_yticks
    axis(range(len(inputs)), inputs)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("C.T" if transpose else "C")
    return ax


def _as_2d_geometry(geometry):
    """Per-axis ``(i, k, stride, dilation, lo, n)`` with a leading singleton axis for 1-D."""
    if geometry.ndim > 2:
        raise ValueError(f"conv-arithmetic frames are drawn for 1-D and 2-D, got {geometry.ndim}-D")
    axes = [(i, k, s, d, lo, n) for i, k, s, d, (lo, _), n in zip(
        geometry.output_shape, geometry.kernel_shape, geometry.stride, geometry.dilation,
        geometry.padding, geometry.input_shape)]
    return ([(1, 1, 1, 1, 0, 1)] if len(axes) == 1 else []) + axes


def _index_text(index, ndim):
    return str(index[-1]) if ndim == 1 else str(tuple(index))


def _footprint(axes, position):
    """Canvas cells ``o * stride + t * dilation`` of the input at ``position``."""
    per_axis = [o * s + np.arange(k) * d for o, (_, k, s, d, _, _) in zip(position, axes)]
    return [(r, c) for r in per_axis[0] for c in per_axis[1]]


def _draw_input(ax, geometry, axes):
    """The transposed convolution's input, its cells named ``a, b, ...``."""
    shape = (axes[0][0], axes[1][0])
    ax.imshow(np.zeros(shape), cmap="Greys", vmin=0, vmax=1)
    _cell_grid(ax, shape)
    _annotate(ax, np.array(default_input_names(shape)).reshape(shape), _fontsize(shape))
    ax.set_title(f"input {'x'.join(map(str, geometry.output_shape))}", fontsize=9)


def _draw_kernel(ax, geometry, axes):
    """The kernel with its taps named ``x, y, z, ...``, spread by the dilation."""
    shape, dilation = (axes[0][1], axes[1][1]), (axes[0][3], axes[1][3])
    image = np.zeros(tuple(d * (k - 1) + 1 for k, d in zip(shape, dilation)))
    labels = np.full(image.shape, "", dtype=object)
    image[:: dilation[0], :: dilation[1]] = 1
    labels[:: dilation[0], :: dilation[1]] = np.array(
        default_kernel_names(geometry.kernel_shape), dtype=object).reshape(shape)
    ax.imshow(image, cmap="Reds", vmin=0, vmax=2.5)
    _cell_grid(ax, image.shape)
    _annotate(ax, labels, _fontsize(image.shape, 3))
    ax.set_title(f"kernel {'x'.join(map(str, geometry.kernel_shape))}"
                 + (f", dilation {geometry.dilation}" if max(geometry.dilation) > 1 else ""), fontsize=9)


def plot_conv_arithmetic(kernel_shape, input_shape, *, stride=1, padding=0, output_padding=None,
                         output_size=None, dilation=1, max_frames=16):
    """Frames of a transposed convolution, as in the conv_arithmetic animations.

    The top row shows the input, the kernel and the final overlap counts on
    the *canvas*, the uncropped output of ``(i - 1) * stride + k_eff`` cells per
    axis, with the kept output window (``canvas[lo : lo + n]``) outlined in
    green; cropped cells are outside it. Each further frame adds one input
    pixel: its kernel footprint (outlined red) lands at ``input * stride``, and
    the shading counts the products accumulated so far, so overlaps get darker.

    Parameters
    ----------
    kernel_shape, input_shape, stride, padding, output_padding, output_size, dilation
        As in :func:`tconv_sparse.overlap_map` (1-D or 2-D).
    max_frames : int
        Draw at most this many per-input frames (the first ones, row-major).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from tconv_sparse.analysis.plotting import plot_conv_arithmetic
    >>> fig = plot_conv_arithmetic((3, 3), (2, 2), stride=2, padding=1, output_padding=1)
    >>> len(fig.axes)          # input, kernel, result, one frame per input pixel
    7
    """
    import matplotlib.patches as patches

    geometry = kernel_geometry(kernel_shape, input_shape, stride=stride, padding=padding,
                               output_padding=output_padding, output_size=output_size, dilation=dilation)
    max_frames = v.parse_int_tuple("max_frames", max_frames, 1, 0)[0]
    axes = _as_2d_geometry(geometry)
    canvas = tuple(max((i - 1) * s + d * (k - 1) + 1, lo + n) for i, k, s, d, lo, n in axes)
    if max(canvas) > _MAX_FRAME_CELLS:
        raise ValueError(f"conv-arithmetic frames are drawn for canvases of up to {_MAX_FRAME_CELLS} cells per "
                         f"axis, got a canvas of {'x'.join(map(str, canvas[2 - geometry.ndim:]))} cells")
    inputs = [tuple(p) for p in np.ndindex(*(a[0] for a in axes))]
    frames = inputs[:max_frames]
    columns = max(3, min(4, len(frames)))
    rows = 1 + -(-len(frames) // columns)
    plt = _pyplot()
    cell = 0.32
    fig = plt.figure(figsize=(columns * max(canvas[1] * cell, 2.2), rows * (canvas[0] * cell + 0.7)),
                     layout="constrained")
    grid = fig.add_gridspec(rows, columns)

    def draw_canvas(ax, counts, footprint, title):
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(total.max()), 1))
        _cell_grid(ax, canvas)
        (lo_r, n_r), (lo_c, n_c) = [(a[4], a[5]) for a in axes]
        ax.add_patch(patches.Rectangle((lo_c - 0.5, lo_r - 0.5), n_c, n_r, fill=False,
                                       edgecolor=_WINDOW_COLOR, linewidth=2, linestyle="--"))
        for r, c in footprint:
            ax.add_patch(patches.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False,
                                           edgecolor=_FOOTPRINT_COLOR, linewidth=1.5))
        ax.set_title(title, fontsize=9)

    total = np.zeros(canvas, dtype=int)
    for position in inputs:
        for r, c in _footprint(axes, position):
            total[r, c] += 1
    _draw_input(fig.add_subplot(grid[0, 0]), geometry, axes)
    _draw_kernel(fig.add_subplot(grid[0, 1]), geometry, axes)
    result_ax = fig.add_subplot(grid[0, 2])
    draw_canvas(result_ax, total, [], f"output {'x'.join(map(str, geometry.input_shape))} = dashed window")
    _annotate(result_ax, total.astype(str), _fontsize(canvas), _text_colors(total))
    counts = np.zeros(canvas, dtype=int)
    for index, position in enumerate(frames):
        footprint = _footprint(axes, position)
        for r, c in footprint:
            counts[r, c] += 1
        ax = fig.add_subplot(grid[1 + index // columns, index % columns])
        origin = tuple(o * a[2] for o, a in zip(position, axes))
        draw_canvas(ax, counts.copy(), footprint, f"input {_index_text(position, geometry.ndim)} "
                                                  f"x kernel at {_index_text(origin, geometry.ndim)}")
    if len(frames) < len(inputs):
        fig.suptitle(f"first {len(frames)} of {len(inputs)} input pixels", fontsize=9)
    return fig
