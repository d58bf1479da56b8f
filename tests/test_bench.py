"""Smoke tests of the benchmark harness (``tconv_sparse.bench``) and ``tconv-sparse bench``."""

import csv
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest

import tconv_sparse as ts
from tconv_sparse import cli
from tconv_sparse.core.config import num_threads
from tconv_sparse.bench import cases, report, runners

ROOT = pathlib.Path(__file__).parent.parent
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


# ---------------------------------------------------------------- issue 14, item 13: Ctrl-C
SIGNAL_CASES = [case for case in cases.CONV_CASES if case.regime == "signal"]


def _interrupting(at_call, swallow=False):
    """A contender (im2col) whose ``at_call``-th warm-up is hit by SIGINT; with ``swallow`` the
    ``KeyboardInterrupt`` is turned into another error, as code that catches it would."""
    calls = []

    def factory(direction, case, data, weight):
        run = runners.library_runner("im2col")(direction, case, data, weight)
        calls.append(case.name)
        if len(calls) != at_call:
            return run
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            if not swallow:
                raise
            raise RuntimeError("compilation failed") from None
        return run
    return factory


@pytest.mark.parametrize("swallow", [False, True])
def test_interrupt_keeps_what_finished(swallow):
    plan = [("conv_transpose", TINY, "float64"), ("conv", TINY, "float64"), ("conv_transpose", TINY, "float32")]
    factory = _interrupting(2, swallow)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN, not Python's handler, when pytest runs as a background job

    def factories(direction):
        return {"im2col": runners.library_runner("im2col"), "ctrl_c": factory}

    with pytest.raises(runners.Interrupted) as interrupt:
        runners.run_benchmarks(plan, ONCE, factories=factories)
    finished = [(m.direction, m.dtype, m.method) for m in interrupt.value.results]
    # step 1 whole, step 2's im2col; the interrupted contender is dropped, never recorded as an error
    assert finished == [("conv_transpose", "float64", "im2col"), ("conv_transpose", "float64", "ctrl_c"),
                        ("conv", "float64", "im2col")]
    assert all(m.status == runners.OK for m in interrupt.value.results)
    assert signal.getsignal(signal.SIGINT) is before   # handler restored


def test_cli_interrupt_writes_what_finished_and_exits_130(tmp_path, capsys, monkeypatch):
    factory = _interrupting(2, swallow=True)
    monkeypatch.setattr(runners, "contenders",
                        lambda direction, methods=None, peer=True: {"im2col": runners.library_runner("im2col"),
                                                                    "ctrl_c": factory})
    out = tmp_path / "out"
    status = cli.main(["bench", "--case", "signal", "--direction", "conv_transpose", "--no-torch",
                       "--out", str(out)])
    assert status == 130
    printed = capsys.readouterr()
    assert "interrupted after" in printed.err and "Traceback" not in printed.err
    document = json.loads((out / "bench.json").read_text())
    assert document["interrupted"] is True
    assert [r["method"] for r in document["results"]] == ["im2col", "ctrl_c", "im2col"]
    assert "**interrupted** (Ctrl-C)" in (out / "bench.md").read_text()
    with open(out / "bench.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3


def test_sigint_to_a_running_bench(tmp_path):
    """A real Ctrl-C (SIGINT to the process) once the second step started: exit 130, rows kept."""
    out = tmp_path / "out"
    code = "import sys; from tconv_sparse.cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "bench", "--case", "signal", "--direction", "conv_transpose",
         "--no-torch", "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True)
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith(f"[2/{len(SIGNAL_CASES)}]"):
            process.send_signal(signal.SIGINT)
            break
    err = "".join(lines) + process.stderr.read()
    assert process.wait(timeout=600) == 130, err
    assert "Traceback" not in err
    document = json.loads((out / "bench.json").read_text())
    assert document["interrupted"] is True
    assert {r["case"] for r in document["results"]} >= {SIGNAL_CASES[0].name}
    assert len(document["results"]) >= len(runners.library_methods("conv_transpose"))


# ---------------------------------------------------------------- issue 14, item 15: load, spread, threads
def _stat(path, steal, total):
    path.write_text(f"cpu  {total - steal} 0 0 0 0 0 0 {steal} 0 0\ncpu0 1 0 0 0 0 0 0 0 0 0\n")


def test_load_monitor(tmp_path):
    from tconv_sparse.bench.load import LoadMonitor

    stat, loads = tmp_path / "stat", iter([0.5, 3.5, 1.0])
    _stat(stat, 100, 10_000)
    monitor = LoadMonitor(stat_path=stat, load_average=lambda: next(loads), cpus=4)
    assert not monitor.busy and monitor.warning() is None and monitor.steal is None
    _stat(stat, 400, 12_000)
    monitor.sample()
    monitor.sample()
    assert monitor.steal == pytest.approx(300 / 2000)
    assert monitor.busy                                   # 3.5 > 4 / 2
    lines = "\n".join(monitor.lines())
    assert "0.50 at the start, 1.00 at the end, 3.50 at most (3 samples; 4 usable CPUs)" in lines
    assert "CPU steal: 15.0% of the CPU time" in lines
    assert "**warning**: the load average reached 3.50, more than half of the 4 usable cores" in lines
    assert monitor.summary() == {"load_average_start": 0.5, "load_average_end": 1.0, "load_average_max": 3.5,
                                 "usable_cpus": 4, "cpu_steal": pytest.approx(0.15), "busy": True}
    off_linux = LoadMonitor(stat_path=tmp_path / "missing", load_average=lambda: None, cpus=2)
    assert off_linux.steal is None and not off_linux.busy and "unknown" in off_linux.lines()[0]


def test_spread_of_every_row_and_noisy_rows():
    steady = runners.Measurement("conv", TINY, "float32", "im2col", times=[1.0, 1.0, 1.05, 1.1])
    noisy = runners.Measurement("conv", TINY, "float32", "direct", times=[1.0, 1.0, 1.5, 2.0])
    assert steady.iqr == pytest.approx(0.0625) and steady.spread == pytest.approx(0.0625 / 1.025)
    assert noisy.spread == pytest.approx(0.625 / 1.25)
    assert runners.Measurement("conv", TINY, "float32", "x", times=[1.0]).spread is None
    table = report.format_table([steady])
    assert "| case | dtype | im2col | spread |" in table and "| 6% |" in table
    assert "| **50% noisy** |" in report.format_table([steady, noisy])
    record = noisy.record()
    assert record["iqr_s"] == pytest.approx(0.625) and record["spread"] == pytest.approx(0.5)


def test_cli_header_records_the_load_and_warns(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (1000.0, 1000.0, 1000.0))
    out = tmp_path / "out"
    status = cli.main(["bench", "--case", "signal:1x1->1x65536:k9s4", "--method", "im2col", "--direction",
                       "conv_transpose", "--no-torch", "--out", str(out)])
    assert status == 0
    printed = capsys.readouterr()
    assert "- load average (1 min): 1000.00 at the start" in printed.out and "- CPU steal: " in printed.out
    assert "warning: the load average reached 1000.00, more than half of the" in printed.err
    markdown = (out / "bench.md").read_text()
    assert "**warning**: the load average reached" in markdown and "| spread |" in markdown
    document = json.loads((out / "bench.json").read_text())
    assert document["load"]["busy"] is True and document["load"]["load_average_max"] == 1000.0
    assert document["results"][0]["spread"] is not None


def test_cli_threads(tmp_path, capsys):
    import numba
    from tconv_sparse.core.config import limit_threads

    try:
        status = cli.main(["bench", "--case", "signal:1x1->1x65536:k9s4", "--method", "im2col", "--direction",
                           "conv_transpose", "--no-torch", "--threads", "1", "--out", str(tmp_path)])
        assert status == 0 and num_threads() == 1
        printed = capsys.readouterr()
        assert "tconv_sparse (Numba) 1 threads" in printed.out and "--threads 1" in printed.out
    finally:
        limit_threads(None)
    limit = numba.config.NUMBA_NUM_THREADS
    assert cli.main(["bench", "--threads", "0", "--out", str(tmp_path)]) == 2
    assert (f"tconv-sparse bench: error: --threads: threads must be an int from 1 to {limit} (NUMBA_NUM_THREADS), "
            "got 0") in capsys.readouterr().err
    assert cli.main(["bench", "--threads", str(limit + 1), "--out", str(tmp_path)]) == 2


class _FakeTqdm:
    """Records what the progress bar is told."""

    instances = []

    def __init__(self, total, **kwargs):
        self.total, self.n, self.closed, self.kwargs = total, 0, False, kwargs
        _FakeTqdm.instances.append(self)

    def update(self, count):
        self.n += count

    def close(self):
        self.closed = True

    @classmethod
    def write(cls, text, file=None):
        print(f"tqdm: {text}", file=file)


def test_progress_bar_through_tqdm_or_plain_lines(tmp_path, capsys, monkeypatch):
    argv = ["bench", "--case", "signal:1x1->1x65536:k9s", "--method", "im2col", "--direction", "conv_transpose",
            "--no-torch", "--out", str(tmp_path)]
    monkeypatch.setitem(sys.modules, "tqdm", type(sys)("tqdm"))
    sys.modules["tqdm"].tqdm = _FakeTqdm
    assert cli.main(argv) == 0
    bar = _FakeTqdm.instances[-1]
    assert bar.total == len(SIGNAL_CASES) and bar.n == len(SIGNAL_CASES) and bar.closed
    assert bar.kwargs["disable"] is None          # tqdm hides the bar when stderr is not a terminal
    assert f"tqdm: [1/{len(SIGNAL_CASES)}] conv_transpose" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert f"\n[1/{len(SIGNAL_CASES)}] conv_transpose" in "\n" + err and "tqdm:" not in err


def test_cold_rows_in_fresh_processes(tmp_path, capsys):
    """``bench --cold``: one library row, two fresh processes on a fresh cache (zero_insert is NumPy
    only, so the row costs two interpreter start-ups); the peer row is tested below."""
    status = cli.main(["bench", "--cold", "--method", "zero_insert", "--direction", "conv_transpose",
                       "--no-torch", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 0
    rows = json.loads((tmp_path / "cold.json").read_text())["rows"]
    assert [(r["method"], r["dtype"]) for r in rows] == [("zero_insert", "float32")]
    library = rows[0]
    assert library["error"] is None and library["specializations"] == 0
    assert 0 < library["import_s"] and 0 <= library["compile_s"] <= library["cold_first_s"]
    assert library["warm_s"] > 0 and library["cached_first_s"] > 0
    assert "| conv_transpose | zero_insert | float32 |" in printed
    assert "import + first call vs torch" in (tmp_path / "cold.md").read_text()


def test_cold_peer_row_without_torch(tmp_path, monkeypatch):
    """A fresh process in which ``import torch`` fails gives an n/a peer row and n/a ratios."""
    from tconv_sparse.bench import cold

    (tmp_path / "torch.py").write_text("raise ImportError('no torch here')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(ROOT)]))
    peer = cold.torch_row("conv_transpose", "float32")
    assert peer.error is None and peer.start_s is None
    row = cold.ColdRow("conv_transpose", "gather", "float32", 0.4, 2.0, 0.1, 0.001, 9)
    table = cold.format_cold_table([row, peer], {("conv_transpose", "float32"): peer})
    assert table.splitlines()[2].endswith("| 9 | n/a |")
    assert "| conv_transpose | torch | float32 | n/a | n/a |" in table
