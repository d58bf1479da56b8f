"""``tconv-sparse explain``: the seed's questions, and every printed call checked by running it."""

import re

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.cli import main
from tconv_sparse.analysis.explain import explain_transposed_conv

CALL = re.compile(r"^     (tconv_sparse|PyTorch|Keras|JAX):\s+(.*)$")
VARIANT = re.compile(r"^   ([\dx]+)  \[(.*)\]")


def _explain(capsys, *argv):
    status = main(["explain", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def _variants(text):
    """``[(size, {framework: code})]`` from section 3 of the text."""
    variants = []
    for line in text.splitlines():
        if (match := VARIANT.match(line)):
            variants.append((tuple(int(n) for n in match.group(1).split("x")), {}))
        elif (match := CALL.match(line)) and variants:
            variants[-1][1][match.group(1)] = match.group(2).split("   #")[0]
    return variants


def test_cs231n_question(capsys):
    status, out, err = _explain(capsys, "--input", "2x2", "--kernel", "3", "--stride", "2", "--padding", "1")
    assert status == 0 and err == ""
    assert "n = 3: floor((3 + 1 + 1 - 3) / 2) + 1 = floor(2/2) + 1 = 2" in out
    assert "n = 4: floor((4 + 1 + 1 - 3) / 2) + 1 = floor(3/2) + 1 = 2" in out
    assert "So every input of 3x3, 3x4, 4x3, 4x4 gives 2x2." in out
    assert "padding=1, output_padding=0: (2 - 1)*2 - (1 + 1) + 3 + 0 = 3  -> 3x3   <- requested" in out
    assert "padding=1, output_padding=1: (2 - 1)*2 - (1 + 1) + 3 + 1 = 4  -> 4x4\n" in out
    assert 'Keras padding="valid": (2 - 1)*2 + max(3, 2) = 5  -> 5x5' in out
    assert 'Keras padding="same": 2*2 = 4  -> 4x4' in out
    assert ("torch.nn.functional.conv_transpose2d(y, w, stride=2, padding=1, output_padding=1)" in out)
    assert ('Same size 4x4, different pixels: padding=1, output_padding=1 keeps canvas[1:5, 1:5]; '
            'Keras padding="same" keeps canvas[0:4, 0:4].') in out
    assert "a*w22 + b*w20 + c*w02 + d*w00" in out          # the centre of the symbolic output
    assert "interior tile (period = stride): [[4, 2], [2, 1]], uneven: a checkerboard" in out


def test_keras_question(capsys):
    status, out, _ = _explain(capsys, "--input", "2x2", "--kernel", "3", "--stride", "2", "--padding", "valid")
    assert status == 0
    assert "So every input of 5x5, 5x6, 6x5, 6x6 gives 2x2." in out
    assert 'padding="valid": (2 - 1)*2 + max(3, 2) = 5  -> 5x5   <- requested' in out
    sizes = [size for size, _ in _variants(out)]
    assert sizes[0] == (5, 5)
    calls = dict(_variants(out))[(5, 5)]
    assert calls["PyTorch"] == "torch.nn.functional.conv_transpose2d(y, w, stride=2)"
    assert calls["Keras"] == ('keras.layers.Conv2DTranspose(filters=C_out, kernel_size=3, strides=2, '
                              'padding="valid")')


CASES = [
    ("2x2", "3", "2", "1", "1", None),
    ("2x2", "3", "2", "valid", "1", None),
    ("3x2", "3x2", "2x3", "same", "1", None),
    ("4", "4", "3", "1:2", "2", None),
    ("3", "1", "2", "same", "1", None),        # Keras "same" with kernel < stride: zeros appended
    ("2x3", "3", "2", "full", "1", None),
    ("2x2", "3", "2", "1", "1", "3x4"),
    ("2x2x2", "2x3x1", "2x1x2", "0x1x0", "1", None),
    ("3", "2", "2", "0", "3", None),          # dilation > stride: output_padding up to 2
]


def _random_arrays(size_in, kernel, rng):
    y = rng.standard_normal((2, 3, *size_in))
    w = rng.standard_normal((3, 2, *kernel))
    return y, w


@pytest.mark.parametrize("case", CASES, ids=[" ".join(str(c) for c in case) for case in CASES])
def test_printed_torch_calls_compute_the_same(case, capsys):
    torch = pytest.importorskip("torch")
    size_in, kernel, stride, padding, dilation, output_size = case
    argv = ["--input", size_in, "--kernel", kernel, "--stride", stride, "--padding", padding,
            "--dilation", dilation] + (["--output-size", output_size] if output_size else [])
    status, out, _ = _explain(capsys, *argv)
    assert status == 0
    shape = tuple(int(n) for n in size_in.split("x"))
    ndim = len(shape)
    kernel_shape = tuple(int(n) for n in kernel.split("x")) * (ndim if "x" not in kernel else 1)
    y, w = _random_arrays(shape, kernel_shape, np.random.default_rng(0))
    variants = _variants(out)
    assert len(variants) >= 3
    for size, calls in variants:
        expected = eval(calls["tconv_sparse"], {"ts": ts, "y": y, "w": w})
        assert expected.shape == (2, 2, *size)
        got = eval(calls["PyTorch"], {"torch": torch, "y": torch.from_numpy(y), "w": torch.from_numpy(w)})
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-12, err_msg=calls["PyTorch"])


@pytest.mark.parametrize("case", CASES, ids=[" ".join(str(c) for c in case) for case in CASES])
def test_printed_jax_and_keras_calls_compute_the_same(case, capsys):
    jax = pytest.importorskip("jax")
    keras = pytest.importorskip("keras")
    jax.config.update("jax_enable_x64", True)
    size_in, kernel, stride, padding, dilation, output_size = case
    argv = ["--input", size_in, "--kernel", kernel, "--stride", stride, "--padding", padding,
            "--dilation", dilation] + (["--output-size", output_size] if output_size else [])
    _, out, _ = _explain(capsys, *argv)
    shape = tuple(int(n) for n in size_in.split("x"))
    kernel_shape = tuple(int(n) for n in kernel.split("x")) * (len(shape) if "x" not in kernel else 1)
    y, w = _random_arrays(shape, kernel_shape, np.random.default_rng(1))
    for size, calls in _variants(out):
        expected = eval(calls["tconv_sparse"], {"ts": ts, "y": y, "w": w})
        got = eval(calls["JAX"], {"jax": jax, "y": y, "w": w})
        np.testing.assert_allclose(np.asarray(got), expected, atol=1e-10, err_msg=calls["JAX"])
        if calls["Keras"].startswith("(no Keras layer"):
            assert max(map(int, stride.split("x"))) > 1 and int(dilation) > 1
            continue
        layers = [eval(code, {"keras": keras, "C_out": w.shape[1]}) for code in calls["Keras"].split(" then ")]
        channels_last = np.moveaxis(y, 1, -1).astype(np.float32)
        layers[0].build(channels_last.shape)
        layers[0].set_weights([np.moveaxis(w, (0, 1), (-1, -2)).astype(np.float32),
                               np.zeros(w.shape[1], np.float32)])
        result = channels_last
        for layer in layers:
            result = layer(result)
        np.testing.assert_allclose(np.moveaxis(np.asarray(result), -1, 1), expected, atol=1e-4,
                                   err_msg=calls["Keras"])


def test_plot(tmp_path, capsys):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    path = tmp_path / "frames.png"
    status, out, _ = _explain(capsys, "--input", "2x2", "--kernel", "3", "--stride", "2", "--padding", "1",
                              "--output-padding", "1", "--plot", str(path))
    assert status == 0 and f"saved to {path}" in out
    assert path.stat().st_size > 10_000
    status, _, err = _explain(capsys, "--input", "2x2x2", "--kernel", "3", "--plot", str(tmp_path / "x.png"))
    assert status == 2 and "1-D and 2-D" in err


def test_large_sizes_skip_the_grids():
    text = explain_transposed_conv((3, 3), (30, 30), stride=2, padding=1)
    assert "4. Symbolic output: skipped for a canvas of 3721 cells" in text
    assert "[[1  2  1" not in text and "max/min 4" in text


def test_even_kernel_has_no_interior_checkerboard():
    text = explain_transposed_conv(4, 5, stride=2, padding=1)
    assert "interior tile (period = stride): [2, 2], even: no checkerboard" in text
    assert "max/min 2" in text


@pytest.mark.parametrize("argv,message", [
    (["--input", "2x2", "--kernel", "3x3x3"], "--kernel needs 1 or 2 values"),
    (["--input", "2x2", "--kernel", "3", "--stride", "2", "--output-padding", "2"],
     "output_padding must satisfy 0 <= output_padding < max(stride, dilation) = 2"),
    (["--input", "2xb", "--kernel", "3"], "expected sizes like 2, 2x2"),
    (["--input", "2", "--kernel", "3", "--padding", "middle"], "padding must be valid, same, full"),
    (["--input", "2", "--kernel", "3", "--stride", "0"], "stride must be >= 1"),
    (["--input", "2", "--kernel", "3", "--output-size", "9", "--stride", "2"],
     r"output_size[0] = 9 is not reachable: the valid range for this axis is [5, 6]"),
])
def test_bad_input(argv, message, capsys):
    status, out, err = _explain(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err and err.startswith("tconv-sparse explain: error:")


def test_help_lists_explain(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    assert "--output-padding" in capsys.readouterr().out


# ---------------------------------------------------------------- issue 14, item 11: closed forms
def _listed_sizes(text):
    """The forward input sizes of section 1 (one axis): ``(listed n, (first, last, count) or None)``."""
    section = text.split("\n\n")[1]
    listed = [int(n) for n in re.findall(r"^     n = (\d+):", section, flags=re.M)]
    summary = re.search(r"every n from (\d+) to (\d+): (\d+) sizes", section)
    return listed, None if summary is None else tuple(int(g) for g in summary.groups())


@pytest.mark.parametrize("kernel,size,stride,padding,dilation", [
    (3, 2, 2, 1, 1), (3, 2, 5, 0, 1), (4, 3, 3, ((2, 1),), 2), (1, 4, 2, "same", 1), (5, 2, 7, "valid", 1),
    (3, 3, 11, "same", 2), (2, 1, 1, 0, 30), (3, 2, 2, "full", 1),
])
def test_forward_sizes_match_the_definition(kernel, size, stride, padding, dilation):
    """Section 1 lists exactly the input sizes ``n`` that the forward convolution maps to the input."""
    text = explain_transposed_conv(kernel, size, stride=stride, padding=padding, dilation=dilation)
    pad = padding if isinstance(padding, (str, tuple)) else (padding,)
    expected = []
    for n in range(1, 4 * (size + 1) * stride * dilation * kernel):
        try:
            if ts.conv_output_shape(n, kernel, stride=stride, padding=pad, dilation=dilation) == (size,):
                expected.append(n)
        except ValueError:
            continue
    listed, summary = _listed_sizes(text)
    if summary is None:
        assert listed == expected
    else:
        assert summary == (expected[0], expected[-1], len(expected))
        assert listed[:2] == expected[:2] and listed[-1] == expected[-1] and len(listed) <= 8


class _Counter:
    """Counts geometry computations (``Geometry.transposed``/``forward``, the forward size rule of
    ``conv_output_shape``) and fails on more than ``limit``: a loop over sizes fails fast."""

    def __init__(self, monkeypatch, limit=200):
        from tconv_sparse.core import geometry

        self.calls, self.limit = 0, limit
        for name in ("transposed", "forward"):
            original = getattr(ts.Geometry, name).__func__
            monkeypatch.setattr(ts.Geometry, name, classmethod(self._counted(original)))
        monkeypatch.setattr(geometry, "_check_kernel_fits", self._counted(geometry._check_kernel_fits))

    def _counted(self, original):
        def counted(*args, **kwargs):
            self.calls += 1
            assert self.calls <= self.limit, "explain does work proportional to the sizes"
            return original(*args, **kwargs)
        return counted


HUGE = 10 ** 12


@pytest.mark.parametrize("kwargs", [
    dict(kernel_shape=3, input_shape=2, stride=HUGE),
    dict(kernel_shape=3, input_shape=HUGE),
    dict(kernel_shape=3, input_shape=2, dilation=HUGE),
    dict(kernel_shape=(3, 3), input_shape=(HUGE, HUGE), stride=(2, 3), padding=1),
    dict(kernel_shape=(3, 2), input_shape=(2, 3), stride=HUGE, dilation=(HUGE + 1, 2), padding="same"),
])
def test_huge_sizes_need_work_bounded_by_the_rank(kwargs, monkeypatch):
    counter = _Counter(monkeypatch)
    text = explain_transposed_conv(**kwargs)
    assert counter.calls <= 40
    assert "5. Overlap map" in text and "not computed" in text and "skipped" in text.split("\n\n")[4]


def test_huge_stride_answers_are_right():
    text = explain_transposed_conv(3, 2, stride=HUGE)
    # the forward convolution: floor((n - 3) / s) + 1 = 2 for n in [s + 3, 2s + 2]
    assert _listed_sizes(text)[1] == (HUGE + 3, 2 * HUGE + 2, HUGE)
    assert f"n = {HUGE + 3}: floor(({HUGE + 3} + 0 + 0 - 3) / {HUGE}) + 1 = floor({HUGE}/{HUGE}) + 1 = 2" in text
    # the transposed sizes: every output_padding in [0, s - 1], the first and last shown
    assert f"padding=0, output_padding=0: (2 - 1)*{HUGE} - (0 + 0) + 3 + 0 = {HUGE + 3}  -> {HUGE + 3}" in text
    assert (f"padding=0, output_padding={HUGE - 1}: (2 - 1)*{HUGE} - (0 + 0) + 3 + {HUGE - 1} = "
            f"{2 * HUGE + 2}  -> {2 * HUGE + 2}") in text
    assert f'Keras padding="same": 2*{HUGE} = {2 * HUGE}  -> {2 * HUGE}' in text
    assert f"kernel 3 % stride {HUGE} = 3" in text and "uneven: a checkerboard" in text


def test_huge_input_overlap_summary_from_the_closed_form():
    text = explain_transposed_conv((3, 3), (HUGE, 5), stride=2, padding=1)
    overlap = text.split("\n\n")[5]
    assert f"not computed above {10**6} output pixels" in overlap
    assert "interior tile (period = stride): [[4, 2], [2, 1]], uneven: a checkerboard" in overlap


def test_interior_tile_closed_form_matches_the_definition():
    from tconv_sparse.analysis.overlap import interior_tile_range

    for kernel in range(1, 7):
        for stride in range(1, 7):
            for dilation in range(1, 5):
                tile = np.bincount((np.arange(kernel) * dilation) % stride, minlength=stride)
                summary = ts.overlap_summary(kernel, 3, stride=stride, dilation=dilation)
                np.testing.assert_array_equal(summary.tile, tile)
                assert interior_tile_range(kernel, stride, dilation) == (tile.min(), tile.max())
    assert interior_tile_range((3, 4), (2, 2), (1, 1)) == (2, 4)
    assert interior_tile_range(3, HUGE, 1) == (0, 1)
    assert interior_tile_range(6, 4, HUGE) == (0, 6)          # gcd(HUGE, 4) = 4: one phase gets all


def test_many_output_paddings_are_summarised():
    text = explain_transposed_conv(3, 2, stride=50, padding=1)
    sizes = text.split("\n\n")[2]
    assert sizes.count("output_padding=") <= 8
    assert "output_padding=49: (2 - 1)*50 - (1 + 1) + 3 + 49 = 100  -> 100" in sizes
    assert "output_padding 0 to 49 give every size from 51 to 100" in sizes


# ---------------------------------------------------------------- issue 14, item 14: messages
@pytest.mark.parametrize("argv,message", [
    (["--input", "0", "--kernel", "3"], "--input must be >= 1 on every axis, got '0'"),
    (["--input", "2", "--kernel", "0"], "--kernel must be >= 1 on every axis, got '0'"),
    (["--input", "2", "--kernel", "3", "--stride", "1.5"],
     "--stride: expected whole numbers >= 1, one for all axes or one per axis (like 2 or 2x1), got '1.5'"),
    (["--input", "2", "--kernel", "3", "--dilation", "two"], "--dilation: expected whole numbers >= 1"),
    (["--input", "2", "--kernel", "3", "--stride", "2", "--output-padding", "-1"],
     "--output-padding must be >= 0 on every axis, got '-1'"),
    (["--input", "2", "--kernel", "3", "--padding", "-1"], "--padding must be >= 0 on every side, got '-1'"),
    (["--input", "2", "--kernel", "3", "--padding", "5"],
     "the transposed convolution output would be empty on spatial axis 0: size -6"),
])
def test_messages_name_the_options(argv, message, capsys):
    status, out, err = _explain(capsys, *argv)
    assert status == 2 and out == ""
    assert message in err and err.startswith("tconv-sparse explain: error:")
    assert err.count("\n") == 1
    for internal in ("kernel_shape", "input_shape", "None", "expected sizes like 2"):
        assert internal not in err


def test_readme_shows_the_cs231n_4x4_case(capsys):
    import pathlib

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    command = re.search(r"`(tconv-sparse explain [^`]*)`", readme).group(1)
    assert "--output-padding 1" in command
    status, out, _ = _explain(capsys, *command.split()[2:])
    assert status == 0
    assert "padding=1, output_padding=1: (2 - 1)*2 - (1 + 1) + 3 + 1 = 4  -> 4x4   <- requested" in out
