"""Monitoring a solve: the residual history, ``callback`` and the progress line."""

from __future__ import annotations

import numpy as np

from tconv_sparse.core.progress import Progress as _Bar

__all__ = ["Progress", "Monitor"]


class Progress:
    """The solve's progress bar: ``deconvolve[solver] sample i/N``, the iterations and the residual.

    Drawn by :class:`tconv_sparse.core.progress.Progress` (tqdm when
    installed, else a text bar redrawn on stderr).

    Examples
    --------
    >>> import io
    >>> from tconv_sparse.solvers.monitor import Progress
    >>> stream = io.StringIO()
    >>> bar = Progress("cg", 1, 10, stream)
    >>> bar.update(0, 5, 0.125, force=True)
    >>> bar.close()
    """

    def __init__(self, solver: str, samples: int, maxiter: int, stream=None):
        self.solver, self.samples, self.sample = solver, samples, 0
        self.bar = _Bar(maxiter, stream, desc=self._label(0), unit="it", shown=True)

    def _label(self, sample: int) -> str:
        return f"deconvolve[{self.solver}] sample {sample + 1}/{self.samples}"

    def update(self, sample: int, iteration: int, residual: float, force: bool = False) -> None:
        """Show ``iteration`` of ``sample`` and its residual (redrawn at most every 0.1 s unless ``force``)."""
        if sample != self.sample:
            self.sample = sample
            self.bar.restart(self._label(sample))
        self.bar.step(iteration, f"residual {residual:.3e}", force=force)

    def close(self) -> None:
        """End the bar."""
        self.bar.close()


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
