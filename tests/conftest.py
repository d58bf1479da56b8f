"""Shared fixtures and helpers for the test-suite."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=int(os.environ.get("TCONV_HYPOTHESIS_EXAMPLES", 40)),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")

DTYPES = (np.float32, np.float64, np.complex64, np.complex128)


def random_array(rng, shape, dtype):
    """Standard normal data of ``dtype`` (complex: independent real and imaginary parts)."""
    data = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        data = data + 1j * rng.standard_normal(shape)
    return data.astype(dtype)


def assert_close(actual, expected, dtype):
    """float64/complex128: 1e-10 of the scale; float32/complex64: 1e-4 relative to the scale."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
    tolerance = 1e-10 if np.dtype(dtype) in (np.float64, np.complex128) else 1e-4
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def parallel_chunks_on_small_data(monkeypatch):
    """Run the chunks of every kernel call on the thread pool, however small the test's data:
    by default calls on fewer than ``PARALLEL_MIN_ELEMENTS`` elements, or measured to take less
    than ``PARALLEL_MIN_SECONDS`` on one thread, stay on one thread, which would leave the
    parallel path of the small test problems untested."""
    from tconv_sparse.core import config

    monkeypatch.setattr(config, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(config, "PARALLEL_MIN_SECONDS", 0)
