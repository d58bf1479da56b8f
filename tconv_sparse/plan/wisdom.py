"""The wisdom file: measured method choices remembered across processes, as FFTW does.

``planning="measure"`` times the candidate methods once per geometry, dtype,
batch size and thread count; the winner is stored here and reused by every
later process of the same user, so measuring costs once.

Where
    ``$TCONV_SPARSE_WISDOM`` if set, else ``$XDG_CACHE_HOME/tconv_sparse/wisdom.json``
    (``~/.cache/tconv_sparse/wisdom.json`` without ``XDG_CACHE_HOME``).
Format
    JSON ``{"format": 1, "version": <library version>, "entries": {key: method}}``.
    A file written by another library version, or one that cannot be read or
    parsed, is ignored with a :class:`WisdomWarning` (and replaced at the next
    save): a stale choice is never trusted.
Safety
    Saving re-reads the file, merges, writes a temporary file in the same
    folder and renames it over the old one (atomic on POSIX and Windows),
    under an exclusive lock (``fcntl.flock`` where available) on a side file,
    so two processes that save at once both keep their entries and a reader
    never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import warnings
from pathlib import Path

__all__ = ["WisdomWarning", "wisdom_path", "lookup", "record", "forget"]

_FORMAT = 1
_lock = threading.Lock()
#: path -> entries read by this process (``None`` until first read)
_memory: dict[str, dict] = {}


class WisdomWarning(UserWarning):
    """The wisdom file was ignored (unreadable, corrupt, or of another library version)."""


def _version() -> str:
    from tconv_sparse import __version__

    return __version__


def wisdom_path() -> Path:
    """The wisdom file of this user (see the module documentation)."""
    override = os.environ.get("TCONV_SPARSE_WISDOM")
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "tconv_sparse" / "wisdom.json"


def _read(path: Path) -> dict:
    """The entries stored at ``path``; ``{}`` (with a warning) for an unusable file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # nothing stored yet
        return {}
    except OSError as error:
        warnings.warn(f"ignoring the wisdom file {path}: {error}", WisdomWarning, stacklevel=4)
        return {}
    try:
        content = json.loads(text)
        if not isinstance(content, dict) or not isinstance(content.get("entries"), dict):
            raise ValueError("not a wisdom file")
    except ValueError as error:
        warnings.warn(f"ignoring the corrupt wisdom file {path} ({error}); it is rewritten at the next "
                      "measurement", WisdomWarning, stacklevel=4)
        return {}
    if content.get("format") != _FORMAT or content.get("version") != _version():
        warnings.warn(f"ignoring the wisdom file {path}: written by tconv_sparse "
                      f"{content.get('version')!r} (format {content.get('format')!r}), this is "
                      f"{_version()!r}; it is rewritten at the next measurement", WisdomWarning, stacklevel=4)
        return {}
    return {str(key): str(value) for key, value in content["entries"].items()}


def _entries(path: Path) -> dict:
    key = str(path)
    if key not in _memory:
        _memory[key] = _read(path)
    return _memory[key]


def lookup(key: str) -> str | None:
    """The method remembered for ``key``, or ``None``."""
    with _lock:
        return _entries(wisdom_path()).get(key)


@contextlib.contextmanager
def _file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename alone
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def record(key: str, method: str) -> None:
    """Remember ``method`` for ``key`` in memory and in the wisdom file.

    A file that cannot be written (read-only folder, full disk) costs only a
    warning: the choice is still kept for this process.
    """
    path = wisdom_path()
    with _lock:
        entries = _entries(path)
        entries[key] = method
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _file_lock(path), warnings.catch_warnings():
                warnings.simplefilter("ignore", WisdomWarning)  # already said when first read
                merged = {**_read(path), **entries}
                content = {"format": _FORMAT, "version": _version(), "entries": dict(sorted(merged.items()))}
                handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    json.dump(content, stream, indent=0)
                os.replace(temporary, path)
            entries.update(merged)
        except OSError as error:
            warnings.warn(f"could not save the wisdom file {path}: {error}", WisdomWarning, stacklevel=3)


def forget() -> None:
    """Drop what this process has read, so the next look-up reads the file again."""
    with _lock:
        _memory.clear()
