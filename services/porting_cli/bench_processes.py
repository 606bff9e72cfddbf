"""The processes a phase of the benchmark watches: CPU time per component (bench_host.CpuMeter)
and py-spy profiles of the systems under test (--profile DIR)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import bench_host
from .bench_setup import Stack, err
from .bench_systems import ChildGroup


def cpu_meter(stack: Stack, system: Any) -> bench_host.CpuMeter:
    processes: dict[str, tuple[int, bool]] = {"broker": (stack.kafka.process.pid, False),  # type: ignore[union-attr]
                                              "postgres": (stack.postgres.process.pid, True)}  # type: ignore[union-attr]
    if isinstance(system, ChildGroup):
        for name, pid in system.pids.items():
            processes[f"service_{name}"] = (pid, False)
        processes["bench_driver"] = (own_pid(), False)
    elif system is not None:
        processes["service_and_bench_driver"] = (own_pid(), False)
    else:
        processes["bench_driver"] = (own_pid(), False)
    return bench_host.CpuMeter(processes)


@contextlib.contextmanager
def profiling(directory: Path | None, scenario: str, name: str, system: Any) -> Any:
    """py-spy on the system under test while a phase runs (--profile DIR)."""
    if directory is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    pids = system.pids if isinstance(system, ChildGroup) else {"all": own_pid()}
    directory.mkdir(parents=True, exist_ok=True)
    recorders = {}
    for service, pid in pids.items():
        output = directory / f"{scenario}-{name}-{service}.txt"
        recorders[output] = subprocess.Popen(
            [py_spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking",
             "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the phase starts
    try:
        yield
    finally:
        for output, recorder in recorders.items():
            recorder.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                recorder.wait(30)
            err.print(f"  profile (py-spy, collapsed stacks): {output}")


def own_pid() -> int:
    return os.getpid()
