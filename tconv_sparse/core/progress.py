"""Progress of a long computation on stderr: a tqdm bar when tqdm is installed, plain text otherwise.

One helper for every long computation of the package (``tconv-sparse bench``,
``deconvolve(progress=True)``, the SVD routes of the spectra, the Dask
solves). tqdm is the optional extra ``pip install tconv-sparse[progress]``.
"""

from __future__ import annotations

import math
import sys
import time

__all__ = ["Progress", "REDRAW_SECONDS", "note"]

#: seconds between two redraws of the plain-text bar
REDRAW_SECONDS = 0.1


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def note(text: str, stream=None) -> None:
    """Print one line on ``stream`` (default stderr), through ``tqdm.write`` when tqdm is installed
    so that it does not break a bar being drawn.

    Examples
    --------
    >>> import io
    >>> from tconv_sparse.core.progress import note
    >>> stream = io.StringIO()
    >>> note("an estimated 55 s", stream)
    >>> stream.getvalue()
    'an estimated 55 s\\n'
    """
    stream = sys.stderr if stream is None else stream
    tqdm = _tqdm()
    if tqdm is None:
        print(text, file=stream, flush=True)
    else:
        tqdm.write(text, file=stream)


class Progress:
    """Lines of text and a bar over ``total`` steps.

    Parameters
    ----------
    total : int or None
        Steps of the bar (``None``: unknown, the bar counts).
    stream : file, optional
        Default ``sys.stderr``.
    desc : str
        The bar's label.
    unit : str
        What a step is (tqdm's ``unit``).
    shown : bool
        ``False``: a bar only when ``stream`` is a terminal, and no plain
        bar without tqdm (only the lines): for commands. ``True``: the caller
        asked for progress (``progress=True``), so the bar is drawn anyway,
        as text (redrawn with ``\\r``, at most every 0.1 s) when tqdm is
        not installed.

    Examples
    --------
    Without tqdm (or with it, the lines are the same):

    >>> import io, sys
    >>> from tconv_sparse.core.progress import Progress
    >>> stream = io.StringIO()
    >>> with Progress(2, stream) as progress:
    ...     progress.line("[1/2] first")
    ...     progress.step(1)
    >>> stream.getvalue().splitlines()[0]
    '[1/2] first'
    """

    def __init__(self, total: int | None, stream=None, *, desc: str = "", unit: str = "step",
                 shown: bool = False):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.desc, self.shown = total, desc, shown
        self.done, self.status, self._drawn = 0, "", -math.inf
        self._tqdm = _tqdm()
        self.bar = None
        if self._tqdm is not None:
            self.bar = self._tqdm(total=total, file=self.stream, unit=unit, disable=False if shown else None,
                                  leave=shown, dynamic_ncols=True, **({"desc": desc} if desc else {}))

    def line(self, text: str) -> None:
        """Print one line above the bar."""
        note(text, self.stream)

    def step(self, done: int, status: str | None = None, force: bool = False) -> None:
        """``done`` steps are finished; ``status`` is shown after the bar; ``force`` redraws now."""
        self.done = done
        if status is not None:
            self.status = status
        if self.bar is not None:
            if status is not None:
                self.bar.set_postfix_str(status, refresh=False)
            self.bar.update(done - self.bar.n)
            if force:
                self.bar.refresh()
        elif self.shown:
            self._draw(force)

    def restart(self, desc: str, total: int | None = None) -> None:
        """Start the bar again from zero with a new label (the next sample, the next stage)."""
        self.desc, self.done = desc, 0
        self.total = self.total if total is None else total
        if self.bar is not None:
            self.bar.reset(total=self.total)
            self.bar.set_description(desc, refresh=False)

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < REDRAW_SECONDS:
            return
        self._drawn = now
        if self.total:
            filled = 20 * min(self.done, self.total) // self.total
            counter = f"|{'#' * filled}{'.' * (20 - filled)}| {self.done}/{self.total}"
        else:
            counter = f"{self.done}"
        self.stream.write(f"\r{self.desc} {counter}" + (f" {self.status}" if self.status else ""))
        self.stream.flush()

    def close(self) -> None:
        """Finish the bar (a plain bar ends its line)."""
        if self.bar is not None:
            self.bar.close()
        elif self.shown and self._drawn > -math.inf:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
