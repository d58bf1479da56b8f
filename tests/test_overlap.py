"""Overlap maps: closed form per axis, outer products, column counts of C."""

import itertools
import math

import numpy as np
import pytest

import tconv_sparse as ts


def _closed_form(i, k, s, p, op):
    """Per-axis counts for dilation 1 and numeric padding ``p``: the taps ``t`` in
    ``[max(0, q - (i-1)s), min(k-1, q)]`` with ``t ≡ q (mod s)``, where ``q = j + p``."""
    n = (i - 1) * s - 2 * p + k + op
    counts = []
    for j in range(n):
        q = j + p
        first, last = max(0, q - (i - 1) * s), min(k - 1, q)
        residue = q % s
        counts.append(max(0, (last - residue) // s - -(-(first - residue) // s) + 1))
    return np.array(counts)


@pytest.mark.parametrize("i,k,s,p", [
    (i, k, s, p) for i, k, s, p in itertools.product((1, 2, 5), (1, 2, 3, 4, 5), (1, 2, 3), (0, 1, 2))
    if (i - 1) * s - 2 * p + k >= 1
])
def test_closed_form_per_axis(i, k, s, p):
    for op in range(s):
        counts = ts.overlap_map(k, i, stride=s, padding=p, output_padding=op)
        np.testing.assert_array_equal(counts, _closed_form(i, k, s, p, op))
        # every product that is not cropped away lands once
        full = ts.overlap_map(k, i, stride=s)
        assert full.sum() == i * k
        assert counts.dtype == np.int64


@pytest.mark.parametrize("k,s,d", [(3, 2, 1), (4, 2, 1), (5, 3, 1), (6, 3, 1), (3, 2, 2), (4, 4, 3),
                                   (1, 2, 1), (2, 3, 1)])
def test_interior_tile_and_checkerboard(k, s, d):
    summary = ts.overlap_summary(k, 12, stride=s, dilation=d, padding=1)
    k_eff = d * (k - 1) + 1
    interior = range(k_eff, len(summary.counts) - k_eff)
    for j in interior:
        assert summary.counts[j] == summary.tile[(j + 1) % s]
    uniform = k % s == 0 and math.gcd(d, s) == 1
    assert summary.checkerboard is (not uniform)
    assert summary.tile.sum() == k
    assert summary.ratio == (summary.max / summary.min if summary.min else float("inf"))


def test_kernel_smaller_than_stride_leaves_holes():
    summary = ts.overlap_summary(2, 3, stride=3)
    np.testing.assert_array_equal(summary.counts, [1, 1, 0, 1, 1, 0, 1, 1])
    assert summary.min == 0 and summary.ratio == float("inf") and summary.tile_ratio == float("inf")


def test_nd_map_is_outer_product_and_column_counts_of_c():
    rng = np.random.default_rng(0)
    for _ in range(25):
        ndim = int(rng.integers(1, 4))
        kernel = tuple(int(x) for x in rng.integers(1, 4, ndim))
        stride = tuple(int(x) for x in rng.integers(1, 4, ndim))
        dilation = tuple(int(x) for x in rng.integers(1, 3, ndim))
        shape = tuple(int(x) for x in rng.integers(1, 4, ndim))
        padding = str(rng.choice(["valid", "same"])) if rng.random() < 0.3 else 0
        counts = ts.overlap_map(kernel, shape, stride=stride, padding=padding, dilation=dilation)
        axes = [ts.overlap_map((k,), (i,), stride=s, padding=padding, dilation=d)
                for k, i, s, d in zip(kernel, shape, stride, dilation)]
        expected = axes[0]
        for axis in axes[1:]:
            expected = np.multiply.outer(expected, axis)
        np.testing.assert_array_equal(counts, expected)
        assert counts.shape == ts.conv_transpose_output_shape(shape, kernel, stride=stride,
                                                              padding=padding, dilation=dilation)
        # column counts of C's pattern: C.T @ ones with a ones kernel
        ones = np.ones((1, 1, *kernel))
        column_counts = ts.conv_transpose(np.ones((1, *shape)), ones, stride=stride, padding=padding,
                                          dilation=dilation, method="sparse")[0]
        np.testing.assert_array_equal(counts, column_counts)


def test_seed_examples():
    cs231n = ts.overlap_map((3, 3), (2, 2), stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(cs231n, np.outer([1, 2, 1, 1], [1, 2, 1, 1]))
    keras_same = ts.overlap_map((3, 3), (2, 2), stride=2, padding="same")
    np.testing.assert_array_equal(keras_same, np.outer([1, 1, 2, 1], [1, 1, 2, 1]))
    assert ts.overlap_map(3, 4, stride=2, output_size=10).tolist() == [1, 1, 2, 1, 2, 1, 2, 1, 1, 0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="stride must be >= 1"):
        ts.overlap_map(3, 2, stride=0)
    with pytest.raises(ValueError, match="output_padding must satisfy"):
        ts.overlap_map(3, 2, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"output_size\[0\] = 9 is not reachable"):
        ts.overlap_map(3, 2, stride=2, output_size=9)
    with pytest.raises(ValueError, match="kernel_shape must be >= 1"):
        ts.overlap_map(0, 2)
    with pytest.raises(ValueError, match="input_shape must be an int or a tuple of 2 ints"):
        ts.overlap_map((3, 3), (2, 2, 2))


def test_plots():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from tconv_sparse.analysis.plotting import plot_conv_arithmetic, plot_overlap_map

    counts = ts.overlap_map((3, 3), (4, 4), stride=2)
    ax = plot_overlap_map(counts)
    np.testing.assert_array_equal(ax.images[0].get_array(), counts)
    assert len(ax.texts) == counts.size
    assert plot_overlap_map(counts[0], annotate=False).images[0].get_array().shape == (1, 9)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        plot_overlap_map(np.ones((2, 2, 2)))
    fig = plot_conv_arithmetic((3, 3), (5, 5), stride=2, padding=1, max_frames=6)
    assert len(fig.axes) == 3 + 6 and "first 6 of 25" in fig.get_suptitle()
    result = fig.axes[2].images[0].get_array()        # canvas counts: padding kept visible
    np.testing.assert_array_equal(result, ts.overlap_map((3, 3), (5, 5), stride=2))
    with pytest.raises(ValueError, match="1-D and 2-D"):
        plot_conv_arithmetic((2, 2, 2), (2, 2, 2))
    matplotlib.pyplot.close("all")
