"""The demo's figures (issue 14 item 16): nothing clipped or overlapping, C and C.T unpadded and padded,
both windows of the CS231n-vs-Keras answer in one figure, scatter vs zero insertion, and a speed plot
whose legend lists only the methods that were timed."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

import tconv_sparse as ts  # noqa: E402
from tconv_sparse.analysis.canvas_figures import plot_canvas_windows, plot_scatter_vs_zero_insertion  # noqa: E402
from tconv_sparse.bench import cases, report, runners  # noqa: E402
from tconv_sparse.cli.demo_figures import DPI, matrix_figure  # noqa: E402

SEED_Y, SEED_KERNEL = np.arange(1.0, 5.0).reshape(2, 2), np.arange(1.0, 10.0).reshape(3, 3)
TINY = cases.ConvCase("tiny", batch=2, channels=3, out_channels=2, shape=(9, 8), kernel=3, stride=2)


def _assert_nothing_clipped(figure):
    """Everything drawn (titles, labels, drawn tick labels, legends, cell texts) lies inside the figure,
    and no axes' decorations overlap another axes."""
    if not hasattr(figure.canvas, "get_renderer"):      # a bare matplotlib.figure.Figure
        FigureCanvasAgg(figure)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    drawn, page = figure.get_tightbbox(renderer), figure.bbox_inches
    tolerance = 1 / figure.dpi
    assert drawn.x0 >= page.x0 - tolerance and drawn.x1 <= page.x1 + tolerance, (drawn, page)
    assert drawn.y0 >= page.y0 - tolerance and drawn.y1 <= page.y1 + tolerance, (drawn, page)
    axes = figure.axes
    for i, first in enumerate(axes):
        for second in axes[i + 1:]:
            assert not first.get_tightbbox(renderer).overlaps(second.get_tightbbox(renderer)), (
                first.get_title(), second.get_title())


def _symbolic():
    return (ts.symbolic_conv_transpose(3, 2, stride=2),
            ts.symbolic_conv_transpose(3, 2, stride=2, padding=1, output_padding=1))


def test_matrix_figure_shows_c_and_ct_unpadded_and_padded():
    valid, padded = _symbolic()
    figure = matrix_figure(plt, valid, padded)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ['C, no padding (Keras "valid"): 2 x 5', 'C.T, no padding (Keras "valid"): 5 x 2',
                      "C, padding 1, output_padding 1 (CS231n): 2 x 4",
                      "C.T, padding 1, output_padding 1 (CS231n): 4 x 2"]
    # the cells hold the symbolic matrices' entries
    cells = {t.get_text() for t in figure.axes[1].texts}
    assert {"x", "y", "z"} <= cells
    assert [t.get_text() for t in figure.axes[3].texts] == [s for row in padded.transpose for s in row if s != "0"]
    width, height = figure.get_size_inches() * DPI
    assert width >= 800 and height >= 600
    _assert_nothing_clipped(figure)
    plt.close(figure)


def test_canvas_windows_one_figure_both_conventions():
    figure = plot_canvas_windows(SEED_Y, SEED_KERNEL, {  # the demo's labels
        "CS231n: padding=1, output_padding=1": {"padding": 1, "output_padding": 1},
        'Keras: padding="valid"': {"padding": "valid"}}, stride=2)
    cs231n, keras = figure.axes
    assert cs231n.get_title() == "CS231n: padding=1, output_padding=1\n4x4 = canvas[1:5, 1:5]"
    assert keras.get_title() == 'Keras: padding="valid"\n5x5 = canvas[0:5, 0:5]'
    canvas = ts.conv_transpose(SEED_Y[None], SEED_KERNEL[None, None], stride=2, padding="valid")[0]
    for ax, (start, size) in ((cs231n, (1, 4)), (keras, (0, 5))):
        np.testing.assert_array_equal(ax.images[0].get_array(), canvas)
        (window,) = ax.patches
        assert window.get_xy() == (start - 0.5, start - 0.5) and window.get_width() == size
        assert [t.get_text() for t in ax.texts] == [f"{value:g}" for value in canvas.ravel()]
    _assert_nothing_clipped(figure)
    plt.close(figure)


def test_canvas_windows_refuse_windows_past_the_canvas():
    # k=2 < stride 3 with output_padding 2: 7 outputs, two past the 6-cell canvas (hi < 0)
    with pytest.raises(ValueError, match="outside the canvas"):
        plot_canvas_windows([1.0, 2.0], [1.0, 1.0], {"op 2": {"output_padding": 2}}, stride=3)
    with pytest.raises(ValueError, match="both be 1-D or both 2-D"):
        plot_canvas_windows(np.ones((2, 2, 2)), np.ones((3, 3, 3)), {"v": {}})


def test_scatter_vs_zero_insertion_figure():
    figure = plot_scatter_vs_zero_insertion(SEED_Y, SEED_KERNEL, stride=2)
    assert figure.get_suptitle() == "scatter == zero insertion: True (largest difference 0)"
    scatter, zero_insert = figure.axes[2].images[0].get_array(), figure.axes[5].images[0].get_array()
    expected = ts.conv_matrix(SEED_KERNEL[None, None], (5, 5), stride=2).T @ SEED_Y.ravel()
    np.testing.assert_array_equal(scatter.ravel(), expected)
    np.testing.assert_array_equal(zero_insert.ravel(), expected)
    spread = np.asarray(figure.axes[3].images[0].get_array())
    assert spread.shape == (7, 7) and spread[2, 2] == 1 and spread[2, 4] == 2 and spread[3].sum() == 0
    np.testing.assert_array_equal(figure.axes[4].images[0].get_array(), SEED_KERNEL[::-1, ::-1])
    _assert_nothing_clipped(figure)
    plt.close(figure)
    one_d = plot_scatter_vs_zero_insertion([1.0, 2.0, 3.0], [1.0, 2.0], stride=3)
    assert one_d.get_suptitle().startswith("scatter == zero insertion: True")
    plt.close(one_d)


def test_speed_plot_legend_outside_and_only_timed_methods(tmp_path):
    results = [runners.Measurement(direction, TINY, "float32", method, times=[1e-4 * (i + 1)] * 3)
               for direction in ("conv_transpose", "conv") for i, method in enumerate(("auto", "im2col"))]
    results += [runners.Measurement(direction, TINY, "float32", "torch", status=runners.UNSUPPORTED)
                for direction in ("conv_transpose", "conv")]
    captured = {}
    original = matplotlib.figure.Figure.savefig

    def keep(figure, path, **kwargs):
        captured["figure"] = figure
        return original(figure, path, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matplotlib.figure.Figure, "savefig", keep)
        report.plot(tmp_path / "speed.png", results)
    figure = captured["figure"]
    assert (tmp_path / "speed.png").stat().st_size > 5000
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["auto", "im2col"]    # torch was n/a
    assert all(ax.get_legend() is None for ax in figure.axes)
    _assert_nothing_clipped(figure)
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
