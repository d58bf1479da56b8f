"""``tconv-sparse demo``: the report answers the seed's questions with correct numbers, and the
figures are written (or skipped with a note when matplotlib is missing)."""

from __future__ import annotations

import io
import re
import sys

import numpy as np
import pytest

from tconv_sparse.cli import main
from tconv_sparse.cli.demo import psnr, run_demo, synthetic_image

FIGURES = {"cs231n_2x2_to_4x4.png", "keras_2x2_to_5x5.png", "cs231n_vs_keras.png", "matrix_1d.png",
           "scatter_vs_zero_insertion.png", "speed.png",
           "deconvolution.png", "overlap_maps.png"}


def _psnr_rows(report: str) -> dict:
    """``estimate -> PSNR`` from part 5 of the report."""
    part = report.split("5. Transposed convolution is not deconvolution")[1]
    return {match.group(1).strip(): float(match.group(2))
            for match in re.finditer(r"^   (\S.*?)\s+(\d+\.\d\d)\s+\d+\.\d\d$", part, flags=re.M)}


def _check_report(report: str) -> None:
    # 1. shapes: CS231n's 4x4 (padding 1, output_padding 1) and Keras' 5x5 ("valid")
    assert "padding=1, output_padding=1: (2 - 1)*2 - (1 + 1) + 3 + 1 = 4  -> 4x4   <- requested" in report
    assert 'Keras padding="valid": (2 - 1)*2 + max(3, 2) = 5  -> 5x5' in report
    assert "torch.nn.functional.conv_transpose2d(y, w, stride=2, padding=1, output_padding=1)" in report
    # 2. the 1-D matrix example, without and with padding
    assert "[a*x, a*y, a*z + b*x, b*y, b*z]" in report
    assert "[a*y, a*z + b*x, b*y, b*z]" in report
    # 3. scatter == zero insertion, and every method agrees with C / C.T
    assert "identical: True" in report
    worst = float(re.search(r"largest relative error: (\S+) ", report).group(1))
    assert worst < 1e-12
    assert not re.search(r" {5}n/a", report.split("3. Scatter")[1].split("4. Speed")[0])
    # 4. the speed table of the bench harness, every result checked
    speed = report.split("4. Speed")[1].split("5. Transposed")[0]
    assert "### conv_transpose" in speed and "### conv" in speed
    assert "FAIL" not in speed and "error" not in speed.replace("relative error", "")
    # 5. C.T h is worse than the data; every deconvolution is better
    rows = _psnr_rows(report)
    assert len(rows) == 6, rows
    data, transpose = rows.pop("blurred data h"), rows.pop("conv_transpose: C.T h")
    assert transpose < data
    assert all(value > data + 0.5 for value in rows.values()), rows
    assert re.search(r"^Done in \d+ s\.", report, flags=re.M)


def test_demo_report_and_figures(tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["demo", "--out", str(out)]) == 0
    report = capsys.readouterr().out
    _check_report(report)
    assert f"8 figures written to {out.resolve()}" in report
    assert {path.name for path in out.iterdir()} == FIGURES
    for path in out.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000, path


def test_demo_without_matplotlib(tmp_path, monkeypatch):
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    stream = io.StringIO()
    assert run_demo(tmp_path / "figures", stream=stream) == []
    report = stream.getvalue()
    _check_report(report)
    assert "Note: matplotlib is not installed, so no figures are drawn" in report
    assert "skipped: matplotlib is not installed" in report
    assert not (tmp_path / "figures").exists()


def test_demo_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    assert "--out DIR" in capsys.readouterr().out


def test_synthetic_image():
    image = synthetic_image(128)
    assert image.shape == (128, 128) and image.dtype == np.float64
    assert 0 <= image.min() and image.max() <= 1
    assert len(np.unique(np.round(image, 6))) > 50          # a gradient, not a few flat levels
    with pytest.raises(ValueError, match="size must be an int >= 16"):
        synthetic_image(8)


def test_psnr():
    assert psnr(np.full(4, 0.1), np.zeros(4)) == pytest.approx(20.0)
    assert psnr(np.full(4, 2.0), np.ones(4)) == float("inf")    # clipped to [0, 1] first


def test_compile_wait_shows_a_live_line_and_reports_compile_time_apart():
    import io
    import time as _time
    from concurrent.futures import ThreadPoolExecutor

    from tconv_sparse.cli import demo

    lines, live = [], io.StringIO()
    pool = ThreadPoolExecutor(1)
    compiling = (pool, [pool.submit(_time.sleep, 0.3)], _time.perf_counter())
    demo._finish_compiling(compiling, lines.append, live=live)
    assert "compiling the Numba kernels of parts 3-5 (first run only): 0/1 groups" in live.getvalue()
    assert len(lines) == 1 and "compiled (or loaded from the cache) in" in lines[0]
    assert "waited for here" in lines[0]


def test_compile_notices_print_as_report_lines():
    """A first run compiles parts 1-2 in the demo's own process: its notice is a line of the report,
    not a warning with a source line; other warnings still warn."""
    import warnings

    from tconv_sparse.cli import demo
    from tconv_sparse.core.config import CompileNotice

    lines = []
    with demo._notices_as_lines(lines.append):
        warnings.warn("compiling the sparse kernels of conv_transpose for float64", CompileNotice)
        with pytest.warns(UserWarning, match="other"):
            warnings.warn("other", UserWarning)
    assert lines == ["   compiling the sparse kernels of conv_transpose for float64"]
