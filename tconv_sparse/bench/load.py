"""How busy the machine was during a benchmark run: load average and CPU steal.

Timings taken while other processes compete for the cores come in scheduler
time slices (steps of several milliseconds) and say little about the kernels.
:class:`LoadMonitor` samples the 1-minute load average and the CPU steal time
of ``/proc/stat`` (time a hypervisor gave this virtual machine's CPUs to
others) at the start, after every step and at the end of a run; the report
shows them and warns when the load exceeded half the usable cores.
"""

from __future__ import annotations

import os

__all__ = ["LoadMonitor", "read_cpu_times", "usable_cpus"]


def usable_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def read_cpu_times(path="/proc/stat") -> tuple[int, int] | None:
    """``(steal, total)`` CPU time in clock ticks since boot, from the ``cpu`` line; ``None`` off Linux.

    The fields are user, nice, system, idle, iowait, irq, softirq, steal (guest time is
    already counted in user).

    Examples
    --------
    >>> import tempfile
    >>> from tconv_sparse.bench.load import read_cpu_times
    >>> with tempfile.NamedTemporaryFile("w", suffix=".stat") as stat:
    ...     _ = stat.write("cpu  100 0 50 800 10 0 0 40 0 0\\ncpu0 50 0 25 400 5 0 0 20 0 0\\n")
    ...     stat.flush()
    ...     read_cpu_times(stat.name)
    (40, 1000)
    """
    try:
        with open(path, encoding="ascii") as stat:
            for line in stat:
                fields = line.split()
                if fields and fields[0] == "cpu":
                    ticks = [int(value) for value in fields[1:9]]
                    return ticks[7] if len(ticks) > 7 else 0, sum(ticks)
    except (OSError, ValueError):
        pass
    return None


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):  # pragma: no cover - not on Windows
        return None


class LoadMonitor:
    """Samples of the load average and the CPU times over a run.

    Parameters
    ----------
    stat_path : str
        The ``/proc/stat`` file to read (a test can give another).
    load_average : callable
        Returns the 1-minute load average (default :func:`os.getloadavg`).
    cpus : int, optional
        The usable cores the load is compared with (default :func:`usable_cpus`).
    """

    def __init__(self, stat_path="/proc/stat", load_average=_load_average, cpus=None):
        self.stat_path, self._load_average = stat_path, load_average
        self.cpus = usable_cpus() if cpus is None else cpus
        self.loads = []
        self.first = self.last = None
        self.sample()
        self.first = self.last

    def sample(self, *_) -> None:
        """Record the load average and the CPU times now (extra arguments, e.g. of a step hook, ignored)."""
        load = self._load_average()
        if load is not None:
            self.loads.append(load)
        self.last = read_cpu_times(self.stat_path)

    @property
    def steal(self) -> float | None:
        """Fraction of the CPU time stolen by the hypervisor between the first and last sample."""
        if self.first is None or self.last is None or self.last[1] <= self.first[1]:
            return None
        return (self.last[0] - self.first[0]) / (self.last[1] - self.first[1])

    @property
    def busy(self) -> bool:
        """Whether the load average exceeded half the usable cores in any sample."""
        return bool(self.loads) and max(self.loads) > self.cpus / 2

    def summary(self) -> dict:
        """JSON-ready: the load samples' first, last and largest value, the cores, the steal, busy."""
        loads = self.loads or [None]
        return {"load_average_start": loads[0], "load_average_end": loads[-1],
                "load_average_max": max(self.loads) if self.loads else None, "usable_cpus": self.cpus,
                "cpu_steal": self.steal, "busy": self.busy}

    def warning(self) -> str | None:
        """The warning for a busy machine, or ``None``."""
        if not self.busy:
            return None
        return (f"the load average reached {max(self.loads):.2f}, more than half of the {self.cpus} usable "
                "cores: other processes compete for the CPUs, so the timings are unreliable (rerun on an "
                "idle machine)")

    def lines(self) -> list[str]:
        """Markdown list items: load, steal and the warning."""
        if self.loads:
            load = (f"- load average (1 min): {self.loads[0]:.2f} at the start, {self.loads[-1]:.2f} at the end, "
                    f"{max(self.loads):.2f} at most ({len(self.loads)} samples; {self.cpus} usable CPUs)")
        else:
            load = "- load average: unknown on this platform"
        steal = self.steal
        lines = [load, "- CPU steal: unknown (no /proc/stat or no time elapsed)" if steal is None else
                 f"- CPU steal: {100 * steal:.1f}% of the CPU time between the first and last sample"]
        warning = self.warning()
        return lines + ([f"- **warning**: {warning}"] if warning else [])
