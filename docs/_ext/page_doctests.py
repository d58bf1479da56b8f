"""Run the ``pycon`` examples of every page while Sphinx reads it.

A MyST code fence tagged ``pycon`` (an interactive Python session, ``>>>``
prompts followed by the expected output) is run with :mod:`doctest` when the
page is read. The blocks of one page share their namespace, in page order, so
a page reads like one session. A mismatch or an exception is a Sphinx warning
at the block's line, which ``-W`` turns into a build error: a page cannot
state a number that the library does not compute.
"""

from __future__ import annotations

import doctest

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: doctest options of every block, those of the package's docstring tests
OPTION_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _session_blocks(doctree):
    return [node for node in doctree.findall(nodes.literal_block) if node.get("language") == "pycon"]


def run_page_examples(app, doctree) -> None:
    """``doctree-read`` handler: run the page's ``pycon`` blocks, warn on every failure."""
    blocks = _session_blocks(doctree)
    if not blocks:
        return
    docname = app.env.docname
    path = str(app.env.doc2path(docname))
    namespace = {"__name__": f"docs.{docname}"}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=OPTION_FLAGS)
    for block in blocks:
        test = parser.get_doctest(block.astext(), namespace, docname, path, block.line)
        report = []
        result = runner.run(test, out=report.append, clear_globs=False)
        namespace = test.globs  # DocTest copies its globals: carry them to the next block
        if result.failed:
            logger.warning("example failed:\n%s", "".join(report), location=block)


def setup(app):
    """Register the handler."""
    app.connect("doctree-read", run_page_examples)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
