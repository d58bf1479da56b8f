"""The documentation stays in step with the package: every public name has an API page, the
quick start matches the README, and every gallery script is in the gallery order.

The pages' examples and the gallery scripts themselves run in the documentation build
(``python -m sphinx -W -b html docs docs/_build/html``), which CI runs.
"""

from __future__ import annotations

import pathlib
import re
import runpy

import tconv_sparse as ts

ROOT = pathlib.Path(__file__).parent.parent
DOCS = ROOT / "docs"


def test_api_reference_lists_every_public_name():
    api = (DOCS / "api.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   ([\w.]+)$", api, flags=re.M))
    missing = [name for name in ts.__all__ if name != "__version__" and name not in listed]
    assert not missing, f"add these names of tconv_sparse.__all__ to docs/api.rst: {missing}"


def test_getting_started_shows_the_readme_quick_start():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quick_start, flags=re.S)
    assert len(commands) == 2
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    for command in commands:
        assert f"```bash\n{command}```" in page, command


def test_every_gallery_script_has_its_place():
    order = runpy.run_path(str(DOCS / "_ext" / "gallery_order.py"))["ORDER"]
    scripts = {path.name for path in (ROOT / "examples").glob("plot_*.py")}
    assert scripts == set(order)
