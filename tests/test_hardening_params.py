"""Issue 14, items 2 and 4: huge integers and bad memory limits are parameter errors.

Every size parameter is bounded by ``tconv_sparse.core.validation.MAX_SIZE`` (``2**62``,
what int64 index arithmetic allows), and so are the sizes derived from them, before
anything is allocated. ``max_bytes`` is checked wherever it is accepted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse.core import validation as v
from limited import run_json, run_limited

W, X, Y = np.ones((4, 2, 3, 3)), np.ones((1, 2, 6, 6)), np.ones((1, 4, 4, 4))
HUGE = 10**30

#: (keyword arguments of conv, expected message)
FORWARD_HUGE = [
    (dict(stride=HUGE), r"stride must be an int in \[1, 2\*\*62\] on every axis, got 10+"),
    (dict(stride=2**62 + 1), r"stride must be an int in \[1, 2\*\*62\]"),
    (dict(stride=(1, 2**63)), r"stride must be an int in \[1, 2\*\*62\] .*\(1, 9223372036854775808\)"),
    (dict(padding=HUGE), r"padding must be an int in \[0, 2\*\*62\] on every side"),
    (dict(padding=((0, 2**63), 1)), r"padding must be an int in \[0, 2\*\*62\]"),
    (dict(dilation=HUGE), r"dilation must be an int in \[1, 2\*\*62\]"),
    (dict(dilation=HUGE, padding=HUGE), r"(dilation|padding) must be an int in \[[01], 2\*\*62\]"),
    (dict(stride=np.uint64(2**64 - 1)), r"stride must be an int in \[1, 2\*\*62\]"),
]


@pytest.mark.parametrize("overrides,message", FORWARD_HUGE)
def test_huge_integers_are_value_errors_naming_the_parameter(overrides, message):
    with pytest.raises(ValueError, match=message):
        ts.conv(X, W, **overrides)


@pytest.mark.parametrize("overrides,message", [
    (dict(output_padding=HUGE, stride=HUGE), r"stride must be an int in \[1, 2\*\*62\]"),
    (dict(output_padding=2**63), r"output_padding must be an int in \[0, 2\*\*62\]"),
    (dict(output_size=(HUGE, 5)), r"output_size must be an int in \[1, 2\*\*62\]"),
])
def test_huge_transposed_options_are_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        ts.conv_transpose(Y, W, **overrides)


@pytest.mark.parametrize("call", [
    lambda: ts.conv_output_shape(HUGE, 3),
    lambda: ts.conv_output_shape(10, HUGE),
    lambda: ts.conv_transpose_output_shape(5, 3, stride=HUGE),
    lambda: ts.conv_matrix(W, (HUGE, 6)),
    lambda: ts.overlap_map(3, 4, dilation=HUGE),
])
def test_huge_shapes_are_value_errors(call):
    with pytest.raises(ValueError, match=r"must be an int in \[\d, 2\*\*62\]"):
        call()


_DERIVED = """
import json
import numpy as np
import tconv_sparse as ts
W, X, Y = np.ones((4, 2, 3, 3)), np.ones((1, 2, 6, 6)), np.ones((1, 4, 6, 6))
calls = {
    "k_eff": lambda: ts.conv(X, W, dilation=2**61 + 1, padding=2**62),
    "padded": lambda: ts.conv(X, W, padding=2**62),
    "padded pair": lambda: ts.conv(X, W, padding=((2**61, 2**61), 0)),
    "transposed output": lambda: ts.conv_transpose(Y, W, stride=2**62),
    "transposed k_eff": lambda: ts.conv_transpose(Y, W, dilation=2**61 + 1),
    "shape": lambda: ts.conv_transpose_output_shape((2**62,), (3,), stride=2),
    "largest stride": lambda: ts.conv(X, W, stride=2**62).shape,
    "largest dilation": lambda: ts.conv(np.ones((1, 2, 6)), W[..., 0], dilation=2**61 - 1,
                                        padding=((2**61 - 3, 2**61 - 3),)).shape,
}
rows = {}
for name, call in calls.items():
    try:
        rows[name] = "ok " + repr(call())
    except Exception as exc:
        rows[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(rows))
"""


def test_derived_sizes_are_bounded_before_allocating():
    """Item 2: sizes derived from valid parameters (k_eff, padded input, transposed output) are
    bounded too, with a message naming the parameters; the largest valid values work."""
    rows = run_json(_DERIVED)
    expected = {
        "k_eff": r"effective kernel size .* exceeds 2\*\*62.*dilation",
        "padded": r"padded input .* exceeds 2\*\*62.*padding",
        "padded pair": r"padded input .* exceeds 2\*\*62.*padding",
        "transposed output": r"output size .* exceeds 2\*\*62.*stride",
        "transposed k_eff": r"effective kernel size .* exceeds 2\*\*62",
        "shape": r"output size .* exceeds 2\*\*62",
    }
    import re
    for name, pattern in expected.items():
        assert rows[name].startswith("ValueError") and re.search(pattern, rows[name]), (name, rows[name])
    assert rows["largest stride"] == "ok (1, 4, 1, 1)", rows["largest stride"]
    assert rows["largest dilation"] == "ok (1, 4, 2)", rows["largest dilation"]


# ----------------------------------------------------------------------------- item 4
BAD_LIMITS = ["a", float("nan"), float("inf"), -1, 0, 0.5, True, None, [10], 1j]


@pytest.mark.parametrize("limit", BAD_LIMITS, ids=repr)
def test_bad_max_bytes_is_a_value_error(limit):
    pattern = r"max_bytes must be a positive int \(or a finite float such as 8e9\): a number of bytes >= 1"
    previous = ts.get_max_bytes()
    with pytest.raises(ValueError, match=pattern):
        ts.set_max_bytes(limit)
    assert ts.get_max_bytes() == previous
    if limit is not None:  # None means "the library limit" where max_bytes is a keyword
        with pytest.raises(ValueError, match=pattern):
            ts.conv_matrix(W, (6, 6), max_bytes=limit)
        with pytest.raises(ValueError, match=pattern):
            v.check_bytes("a test allocation", 10, limit)
        with pytest.raises(ValueError, match="max_bytes"):
            ts.singular_values(W, (6, 6), max_bytes=limit)


def test_type_errors_of_max_bytes_are_type_errors_too():
    with pytest.raises(TypeError, match="max_bytes"):
        ts.conv_matrix(W, (6, 6), max_bytes="a")
    with pytest.raises(TypeError, match="max_bytes"):
        ts.set_max_bytes("a")


def test_float_max_bytes_are_accepted():
    previous = ts.set_max_bytes(8e9)
    try:
        assert ts.get_max_bytes() == 8 * 10**9 and isinstance(ts.get_max_bytes(), int)
    finally:
        ts.set_max_bytes(previous)
    assert ts.conv_matrix(W, (6, 6), max_bytes=1e6).shape == (64, 72)
    with pytest.raises(ValueError, match="memory limit of 1.0 KiB"):
        ts.conv_matrix(W, (6, 6), max_bytes=1024.0)


@pytest.mark.parametrize("value", ["nan", "a", "0", "-5", "inf", "1e400"])
def test_bad_environment_limit_is_refused_at_import(value):
    result = run_limited("import tconv_sparse", env={"TCONV_SPARSE_MAX_BYTES": value})
    assert result.returncode != 0
    assert "ValueError: TCONV_SPARSE_MAX_BYTES must be a positive int (or a finite float such as 8e9): a number of bytes >= 1" in result.stderr
    assert repr(value) in result.stderr


def test_environment_limit_is_used():
    limits = run_json("import json, tconv_sparse as ts; print(json.dumps(ts.get_max_bytes()))",
                      env={"TCONV_SPARSE_MAX_BYTES": "8e9"})
    assert limits == 8 * 10**9
    assert math.isfinite(v.MAX_SIZE) and v.MAX_SIZE == 2**62
