"""Monitoring a solve: the residual history, ``callback`` and the progress line."""

from __future__ import annotations

import math
import sys
import time

import numpy as np

__all__ = ["Progress", "Monitor"]

#: seconds between two redraws of the progress line
_PROGRESS_INTERVAL = 0.1


class Progress:
    """A one-line progress bar with the residual, redrawn on stderr.

    Examples
    --------
    >>> import io
    >>> from tconv_sparse.solvers.monitor import Progress
    >>> stream = io.StringIO()
    >>> bar = Progress("cg", 1, 10, stream)
    >>> bar.update(0, 5, 0.125, force=True)
    >>> stream.getvalue()
    '\\rdeconvolve[cg] sample 1/1 |##########..........| 5/10 residual 1.250e-01'
    """

    def __init__(self, solver: str, samples: int, maxiter: int, stream=None):
        self.solver, self.samples, self.maxiter = solver, samples, maxiter
        self.stream = sys.stderr if stream is None else stream
        self.last_draw = -math.inf

    def update(self, sample: int, iteration: int, residual: float, force: bool = False) -> None:
        """Redraw the line (at most every 0.1 s unless ``force``)."""
        now = time.monotonic()
        if not force and now - self.last_draw < _PROGRESS_INTERVAL:
            return
        self.last_draw = now
        filled = 20 * iteration // self.maxiter
        self.stream.write(f"\rdeconvolve[{self.solver}] sample {sample + 1}/{self.samples} "
                          f"|{'#' * filled}{'.' * (20 - filled)}| {iteration}/{self.maxiter} "
                          f"residual {residual:.3e}")
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        self.stream.write("\n")
        self.stream.flush()


class Monitor:
    """Records one sample's residual history and feeds ``callback`` and the progress bar.

    Solvers call it as ``monitor(iteration, x, residual)`` once for the start
    (iteration 0) and after every iteration; ``x`` is the flat iterate. It
    returns whether the residual has reached ``target`` (the discrepancy
    level ``noise_std * sqrt(m)`` of :func:`~tconv_sparse.deconvolve`; never
    with ``target=None``), at which the solver stops.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.solvers.monitor import Monitor
    >>> seen = []
    >>> monitor = Monitor(0, (1, 2), lambda k, x: seen.append((k, x.tolist())), None, target=1.5)
    >>> monitor(0, np.zeros(2), 2.0), monitor(1, np.ones(2), 1.0)
    (False, True)
    >>> monitor.residuals, seen
    ([2.0, 1.0], [(1, [[1.0, 1.0]])])
    """

    def __init__(self, sample: int, sample_shape, callback, progress: Progress | None,
                 target: float | None = None):
        self.sample, self.sample_shape = sample, sample_shape
        self.callback, self.progress = callback, progress
        self.target = -1.0 if target is None else target
        self.residuals: list[float] = []
        self.iteration = 0

    def __call__(self, iteration: int, x: np.ndarray, residual) -> bool:
        self.iteration = iteration
        self.residuals.append(float(residual))
        if self.callback is not None and iteration:
            self.callback(iteration, x.reshape(self.sample_shape).copy())
        if self.progress is not None:
            self.progress.update(self.sample, iteration, residual)
        return residual <= self.target

    def finish(self) -> None:
        """Draw the sample's final state."""
        if self.progress is not None:
            self.progress.update(self.sample, self.iteration, self.residuals[-1], force=True)
