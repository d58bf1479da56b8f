"""Keras 3 "valid"/"same" semantics against golden outputs from Keras (TensorFlow and JAX backends).

The files are generated once by ``scripts/make_keras_golden.py``; this test
needs neither Keras nor its backends.
"""

from __future__ import annotations

import gzip
import json
import pathlib

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.functional import FORWARD_METHODS, TRANSPOSE_METHODS

DATA = pathlib.Path(__file__).parent / "data"
CASES = [
    pytest.param(case, id=f"{path.name.split('_')[2].split('.')[0]}-{i}")
    for path in sorted(DATA.glob("keras_golden_*.json.gz"))
    for i, case in enumerate(json.load(gzip.open(path, "rt"))["cases"])
]


def test_golden_files_cover_the_issue_grid():
    cases = [p.values[0] for p in CASES]
    transposed = [c for c in cases if c["transposed"]]
    assert {c["stride"] for c in transposed} == {1, 2, 3}
    assert {len(np.asarray(c["weight"]).shape) - 2 for c in cases} == {1, 2}
    assert {np.asarray(c["weight"]).shape[-1] for c in transposed} == {1, 2, 3, 4, 5}
    assert {c["dilation"] for c in transposed} == {1, 2}
    assert {c["output_padding"] for c in transposed} == {None, 0, 1, 2}
    assert {c["padding"] for c in transposed} == {"valid", "same"}


@pytest.mark.parametrize("case", CASES)
def test_keras_golden(case):
    x, weight, expected = (np.asarray(case[key]) for key in ("x", "weight", "y"))
    kwargs = dict(stride=case["stride"], dilation=case["dilation"], padding=case["padding"])
    if case["transposed"]:
        for method in TRANSPOSE_METHODS:
            result = ts.conv_transpose(x, weight, output_padding=case["output_padding"], method=method, **kwargs)
            np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)
    else:
        for method in FORWARD_METHODS:
            np.testing.assert_allclose(ts.conv(x, weight, method=method, **kwargs), expected, rtol=1e-10, atol=1e-10)
