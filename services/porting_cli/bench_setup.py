"""What a `porting bench` run is given: its options, the embedded stack it runs on (its own broker
and PostgreSQL, on free ports, in a temporary directory), and where its progress goes (stderr)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from porting_runtime.kafka import DEFAULT_PARTITIONS
from porting_runtime.operator_cli import operator_console

from . import bench_host
from .bench_scenarios import ALL, Scenario
from .embedded import EmbeddedKafka, EmbeddedPostgres, free_port

PHASES = ("raw", "pipeline", "latency", "naive")

err = operator_console(stderr=True, soft_wrap=True)


@dataclass
class Options:
    scenario: str = ALL  # a name, several comma-separated, or all of them
    events: int | None = None  # default: the scenario's own (Scenario.default_events)
    naive_events: int | None = None  # default: a tenth of `events` (the naive worker is slow)
    warmup_events: int = 500
    latency_seconds: float = 10.0
    latency_rate: float | None = None  # default: half the measured peak
    phases: Sequence[str] = PHASES
    durable: bool = False
    in_process: bool = False
    log_level: str = "WARNING"
    profile: Path | None = None
    partitions: int = DEFAULT_PARTITIONS  # of every topic the benchmark creates (the runtime's default)
    instances: int | None = None  # of each service, sharing its partitions; None: default_instances

    def event_count(self, scenario: Scenario) -> int:
        return self.events if self.events is not None else scenario.default_events

    def naive_count(self, scenario: Scenario) -> int:
        return self.naive_events if self.naive_events is not None else max(1, self.event_count(scenario) // 10)

    def instances_for(self, scenario: Scenario) -> int:
        return self.instances if self.instances is not None else default_instances(len(scenario.services),
                                                                                   self.partitions)


def default_instances(service_count: int, partitions: int = DEFAULT_PARTITIONS) -> int:
    """How a deployment on this machine would run each service. One event loop uses one core, so
    a service scales out to one instance per usable core (never more than its partitions) while
    the services do not outnumber the cores. When they do, one process each already covers every
    core, and a second instance of each only adds processes that contend for the same cores, each
    with its own polls, relay turns and timer loop: the pipeline (three services, two cores)
    measured 1,071-1,693 requests/s to the first e-mail and 869-1,014/s to the second with one
    instance each, against 936-1,217/s and 734-965/s with two (six interleaved pairs), at
    1,152-1,792 µs of CPU a request against 1,622-2,094. The workflow scenario (two services)
    keeps two: 1,865-1,955/s against 1,491-1,515/s with one, its workflow service being the one
    core-bound process. Measured on two cores only: on more, whether a scenario's processes should
    stay near the core count is a question for a run there (`--instances` sets it meanwhile)."""
    if service_count > bench_host.usable_cores():
        return 1
    return max(1, min(bench_host.usable_cores(), partitions))


@dataclass
class Stack:
    kafka: EmbeddedKafka
    postgres: EmbeddedPostgres
    root: Path

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers


MEMORY_DIRECTORY = Path("/dev/shm")
MEMORY_NEEDED_BYTES = 8 * 1024**3


def data_directory(durable: bool) -> Path | None:
    """Where the stack's files go: for a PostgreSQL that is not durable anyway, memory (tmpfs) when
    there is room, so the disk's writeback cannot weigh on a measurement. Three full runs on disk
    measured the pipeline at 48-64 requests/s with PostgreSQL at 22-26 ms of CPU a request, against
    ~1.1 in the others, around the disk flushing; a full run's files reach ~2 GB, hence the room
    asked for. None: the system's temporary directory."""
    if durable or not MEMORY_DIRECTORY.is_dir() or not os.access(MEMORY_DIRECTORY, os.W_OK):
        return None
    return MEMORY_DIRECTORY if shutil.disk_usage(MEMORY_DIRECTORY).free >= MEMORY_NEEDED_BYTES else None


@contextlib.contextmanager
def embedded_stack(durable: bool) -> Any:
    root = Path(tempfile.mkdtemp(prefix="porting-bench-", dir=data_directory(durable)))
    postgres = EmbeddedPostgres(root / "pgdata", port=free_port(), durable=durable)
    kafka = EmbeddedKafka(port=free_port(), log_file=root / "kafka.log")
    try:
        postgres.start()
        kafka.start()
        yield Stack(kafka, postgres, root)
    finally:
        kafka.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
