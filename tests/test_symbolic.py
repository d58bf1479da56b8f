"""Symbolic C, C.T and transposed outputs: exact text for the seed's examples, numeric agreement."""

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.analysis import symbolic


def test_seed_1d_example():
    s = ts.symbolic_conv_transpose(3, 2, stride=2)
    assert s.matrix.tolist() == [["x", "y", "z", "0", "0"], ["0", "0", "x", "y", "z"]]
    assert s.matrix_text() == "[[x  y  z  0  0],\n [0  0  x  y  z]]"
    assert s.matrix_text(transpose=True) == "[[x  0],\n [y  0],\n [z  x],\n [0  y],\n [0  z]]"
    assert s.output_text() == "[a*x, a*y, a*z + b*x, b*y, b*z]"
    assert str(s).endswith("C.T @ [a, b] =\n[a*x, a*y, a*z + b*x, b*y, b*z]")


def test_cs231n_slide_padding_one():
    # [0, a, b, c, d, 0] padded input; the transpose of the padded matrix crops its first/last entry
    s = ts.symbolic_conv_transpose(3, 2, stride=2, padding=1, output_padding=1)
    assert s.output.tolist() == ["a*y", "a*z + b*x", "b*y", "b*z"]
    assert s.matrix.tolist() == [["y", "z", "0", "0"], ["0", "x", "y", "z"]]


def test_2d_grid_of_sums():
    s = ts.symbolic_conv_transpose((3, 3), (2, 2), stride=2, padding=1, output_padding=1)
    assert s.output_text() == (
        "[[a*w11,         a*w12 + b*w10,                 b*w11,         b*w12],\n"
        " [a*w21 + c*w01, a*w22 + b*w20 + c*w02 + d*w00, b*w21 + d*w01, b*w22 + d*w02],\n"
        " [c*w11,         c*w12 + d*w10,                 d*w11,         d*w12],\n"
        " [c*w21,         c*w22 + d*w20,                 d*w21,         d*w22]]"
    )


def test_padding_modes_fold_taps():
    s = ts.symbolic_conv_transpose(3, 4, padding=1, padding_mode="circular")
    assert s.matrix[0].tolist() == ["y", "z", "0", "x"]
    assert s.output[0] == "a*y + b*x + d*z"
    reflect = ts.symbolic_conv_transpose(3, 4, padding=1, padding_mode="reflect")
    assert reflect.matrix[0].tolist() == ["y", "x + z", "0", "0"]


def _evaluate(expressions, values):
    return np.array([eval(e, {}, values) for e in np.ravel(expressions)], dtype=float).reshape(np.shape(expressions))


def test_symbols_evaluate_to_the_numeric_operators():
    rng = np.random.default_rng(0)
    modes = ("zeros", "circular", "reflect", "replicate")
    checked = 0
    while checked < 40:
        ndim = int(rng.integers(1, 4))
        kernel = tuple(int(k) for k in rng.integers(1, 4, ndim))
        shape = tuple(int(n) for n in rng.integers(1, 4, ndim))
        kwargs = dict(stride=tuple(int(s) for s in rng.integers(1, 3, ndim)),
                      dilation=tuple(int(d) for d in rng.integers(1, 3, ndim)),
                      padding=tuple(int(p) for p in rng.integers(0, 2, ndim)),
                      padding_mode=str(rng.choice(modes)))
        try:
            s = ts.symbolic_conv_transpose(kernel, shape, **kwargs)
        except ValueError:  # e.g. reflect padding as wide as the input
            continue
        checked += 1
        values = {name: float(v) for name, v in zip(s.kernel_names.ravel(), rng.standard_normal(s.kernel_names.size))}
        values |= {name: float(v) for name, v in zip(s.input_names.ravel(), rng.standard_normal(s.input_names.size))}
        weight = _evaluate(s.kernel_names, values)[None, None]
        y = _evaluate(s.input_names, values)[None]
        matrix = ts.conv_matrix(weight, s.geometry.input_shape, stride=kwargs["stride"],
                                padding=s.geometry.padding, dilation=kwargs["dilation"],
                                padding_mode=kwargs["padding_mode"]).toarray()
        np.testing.assert_allclose(_evaluate(s.matrix, values), matrix, atol=1e-12)
        expected = ts.conv_transpose(y, weight, method="sparse", **kwargs)[0]
        np.testing.assert_allclose(_evaluate(s.output, values), expected, atol=1e-12)


def test_names():
    s = ts.symbolic_conv_transpose((2,), (2,), kernel_names=["p", "q"], input_names=["u", "v"])
    assert s.output.tolist() == ["u*p", "u*q + v*p", "v*q"]
    assert ts.symbolic_conv_transpose(4, 2).kernel_names.tolist() == ["w0", "w1", "w2", "w3"]
    big = ts.symbolic_conv_transpose((1, 1), (5, 5))
    assert big.input_names[1, 2] == "a12" and big.kernel_names[0, 0] == "w00"
    assert ts.symbolic_conv_transpose(1, 12).input_names[11] == "l"
    wide = ts.symbolic_conv_transpose((1, 1), (1, 23))
    assert wide.input_names[0, 11] == "a[0,11]"
    with pytest.raises(ValueError, match=r"kernel_names must have shape \(3,\)"):
        ts.symbolic_conv_transpose(3, 2, kernel_names=["x", "y"])
    with pytest.raises(ValueError, match="input_names must be non-empty strings"):
        ts.symbolic_conv_transpose(3, 2, input_names=["a", 2])


def test_refuses_large_geometries():
    with pytest.raises(ValueError, match=r"would have 4096 x 4356 = 17842176 entries"):
        ts.symbolic_conv_transpose((3, 3), (64, 64), padding=0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        ts.symbolic_conv_transpose(3, 2, stride=0)


def test_format_grid_3d():
    grid = np.array([[["1", "22"], ["333", "4"]], [["5", "6"], ["7", "8"]]], dtype=object)
    assert symbolic.format_grid(grid, commas=False) == (
        "[[[1    22],\n  [333  4]],\n\n [[5    6],\n  [7    8]]]")


def test_spy_plot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from tconv_sparse.analysis.plotting import plot_symbolic_matrix

    s = ts.symbolic_conv_transpose((3, 3), (2, 2), stride=2)
    ax = plot_symbolic_matrix(s)
    assert sorted(t.get_text() for t in ax.texts) == sorted(e for e in s.matrix.ravel() if e != "0")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c", "d"]
    image = ax.images[0].get_array()
    assert image.shape == (4, 25) and int((image > 0).sum()) == 36
    ax_t = plot_symbolic_matrix(s, transpose=True)
    assert ax_t.images[0].get_array().shape == (25, 4) and ax_t.get_title() == "C.T"
    matplotlib.pyplot.close("all")
