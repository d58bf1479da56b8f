"""Progress of a long command on stderr: a tqdm bar when tqdm is installed, plain lines otherwise."""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    """Lines of text and a bar over ``total`` steps.

    With tqdm installed the bar counts the steps (tqdm hides it when stderr is
    not a terminal) and the lines go through ``tqdm.write`` so they do not
    break it; without tqdm only the lines are printed.

    Examples
    --------
    >>> import io
    >>> from tconv_sparse.cli.progress import Progress
    >>> stream = io.StringIO()
    >>> with Progress(2, stream) as progress:
    ...     progress.line("[1/2] first")
    ...     progress.step(1, 2)
    >>> stream.getvalue().splitlines()[0]
    '[1/2] first'
    """

    def __init__(self, total: int, stream=None):
        self.stream = sys.stderr if stream is None else stream
        try:
            from tqdm import tqdm
        except ImportError:
            self._tqdm, self.bar = None, None
        else:
            self._tqdm = tqdm
            self.bar = tqdm(total=total, file=self.stream, unit="step", disable=None, leave=False,
                            dynamic_ncols=True)

    def line(self, text: str) -> None:
        """Print one line above the bar."""
        if self._tqdm is None:
            print(text, file=self.stream, flush=True)
        else:
            self._tqdm.write(text, file=self.stream)

    def step(self, done: int, total: int) -> None:
        """``done`` of ``total`` steps are finished."""
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
