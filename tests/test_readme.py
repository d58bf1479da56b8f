"""The README's Python examples run as written, and its quick start matches CI."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_ci_runs_the_readme_test_command():
    quick_start = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    test_command = quick_start[1].strip().split("&& ")[-1]
    assert test_command == "python -m pytest -n auto"  # every core: the workers compile side by side
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
