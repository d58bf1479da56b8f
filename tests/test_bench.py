"""Smoke tests of the benchmark harness (``tconv_sparse.bench``) and ``tconv-sparse bench``."""

import csv
import importlib.util
import json

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse import cli
from tconv_sparse.core.config import num_threads
from tconv_sparse.bench import cases, report, runners

TINY = cases.ConvCase("tiny", batch=2, channels=3, out_channels=2, shape=(9, 8), kernel=3, stride=2)
ONCE = runners.Timing(min_repeats=1, max_repeats=1, budget=0.0)


def _wrong(direction, case, data, weight):
    """A contender that is 1 % off: the check must flag it and never time it."""
    run = runners.library_runner("im2col")(direction, case, data, weight)
    return lambda: 1.01 * run()


def _refusing(direction, case, data, weight):
    raise ValueError("this method does not accept the case")


def _factories(direction):
    return {**runners.contenders(direction), "wrong": _wrong, "refusing": _refusing}


@pytest.fixture(scope="module")
def results():
    plan = [("conv_transpose", TINY, "float64"), ("conv", TINY, "float32")]
    return runners.run_benchmarks(plan, ONCE, factories=_factories)


def test_every_method_is_checked_and_timed(results):
    by_method = {(m.direction, m.method): m for m in results}
    for direction in cases.DIRECTIONS:
        for method in runners.library_methods(direction):
            measurement = by_method[direction, method]
            assert measurement.status == runners.OK, measurement.message
            assert len(measurement.times) == 1
            assert measurement.error <= runners.TOLERANCE[measurement.dtype]
            assert measurement.reference == runners.SPARSE_REFERENCES[direction]


def test_wrong_method_fails_and_is_not_timed(results):
    wrong = [m for m in results if m.method == "wrong"]
    assert [m.status for m in wrong] == [runners.FAIL, runners.FAIL]
    assert all(m.times == [] and m.median is None and 5e-3 < m.error < 2e-2 for m in wrong)
    refusing = [m for m in results if m.method == "refusing"]
    assert [m.status for m in refusing] == [runners.UNSUPPORTED] * 2


def test_peer_uses_the_library_threads(results):
    peer = [m for m in results if m.method == runners.PEER]
    try:
        torch = runners.import_torch()
    except runners.Unavailable:
        assert all(m.status == runners.UNSUPPORTED for m in peer)
        return
    assert torch.get_num_threads() == num_threads()
    assert all(m.status == runners.OK for m in peer)
    assert all(m.ratio is not None for m in results if m.status == runners.OK)


def test_table_json_csv(results, tmp_path):
    table = report.format_table(results)
    assert "### conv_transpose" in table and "### conv" in table
    assert "FAIL (err 1.0e-02)" in table
    assert "tiny:2x3->2x9x8:k3s2 float32 refusing: n/a: this method does not accept the case" in table
    report.write_json(tmp_path / "bench.json", results, {"command": "test"})
    report.write_csv(tmp_path / "bench.csv", results)
    document = json.loads((tmp_path / "bench.json").read_text())
    assert document["command"] == "test" and len(document["results"]) == len(results)
    with open(tmp_path / "bench.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["method"] for row in rows] == [m.method for m in results]
    assert {row["status"] for row in rows if row["method"] == "wrong"} == {"FAIL"}


def test_reference_without_the_matrix():
    data, weight = TINY.data("conv_transpose", "float64")
    expected, name = runners.reference("conv_transpose", TINY, data, weight)
    fallback, fallback_name = runners.reference("conv_transpose", TINY, data, weight, max_nnz=0)
    assert name == runners.SPARSE_REFERENCES["conv_transpose"] and fallback_name.split()[0] in ("torch", "im2col")
    assert "nonzeros > 0" in fallback_name
    np.testing.assert_allclose(fallback, expected, rtol=1e-12, atol=1e-12)


def test_grid_shapes():
    for case in cases.CONV_CASES:
        assert ts.conv_transpose_output_shape(case.small_shape, case.kernel_shape,
                                              **case.keywords("conv_transpose")) == case.shape
    data, weight = TINY.data("conv", "float32")
    assert data.shape == TINY.input_shape("conv") and weight.shape == TINY.weight_shape
    assert ts.conv(data, weight, **TINY.keywords("conv")).shape == TINY.output_shape("conv")
    assert {case.regime for case in cases.QUICK_CASES} == {case.regime for case in cases.CONV_CASES}
    assert set(cases.MATRIX_CASES + cases.APPLY_CASES + cases.LSQR_CASES) <= set(cases.CASES)


def test_cli_writes_table_and_files(tmp_path, capsys):
    out = tmp_path / "out"
    status = cli.main(["bench", "--case", "signal:1x1->1x65536:k9s4", "--method", "im2col",
                       "--direction", "conv_transpose", "--no-torch", "--out", str(out)])
    assert status == 0
    printed = capsys.readouterr()
    assert "CPU:" in printed.out and "| signal:1x1->1x65536:k9s4 | float32 |" in printed.out
    assert "[1/1] conv_transpose" in printed.err
    expected = {"bench.md", "bench.json", "bench.csv"}
    if importlib.util.find_spec("matplotlib") is None:
        assert "no plot" in printed.err
    else:
        expected.add("bench.png")
    assert expected <= {path.name for path in out.iterdir()}
    document = json.loads((out / "bench.json").read_text())
    assert "--method im2col --case 'signal:1x1->1x65536:k9s4'" in document["command"]
    assert [r["method"] for r in document["results"]] == ["im2col"]


def test_cli_empty_selection(tmp_path):
    assert cli.main(["bench", "--case", "no such case", "--out", str(tmp_path)]) == 2
