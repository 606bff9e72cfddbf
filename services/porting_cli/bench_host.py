"""The machine the benchmark runs on: cores, load, and CPU time per component (from /proc on Linux)."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

PROC = Path("/proc")


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> dict[str, object]:
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }


def load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (what `uptime` shows)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gb() -> float | None:
    try:
        for line in (PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _stat(pid: int) -> tuple[int, list[str]] | None:
    """(parent pid, the fields after the command name) of a process, or None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), fields


def _children(parent: int) -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[0] == parent:
            found.append(int(entry.name))
    return found


def cpu_seconds(pid: int, *, with_children: bool = False) -> float | None:
    """CPU time (user + system) a process used so far. With children: also its live child
    processes' (PostgreSQL's backends) and the exited children it reaped."""
    stat = _stat(pid)
    if stat is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    fields = stat[1]
    # utime, stime, cutime, cstime are fields 14-17 of /proc/PID/stat; here indexes 11-14.
    total = int(fields[11]) + int(fields[12])
    if with_children:
        total += int(fields[13]) + int(fields[14])
        for child in _children(pid):
            if child_stat := _stat(child):
                total += int(child_stat[1][11]) + int(child_stat[1][12])
    return total / ticks


class CpuMeter:
    """CPU seconds each component used between start() and stop(), and as cores over the wall time."""

    def __init__(self, processes: Mapping[str, tuple[int, bool]]) -> None:
        self.processes = dict(processes)  # component -> (pid, count its children)
        self._start: dict[str, float | None] = {}

    def sample(self) -> dict[str, float | None]:
        return {name: cpu_seconds(pid, with_children=children) for name, (pid, children) in self.processes.items()}

    def start(self) -> None:
        self._start = self.sample()

    def stop(self, wall_seconds: float) -> dict[str, dict[str, float] | None]:
        end = self.sample()
        used: dict[str, dict[str, float] | None] = {}
        for name, before in self._start.items():
            after = end.get(name)
            if before is None or after is None:
                used[name] = None
                continue
            seconds = max(0.0, after - before)
            used[name] = {"cpu_seconds": round(seconds, 2),
                          "cores": round(seconds / wall_seconds, 2) if wall_seconds > 0 else 0.0}
        return used


@contextlib.contextmanager
def collector_held(*, hold: bool = True) -> Iterator[None]:
    """The benchmark's own garbage collector held off while a phase is measured.

    The driver is the instrument: it keeps every workload record, publish time and arrival, and a
    full collection over them paused its event loop 80-210 ms (measured with gc.callbacks), so
    follow-ups that arrived meanwhile were stamped late and counted as the services' latency.
    A phase allocates a few tens of megabytes at most; the collector runs again as before after
    it. Not held (`hold=False`) when the systems under test share the driver's process
    (--in-process): theirs would be held too, and their latency flattered."""
    was_enabled = gc.isenabled()
    if hold:
        gc.collect()
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
