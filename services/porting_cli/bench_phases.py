"""The benchmark's work for one scenario (Bench): its phases in turn, raw, pipeline, latency and
naive, each on topics, consumer groups and databases of its own, measured into one report."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from porting_runtime.kafka import ensure_topics
from porting_runtime.settings import ServiceSettings

from . import bench_host, bench_load
from .bench_load import Collector, now
from .bench_mail import MailCollector
from .bench_processes import cpu_meter, profiling
from .bench_report import (
    REPORTED_SETTINGS,
    bench_settings,
    code_version,
    ratios,
    routes_measured,
    stack_description,
    targets,
    what,
)
from .bench_scenarios import Scenario, Workload, all_topics, by_key
from .bench_setup import Options, Stack, err
from .bench_stats import latency_summary, paced_events, rate
from .bench_systems import NAIVE, PIPELINE, ChildGroup, System, start_system
from .bench_wiring import (
    collecting,
    completion_timeout,
    database_name,
    keyed_by_record,
    producing,
    service_settings,
    topic_prefix,
)
from .embedded import free_port


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
            "stack": stack_description(self.options, self.stack),
            "code": code_version(),
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
                err.print(f"naive worker: {error}", style="red")
                report["naive"] = {"what": what(NAIVE), "error": str(error)}
        if self.results.get("warnings"):
            report["warnings"] = self.results["warnings"]
        report["ratios"] = ratios(report)
        report["targets"] = targets(report, self.scenario)
        report["settings"] = self.results.get("settings", {})
        report["settings"]["bench"] = bench_settings(options, self.scenario, events, naive_events)
        report["machine"]["load_at_end"] = bench_host.load()
        report["duration_seconds"] = round(now() - started, 1)
        return report

    # --- phases ------------------------------------------------------------------------------------

    async def _raw(self, *, count: int | None = None, per_second: float | None = None) -> dict[str, Any]:
        """The broker alone on topics of its own: `count` records as fast as they go, or paced."""
        if (count is None) == (per_second is None):
            raise TypeError("a phase is either a count of records or a pace")
        prefix = topic_prefix("raw" if per_second is None else "rawpaced")
        settings = ServiceSettings(kafka_bootstrap_servers=self.stack.bootstrap, topic_prefix=prefix)
        topics = self.scenario.input_topics(prefix)
        await ensure_topics(settings, topics, self.options.partitions)
        if count is not None:
            workload = keyed_by_record(self.scenario.workload(count, prefix))
            err.print(f"raw pass-through: {count} records through {', '.join(topics)}")
            meter = cpu_meter(self.stack, None)
            async with collecting(settings, topics, by_key) as collector, producing(settings) as producer:
                result = await self._throughput(collector, producer, workload, meter)
            err.print(f"  {result['events_per_second']} records/s (load {result['load_before']})")
            return {"what": "aiokafka producer -> broker -> aiokafka consumer, no service, no database", **result}
        assert per_second is not None
        workload = keyed_by_record(self.scenario.workload(
            paced_events(per_second, self.options.latency_seconds, minimum=100), prefix))
        err.print(f"raw pass-through paced at {per_second:.0f}/s")
        async with collecting(settings, topics, by_key) as collector, producing(settings) as producer:
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
        prefix = topic_prefix(phase)
        definitions = self.scenario.definitions()
        names = {d.name: database_name(self.scenario.name, phase, d.name) for d in definitions}
        databases = {service: await self._database(name) for service, name in names.items()}
        mail = MailCollector() if self.scenario.completion == "mail" else None
        if mail is not None:
            await mail.start()
        try:
            extra = {name: dict(values) for name, values in self.scenario.service_settings().items()}
            if mail is not None:
                extra.setdefault("notifier", {}).update(smtp_host="127.0.0.1", smtp_port=mail.port)
            settings = {d.name: service_settings(d, kafka_bootstrap_servers=self.stack.bootstrap,
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
                    "routes": routes_measured(definitions, settings),
                }
            driver = ServiceSettings(kafka_bootstrap_servers=self.stack.bootstrap, topic_prefix=prefix)
            # Created here first, so the services find them with this many partitions.
            await ensure_topics(driver, all_topics(self.scenario, prefix, definitions), self.options.partitions)
            async with self._watching(driver, prefix, mail) as collector, \
                    self._running(kind, settings) as system, producing(driver) as producer:
                await self.scenario.setup(databases)
                await self._warm_up(phase, collector, producer, prefix)
                if count is not None:
                    workload = self.scenario.workload(count, prefix)
                    err.print(f"{phase}: {count} events")
                    with profiling(self.options.profile, self.scenario.name, f"{kind}-throughput", system):
                        meter = cpu_meter(self.stack, system)
                        result = {"what": what(kind), **await self._throughput(collector, producer, workload, meter)}
                    err.print(f"  {result['events_per_second']} events/s end to end (load {result['load_before']})")
                else:
                    assert per_second is not None
                    paced = paced_events(per_second, self.options.latency_seconds, minimum=100)
                    workload = self.scenario.workload(paced, prefix)
                    err.print(f"{phase}: {paced} events paced at {per_second:.0f}/s")
                    with profiling(self.options.profile, self.scenario.name, f"{kind}-latency", system):
                        result = await self._paced(collector, producer, workload, per_second)
                    err.print(f"  p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')} ms "
                              f"(load {result['load_before']})")
            return result
        finally:
            if mail is not None:  # also when setting up failed before the phases began
                await mail.stop()
            # Its services have stopped. Left in place, a phase's databases were vacuumed and
            # analysed by autovacuum during the phases after it: PostgreSQL's CPU a request in
            # the workflow and pipeline scenarios was ~40% higher in a full run than alone.
            try:
                await self._drop_databases(names.values())
            except Exception as error:  # the phase's own result or failure stands; the next run drops them
                err.print(f"{phase}: its databases were not dropped: {error}", style="yellow")

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
            err.print(warning, style="red")
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
            complete = await collector.finished(timeout=completion_timeout(len(workload)))
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
            complete = await collector.finished(timeout=completion_timeout(len(workload)))
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

    async def _drop_databases(self, names: Iterable[str]) -> None:
        admin = await asyncpg.connect(self.stack.postgres.dsn())
        try:
            for name in names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

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
        instances = self.options.instances_for(self.scenario) if kind == PIPELINE else 1
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
            async with collecting(driver, self.scenario.completion_topics(prefix),
                                  self.scenario.completes) as collector:
                yield collector
            return
        yield mail  # started and stopped by _system, around everything that uses its port
