"""Shape arithmetic and geometry: API.md section 3, checked by brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.core.geometry import Geometry
from reference import forward_padding, transposed_geometry


@pytest.mark.parametrize("n,k,s,d", list(itertools.product((1, 4, 7, 10), (1, 2, 3, 5), (1, 2, 3), (1, 2))))
@pytest.mark.parametrize("padding", [0, 1, 2, "valid", "same", "full", ((2, 0),)])
def test_conv_output_shape_formula(n, k, s, d, padding):
    k_eff = d * (k - 1) + 1
    (lo, hi), = forward_padding(padding, (n,), (k,), (s,), (d,))
    if n + lo + hi < k_eff:
        with pytest.raises(ValueError, match="kernel size"):
            ts.conv_output_shape((n,), (k,), stride=s, padding=padding, dilation=d)
        return
    out = ts.conv_output_shape((n,), (k,), stride=s, padding=padding, dilation=d)
    assert out == ((n + lo + hi - k_eff) // s + 1,)
    if padding == "same":
        assert out == (-(-n // s),)  # Keras: ceil(n / s) for any stride


@pytest.mark.parametrize("i,k,s,d", list(itertools.product((1, 2, 5), (1, 2, 3, 4, 5), (1, 2, 3), (1, 2, 3))))
def test_conv_transpose_output_shape_rules(i, k, s, d):
    k_eff = d * (k - 1) + 1
    max_op = max(s, d)
    shape = lambda **kw: ts.conv_transpose_output_shape((i,), (k,), stride=s, dilation=d, **kw)[0]
    assert shape(padding="valid") == (i - 1) * s + max(k_eff, s)
    assert shape(padding="same") == i * s
    for op in range(max_op):
        assert shape(padding="valid", output_padding=op) == (i - 1) * s + k_eff + op
        expected_same = (i - 1) * s + k_eff % 2 + op
        if expected_same >= 1:
            assert shape(padding="same", output_padding=op) == expected_same
        else:
            with pytest.raises(ValueError, match="empty"):
                shape(padding="same", output_padding=op)
        for p in (0, 1):
            expected = (i - 1) * s - 2 * p + k_eff + op
            if expected >= 1:
                assert shape(padding=p, output_padding=op) == expected
                assert shape(padding=p, output_size=(expected,)) == expected
    with pytest.raises(ValueError, match="output_padding"):
        shape(padding=0, output_padding=max_op)


@pytest.mark.parametrize("i,k,s,d,p", list(itertools.product((1, 3, 4), (1, 2, 3, 4), (1, 2, 3), (1, 2), (0, 1))))
def test_transposed_is_inverse_of_forward_shape(i, k, s, d, p):
    """Every size the transposed conv can produce maps back to ``i`` under the forward conv."""
    k_eff = d * (k - 1) + 1
    base = (i - 1) * s - 2 * p + k_eff
    for op in range(max(s, d)):
        if base + op < 1 or base + op + 2 * p < k_eff:
            continue
        n = ts.conv_transpose_output_shape((i,), (k,), stride=s, padding=p, output_padding=op, dilation=d)
        if op < s:
            assert ts.conv_output_shape(n, (k,), stride=s, padding=p, dilation=d) == (i,)


def test_geometry_matches_reference_for_keras_strings():
    for i, k, s, d, padding in itertools.product((1, 3), (1, 2, 3, 4, 5), (1, 2, 3), (1, 2), ("valid", "same")):
        for op in (None, *range(max(s, d))):
            n, pads = transposed_geometry((i,), (k,), (s,), (d,), padding, op)
            if n[0] < 1:
                with pytest.raises(ValueError, match="empty"):
                    Geometry.transposed((1, 1, k), (i,), stride=s, dilation=d, padding=padding, output_padding=op)
                continue
            g = Geometry.transposed((1, 1, k), (i,), stride=s, dilation=d, padding=padding, output_padding=op)
            assert g.input_shape == n and g.padding == tuple(pads) and g.output_shape == (i,)


def test_same_transposed_equals_forward_same_when_output_padding_is_none():
    """API.md's definition: conv_transpose(padding="same") is C(same).T for its output size."""
    rng = np.random.default_rng(0)
    for i, k, s, d in itertools.product((1, 2, 5), (1, 2, 3, 4, 5), (1, 2, 3), (1, 2)):
        w = rng.standard_normal((2, 3, k))
        g = Geometry.transposed(w.shape, (i,), stride=s, dilation=d, padding="same")
        forward = ts.conv_matrix(w, g.input_shape, stride=s, dilation=d, padding="same")
        assert forward.shape == g.matrix_shape
        y = rng.standard_normal((2, i))
        np.testing.assert_allclose(ts.conv_transpose(y, w, stride=s, dilation=d, padding="same").ravel(),
                                   forward.T @ y.ravel(), atol=1e-12)


def test_output_size_range_is_reported():
    with pytest.raises(ValueError, match=r"\[3, 4\]"):
        ts.conv_transpose_output_shape((2,), (3,), stride=2, padding=1, output_size=(5,))
    with pytest.raises(ValueError, match="not both"):
        ts.conv_transpose_output_shape((2,), (3,), stride=2, output_padding=1, output_size=(4,))


def test_geometry_sizes():
    g = Geometry.forward((6, 2, 3, 3), (8, 9), stride=2, padding=((1, 0), 2), groups=2, padding_mode="reflect")
    assert g.in_channels == 4 and g.out_channels == 6 and g.groups == 2
    assert g.output_shape == ts.conv_output_shape((8, 9), (3, 3), stride=2, padding=((1, 0), 2))
    assert g.matrix_shape == (6 * np.prod(g.output_shape), 4 * 72)
    assert g.effective_kernel_shape == (3, 3) and g.padded_shape == (9, 13)
