"""The seed post's worked examples (../shared/seed/transposed-convolution-blog-ko.md), in numbers."""

from __future__ import annotations

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.functional import TRANSPOSE_METHODS


def test_4x4_input_3x3_kernel_gives_2x2():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    y = ts.conv(x, w)
    assert y.shape == (1, 1, 2, 2)
    expected = [[sum(w[0, 0, a, b] * x[0, 0, i + a, j + b] for a in range(3) for b in range(3))
                 for j in range(2)] for i in range(2)]
    assert y[0, 0].tolist() == expected


def _hand_scatter(y, w, stride):
    """The seed's first method, by hand: each input times the kernel, placed at stride steps, summed."""
    k = w.shape[-1]
    n = (y.shape[0] - 1) * stride + k
    out = np.zeros((n, n))
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            out[i * stride:i * stride + k, j * stride:j * stride + k] += y[i, j] * w
    return out


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
def test_2x2_input_3x3_kernel_stride_2_valid_gives_5x5(method):
    y = np.array([[1.0, 10.0], [100.0, 1000.0]])
    w = np.arange(1.0, 10.0).reshape(3, 3)
    out = ts.conv_transpose(y[None, None], w[None, None], stride=2, padding="valid", method=method)[0, 0]
    assert out.shape == (5, 5)  # Keras Conv2DTranspose, strides 2, "valid"
    np.testing.assert_array_equal(out, _hand_scatter(y, w, 2))
    # the overlap: centre column/row sums two kernel taps, the centre pixel four
    assert out[0, 2] == y[0, 0] * w[0, 2] + y[0, 1] * w[0, 0]
    assert out[2, 2] == y[0, 0] * w[2, 2] + y[0, 1] * w[2, 0] + y[1, 0] * w[0, 2] + y[1, 1] * w[0, 0]


@pytest.mark.parametrize("method", TRANSPOSE_METHODS)
def test_cs231n_stride_2_padding_1_crops_the_padding(method):
    """Padding 1 removes the first (and last) row and column: 3x3, or 4x4 with output_padding=1."""
    y = np.array([[1.0, 10.0], [100.0, 1000.0]])[None, None]
    w = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    full = _hand_scatter(y[0, 0], w[0, 0], 2)
    out3 = ts.conv_transpose(y, w, stride=2, padding=1, method=method)[0, 0]
    out4 = ts.conv_transpose(y, w, stride=2, padding=1, output_padding=1, method=method)[0, 0]
    assert out3.shape == (3, 3) and out4.shape == (4, 4)
    np.testing.assert_array_equal(out3, full[1:4, 1:4])
    np.testing.assert_array_equal(out4, full[1:5, 1:5])  # the CS231n slide's 4x4
    assert ts.conv_transpose(y, w, stride=2, padding="same", method=method).shape == (1, 1, 4, 4)


def test_1d_matrix_example():
    """Input [a, b], kernel [x, y, z], stride 2: C = [[x y z 0 0], [0 0 x y z]] and C.T [a, b]."""
    x_, y_, z_ = 2.0, 3.0, 5.0
    a, b = 7.0, 11.0
    C = ts.conv_matrix(np.array([[[x_, y_, z_]]]), (5,), stride=2)
    np.testing.assert_array_equal(C.toarray(), [[x_, y_, z_, 0, 0], [0, 0, x_, y_, z_]])
    expected = [a * x_, a * y_, a * z_ + b * x_, b * y_, b * z_]
    np.testing.assert_array_equal(C.T @ [a, b], expected)
    for method in TRANSPOSE_METHODS:
        np.testing.assert_array_equal(
            ts.conv_transpose(np.array([[a, b]]), np.array([[[x_, y_, z_]]]), stride=2, method=method)[0], expected)
    # CS231n's padded version: input [a b c d] padded to [0 a b c d 0]; the transposed output
    # drops the padded entries, leaving [a y, a z + b x, b y, b z].
    C_padded = ts.conv_matrix(np.array([[[x_, y_, z_]]]), (4,), stride=2, padding=1)
    np.testing.assert_array_equal(C_padded.toarray(), [[y_, z_, 0, 0], [0, x_, y_, z_]])
    np.testing.assert_array_equal(C_padded.T @ [a, b], [a * y_, a * z_ + b * x_, b * y_, b * z_])


def test_scatter_and_zero_insertion_agree_with_flipped_kernel():
    """The seed's hand calculation: zero insertion convolves with the *flipped* kernel, scatter does not."""
    rng = np.random.default_rng(0)
    y = rng.standard_normal((1, 1, 2, 2))
    w = rng.standard_normal((1, 1, 3, 3))
    scatter = ts.conv_transpose(y, w, stride=2, method="scatter")
    zero_insert = ts.conv_transpose(y, w, stride=2, method="zero_insert")
    np.testing.assert_allclose(scatter, zero_insert, atol=1e-14)
    # by hand: insert a zero between inputs, pad k-1 = 2, correlate with the flipped kernel
    z = np.zeros((3, 3))
    z[::2, ::2] = y[0, 0]
    padded = np.pad(z, 2)
    flipped = w[0, 0, ::-1, ::-1]
    by_hand = np.array([[np.sum(padded[i:i + 3, j:j + 3] * flipped) for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(scatter[0, 0], by_hand, atol=1e-14)
    assert not np.allclose(scatter, ts.conv_transpose(y, w[..., ::-1, ::-1], stride=2))


def test_transpose_is_not_the_inverse():
    """conv_transpose(conv(x)) is not x: C.T C is not the identity (the seed's deconvolution point)."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.full((1, 1, 3, 3), 1 / 9)
    back = ts.conv_transpose(ts.conv(x, w), w)
    assert back.shape == x.shape and not np.allclose(back, x)
