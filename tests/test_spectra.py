"""Singular values and operator norms against the dense SVD of ``conv_matrix``."""

import re

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.analysis import spectra

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")


def _random_case(rng, circulant):
    """A random valid geometry; ``circulant=True`` draws an exactly block-circulant one."""
    ndim = int(rng.integers(1, 4))
    groups = int(rng.choice([1, 1, 2]))
    in_channels = groups * int(rng.integers(1, 3))
    out_channels = groups * int(rng.integers(1, 3))
    kernel = tuple(int(x) for x in rng.integers(1, 4, ndim))
    stride = tuple(int(x) for x in rng.integers(1, 4, ndim))
    dilation = tuple(int(x) for x in rng.integers(1, 3, ndim))
    if circulant:
        mode = "circular"
        shape = tuple(int(s * rng.integers(1, 4)) for s in stride)
        padding = []
        for k, s, d in zip(kernel, stride, dilation):
            k_eff = d * (k - 1) + 1
            total = int(rng.integers(max(k_eff - s, 0), k_eff))  # out * s == n exactly
            lo = int(rng.integers(0, total + 1))
            padding.append((lo, total - lo))
    else:
        mode = str(rng.choice(PADDING_MODES))
        shape = tuple(int(x) for x in rng.integers(2, 7 if ndim < 3 else 5, ndim))
        padding = [(int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(ndim)]
    weight = rng.standard_normal((out_channels, in_channels // groups, *kernel))
    kwargs = dict(stride=stride, padding=tuple(padding), dilation=dilation, groups=groups,
                  padding_mode=mode)
    return weight, shape, kwargs


def _cases(seed, count, circulant):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        weight, shape, kwargs = _random_case(rng, circulant)
        try:
            ts.Geometry.forward(weight.shape, shape, **kwargs)
        except ValueError:  # kernel larger than the padded input, reflect too wide, ...
            continue
        cases.append((weight, shape, kwargs))
    return cases


def _dense_reference(weight, shape, kwargs):
    return np.linalg.svd(ts.conv_matrix(weight, shape, **kwargs).toarray(), compute_uv=False)


@pytest.mark.parametrize("circulant", [False, True], ids=["matrix", "circulant"])
def test_singular_values_match_dense_svd(circulant):
    for weight, shape, kwargs in _cases(1 + circulant, 60, circulant):
        reference = _dense_reference(weight, shape, kwargs)
        values = ts.singular_values(weight, shape, **kwargs)
        assert values.shape == reference.shape
        np.testing.assert_allclose(values, reference, rtol=0, atol=1e-10 * reference[0],
                                   err_msg=f"{weight.shape} {shape} {kwargs}")
        top = ts.singular_values(weight, shape, k=2 if len(reference) > 1 else 1, **kwargs)
        np.testing.assert_allclose(top, reference[:len(top)], rtol=0, atol=1e-10 * reference[0])
        norm = ts.operator_norm(weight, shape, **kwargs)
        assert abs(norm - reference[0]) <= 1e-10 * reference[0]


def test_bound_is_never_below_the_norm():
    for weight, shape, kwargs in _cases(3, 40, False) + _cases(4, 20, True):
        norm = _dense_reference(weight, shape, kwargs)[0]
        bound = ts.operator_norm(weight, shape, bound=True, **kwargs)
        assert bound >= norm * (1 - 1e-12), (weight.shape, shape, kwargs, bound, norm)


def test_bound_is_exact_for_circulant_and_tight_for_large_zero_padding():
    for weight, shape, kwargs in _cases(5, 15, True):
        norm = _dense_reference(weight, shape, kwargs)[0]
        assert ts.operator_norm(weight, shape, bound=True, **kwargs) == pytest.approx(norm, rel=1e-12)
    weight = np.random.default_rng(6).standard_normal((2, 3, 3, 3))
    exact = ts.operator_norm(weight, (12, 12), padding=1)
    assert exact <= ts.operator_norm(weight, (12, 12), padding=1, bound=True) <= 1.05 * exact


def test_circulant_route_never_builds_the_matrix(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the circulant route must not build C")

    monkeypatch.setattr(spectra, "build_matrix", refuse)
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((8, 4, 3, 3))
    values = ts.singular_values(weight, (64, 64), stride=2, padding=1, groups=2,
                                padding_mode="circular")
    assert values.shape == (8 * 32 * 32,)
    assert np.all(np.diff(values) <= 0)
    with pytest.raises(AssertionError):
        ts.singular_values(weight, (6, 6), padding=1, groups=2)  # zero padding needs C


def test_circular_stride_one_is_the_kernel_dft():
    # Sedghi et al.: union over frequencies of the singular values of the DFT blocks.
    rng = np.random.default_rng(8)
    weight = rng.standard_normal((3, 2, 3, 3))
    embedded = np.zeros((3, 2, 5, 6))
    embedded[..., :3, :3] = weight
    blocks = np.fft.fft2(embedded).transpose(2, 3, 0, 1)
    expected = np.sort(np.linalg.svd(blocks, compute_uv=False).ravel())[::-1]
    values = ts.singular_values(weight, (5, 6), padding="same", padding_mode="circular")
    np.testing.assert_allclose(values, expected, atol=1e-12)


def test_top_k_by_svds_matches_dense():
    weight = np.random.default_rng(9).standard_normal((1, 1, 3, 3))
    geometry = ts.Geometry.forward(weight.shape, (24, 24), padding=1)
    assert not spectra._use_dense(geometry, 3)  # this size goes through svds
    reference = _dense_reference(weight, (24, 24), {"padding": 1})
    values = ts.singular_values(weight, (24, 24), padding=1, k=3)
    np.testing.assert_allclose(values, reference[:3], rtol=1e-10)


def test_complex_and_float32_weights():
    rng = np.random.default_rng(10)
    weight = rng.standard_normal((2, 2, 3)) + 1j * rng.standard_normal((2, 2, 3))
    for mode in ("zeros", "circular"):
        reference = _dense_reference(weight, (6,), {"padding": 1, "padding_mode": mode})
        np.testing.assert_allclose(ts.singular_values(weight, 6, padding=1, padding_mode=mode),
                                   reference, atol=1e-12)
    weight32 = rng.standard_normal((2, 1, 3)).astype(np.float32)
    reference = np.linalg.svd(ts.conv_matrix(weight32, (7,), dtype=np.float64).toarray(),
                              compute_uv=False)
    values = ts.singular_values(weight32, 7)
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, reference, atol=1e-12)


def test_conv_operator_argument():
    weight = np.random.default_rng(11).standard_normal((2, 3, 3))
    op = ts.ConvOperator(weight, (9,), stride=2, padding=1)
    np.testing.assert_allclose(ts.singular_values(op), _dense_reference(weight, (9,), {"stride": 2, "padding": 1}))
    assert ts.operator_norm(op, bound=True) >= ts.operator_norm(op) * (1 - 1e-12)
    with pytest.raises(ValueError, match="stride, padding"):
        ts.singular_values(op, stride=2, padding=1)
    with pytest.raises(ValueError, match="input_shape"):
        ts.operator_norm(op, (9,))


def test_bad_arguments():
    weight = np.ones((1, 1, 3))
    with pytest.raises(ValueError, match="input_shape"):
        ts.singular_values(weight)
    with pytest.raises(ValueError, match=r"1 <= k <= min\(matrix shape\) = 4"):
        ts.singular_values(weight, 6, k=5)
    with pytest.raises(ValueError, match="k must be None or an int"):
        ts.singular_values(weight, 6, k=1.5)
    with pytest.raises(ValueError, match="bound must be True or False"):
        ts.operator_norm(weight, 6, bound="yes")
    with pytest.raises(ValueError, match="max_flops must be > 0"):
        ts.operator_norm(weight, 6, max_flops=0)
    with pytest.raises(ValueError, match="max_bytes must be a positive number"):
        ts.singular_values(weight, 6, max_bytes="1GB")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        ts.singular_values(weight, 6, stride=0)


def test_too_large_spectra_are_refused_with_the_cost():
    weight = np.ones((4, 4, 3, 3))
    with pytest.raises(ValueError, match=r"dense SVD of the 9216x9216 matrix would need an estimated "
                                         r"1.3 GiB and 9.4e\+12 floating-point operations.*top k"):
        ts.singular_values(weight, (48, 48), padding=1)
    with pytest.raises(ValueError, match="floating-point operations"):
        ts.singular_values(weight, (32, 32), padding=1, padding_mode="circular", max_flops=1e3)
    with pytest.raises(ValueError, match="operator-norm bound would need"):
        ts.operator_norm(weight, (32, 32), padding=1, bound=True, max_bytes=1000)


# ---------------------------------------------------------------- progress
def test_progress_states_the_route_and_its_estimated_time(capsys, monkeypatch):
    w = np.ones((1, 1, 3, 3))
    expected = ts.singular_values(w, (4, 4), padding=1, progress=False)
    assert capsys.readouterr().err == ""
    ts.singular_values(w, (4, 4), padding=1)                 # progress=None: quick, silent
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(ts.singular_values(w, (4, 4), padding=1, progress=True), expected)
    assert "all singular values by a dense SVD of the 16x16 matrix" in capsys.readouterr().err
    monkeypatch.setattr(spectra, "FLOP_RATE", 1.0)          # the same SVD on a machine this slow: announced
    ts.operator_norm(w, (4, 4), padding=1)
    assert re.search(r"dense SVD of the 16x16 matrix: .* an estimated [0-9.e+]+ s", capsys.readouterr().err)
    ts.operator_norm(w, (4, 4), padding=1, padding_mode="circular", bound=True)
    assert "the operator-norm bound from 16 frequency blocks of 1x1" in capsys.readouterr().err


def test_progress_bar_over_the_iterative_svd(capsys):
    w = np.ones((1, 1, 3, 3))
    quiet = ts.singular_values(w, (40, 40), padding=1, k=1, progress=False)
    shown = ts.singular_values(w, (40, 40), padding=1, k=1, progress=True)
    np.testing.assert_allclose(shown, quiet, rtol=1e-12)
    assert "svds: top 1 of 1600x1600" in capsys.readouterr().err


def test_progress_must_be_a_bool_or_none():
    with pytest.raises(ValueError, match="progress must be None, True or False, got 'yes'"):
        ts.singular_values(np.ones((1, 1, 3)), 8, progress="yes")
