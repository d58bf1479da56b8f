"""Sphinx configuration of the tconv_sparse documentation.

Build it, warnings as errors, from the repository root::

    python -m sphinx -W -b html docs docs/_build/html

Pages are MyST Markdown; their ``pycon`` examples run during the build
(``_ext/page_doctests.py``), their ``{plot}`` figures are drawn by the
matplotlib plot directive, and the gallery scripts in ``examples/`` run under
sphinx-gallery. The API reference is generated from the numpydoc docstrings.
"""

import inspect
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import tconv_sparse  # noqa: E402

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
# files that gallery scripts save besides their figures (plot_deconvolution.py's PNG)
os.environ["TCONV_SPARSE_EXAMPLES_OUT"] = str(DOCS / "_build" / "gallery-files")


def _readme_section(heading: str) -> str:
    """The body of the README section whose heading line starts with ``heading``, up to the next
    heading of the same or a higher level."""
    lines = (DOCS.parent / "README.md").read_text(encoding="utf-8").splitlines()
    level = heading.split(" ", 1)[0]
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        raise RuntimeError(f"README.md has no section {heading!r}; docs/performance.md includes it")
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("#") and len(lines[i].split(" ", 1)[0]) <= len(level)), len(lines))
    return "\n".join(lines[start + 1:end]).strip() + "\n"


# the benchmark results of the README, included by performance.md (gen_modules/ is generated)
(DOCS / "gen_modules").mkdir(exist_ok=True)
(DOCS / "gen_modules" / "benchmark-results.md").write_text(
    _readme_section("### Results on this machine"), encoding="utf-8")

# -- project ------------------------------------------------------------------------------------
project = "tconv_sparse"
author = "tconv_sparse developers"
copyright = "tconv_sparse developers"
version = release = tconv_sparse.__version__

extensions = [
    "myst_parser",
    "sphinx_design",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "sphinx_gallery.gen_gallery",
    "page_doctests",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "gen_modules/benchmark-results.md", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5",
                    "sg_execution_times.rst"]
templates_path = ["_templates"]

# -- MyST ---------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- API reference ------------------------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False



def _init_signature(app, what, name, obj, options, signature, return_annotation):
    """Show a class's ``__init__`` signature where an inherited ``__new__(*args, **kwargs)``
    (SciPy's ``LinearOperator``) would hide it."""
    if what == "class" and signature == "(*args, **kwargs)":
        parameters = list(inspect.signature(obj.__init__).parameters.values())[1:]
        return str(inspect.Signature(parameters)), return_annotation
    return None


def setup(app):
    """Connect :func:`_init_signature`."""
    app.connect("autodoc-process-signature", _init_signature)


# -- matplotlib plot directive ------------------------------------------------------------------
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\nimport tconv_sparse as ts"
plot_rcparams = {"figure.max_open_warning": 0}

# -- sphinx-gallery -----------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "within_subsection_order": "gallery_order.GalleryOrder",
    "download_all_examples": False,
    "capture_repr": (),  # show what the scripts print, not the repr of their last expression
    "remove_config_comments": True,
    "min_reported_time": 1,
    "matplotlib_animations": False,
}

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"tconv_sparse {release}"
html_static_path = ["_static"]
html_css_files = ["tconv.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "navbar_align": "left",
    "header_links_before_dropdown": 4,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"**": []}  # the pages are flat: the navigation bar lists them all
html_show_sourcelink = False
