"""Checks of the command line's output paths, made before any work is done.

A sub-command that writes files checks its ``--out`` folder or ``--plot``
file first, so that a bad path is a one-line error (exit status 2) instead of
a traceback after the whole run. Nothing is created by the checks.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["OptionError", "check_folder", "check_figure_file", "figure_formats"]


class OptionError(ValueError):
    """A bad option value; the sub-commands print it as one line and exit with status 2."""


def _probe(option: str, path: Path, folder: Path) -> None:
    """Create and delete a file in ``folder``: the only test that holds for root and read-only mounts."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OptionError(f"{option} {path}: cannot write into the folder {folder} ({reason})") from None


def check_folder(option: str, path) -> Path:
    """Check that ``path`` is, or can be created as, a writable folder; return it as a Path.

    Examples
    --------
    >>> import tempfile
    >>> from tconv_sparse.cli.outputs import check_folder
    >>> with tempfile.NamedTemporaryFile() as handle:
    ...     check_folder("--out", f"{handle.name}/sub")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tconv_sparse.cli.outputs.OptionError: --out .../sub: ... is a file, not a folder
    """
    path = Path(path)
    existing = path
    while not existing.exists():
        if existing.parent == existing:  # pragma: no cover - the root always exists
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(f"{option} {path}: {existing} is a file, not a folder")
    _probe(option, path, existing)
    return path


def figure_formats() -> dict:
    """``extension -> description`` of the file formats matplotlib can save."""
    from matplotlib.figure import Figure

    return Figure().canvas.get_supported_filetypes()


def check_figure_file(option: str, path) -> Path:
    """Check that matplotlib can save a figure as ``path``: a known format, in a writable folder.

    The folder must exist (it is not created for a single file).
    """
    path = Path(path)
    formats = figure_formats()
    extension = path.suffix.lower().lstrip(".")
    if extension not in formats:
        raise OptionError(f"{option} {path}: unknown figure format {path.suffix or '(none)'!r}; use one of "
                          + ", ".join(f".{name}" for name in sorted(formats)))
    folder = path.parent
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise OptionError(f"{option} {path}: the folder {folder} {what}")
    if path.is_dir():
        raise OptionError(f"{option} {path}: is a folder, not a file")
    _probe(option, path, folder)
    if path.exists() and not os.access(path, os.W_OK):
        raise OptionError(f"{option} {path}: the file exists and is not writable")
    return path
