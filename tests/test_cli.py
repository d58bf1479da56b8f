"""The ``tconv-sparse`` command as a whole: bare invocation and output paths checked up front
(issue 14, items 12 and 14)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from tconv_sparse.cli import main

ROOT = pathlib.Path(__file__).parent.parent
CS231N = ["--input", "2x2", "--kernel", "3", "--stride", "2", "--padding", "1"]
BENCH = ["bench", "--case", "signal:1x1->1x65536:k9s4", "--method", "im2col", "--direction", "conv_transpose",
         "--no-torch"]


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(err, command):
    assert err.startswith(f"tconv-sparse {command}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.fixture
def read_only(tmp_path):
    """A folder this process cannot write into: chmod 500, or for root (who ignores it) /proc."""
    if os.geteuid() == 0:
        yield pathlib.Path("/proc")
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    yield folder
    folder.chmod(0o700)


def test_bare_command_prints_help_and_exits_2(capsys):
    status, out, err = _run(capsys)
    assert status == 2 and out == ""
    assert err.startswith("usage: tconv-sparse") and "explain" in err and "bench" in err and "demo" in err


def test_bare_console_script_exits_2():
    code = "import sys; from tconv_sparse.cli import main; sys.exit(main())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "usage: tconv-sparse" in result.stderr


@pytest.mark.parametrize("plot,message", [
    ("/nonexistent/dir/x.png", "--plot /nonexistent/dir/x.png: the folder /nonexistent/dir does not exist"),
    ("x.bmpx", "--plot x.bmpx: unknown figure format '.bmpx'; use one of "),
    ("noextension", "unknown figure format '(none)'"),
])
def test_explain_plot_paths_are_checked_first(plot, message, capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    status, out, err = _run(capsys, "explain", *CS231N, "--plot", plot)
    assert status == 2 and out == ""          # nothing printed: the check comes before the report
    _one_line_error(err, "explain")
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_explain_plot_into_a_file_or_read_only_folder(capsys, tmp_path, read_only):
    pytest.importorskip("matplotlib")
    afile = tmp_path / "afile"
    afile.write_text("")
    status, _, err = _run(capsys, "explain", *CS231N, "--plot", str(afile / "x.png"))
    assert status == 2 and f"the folder {afile} is a file, not a folder" in err
    status, _, err = _run(capsys, "explain", *CS231N, "--plot", str(read_only / "x.png"))
    assert status == 2 and f"cannot write into the folder {read_only}" in err
    _one_line_error(err, "explain")


def test_explain_plot_too_large_to_draw(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    status, out, err = _run(capsys, "explain", "--input", "2", "--kernel", "3", "--stride", "100000",
                            "--plot", str(tmp_path / "x.png"))
    assert status == 2 and out == ""
    _one_line_error(err, "explain")
    assert "no figure: conv-arithmetic frames are drawn for canvases of up to 64 cells per axis" in err


def test_demo_out_under_a_file(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    status, out, err = _run(capsys, "demo", "--out", str(afile / "sub"))
    assert status == 2 and out == ""          # refused before the demo starts
    _one_line_error(err, "demo")
    assert f"--out {afile / 'sub'}: {afile} is a file, not a folder" in err


def test_bench_out_is_checked_before_the_run(capsys, tmp_path, read_only):
    afile = tmp_path / "afile"
    afile.write_text("")
    for out_dir, message in ((read_only / "results", f"cannot write into the folder {read_only}"),
                             (afile / "sub", f"{afile} is a file, not a folder")):
        status, out, err = _run(capsys, *BENCH, "--out", str(out_dir))
        assert status == 2 and out == ""      # no header, no case run
        _one_line_error(err, "bench")
        assert message in err
