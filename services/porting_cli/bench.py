"""`porting bench` (`make bench`): the whole pipeline on the embedded stack, measured, as one JSON object.

Each scenario on a broker and PostgreSQL of its own (free ports, a temporary directory):

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
import json
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from porting_runtime import event_loop
from porting_runtime.kafka import DEFAULT_PARTITIONS
from rich.text import Text

from .bench_load import now
from .bench_phases import Bench
from .bench_report import NOT_DURABLE_SETTINGS, combined
from .bench_scenarios import ALL, SCENARIOS, Scenario, scenarios_named
from .bench_setup import (
    PHASES,
    Options,
    embedded_stack,
    err,
)

__all__ = ["Bench", "Options", "bench", "embedded_stack", "run"]


def run(options: Options) -> dict[str, Any]:
    scenarios = scenarios_named(options.scenario)
    unknown = set(options.phases) - set(PHASES)
    if unknown:
        raise ValueError(f"unknown phase(s) {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}")
    if "latency" in options.phases and "pipeline" not in options.phases and options.latency_rate is None:
        raise ValueError("the latency phase is paced at half the pipeline phase's peak: run the pipeline phase "
                         "too, or give --latency-rate")
    durability = "durable" if options.durable else f"not durable: {NOT_DURABLE_SETTINGS}"
    err.print(f"{', '.join(s.name for s in scenarios)}: each on an embedded broker and PostgreSQL of its own "
              f"({durability})")
    return event_loop.run(_until_stopped(options, scenarios))


async def _until_stopped(options: Options, scenarios: Sequence[Scenario]) -> dict[str, Any]:
    """Each scenario in turn, on a stack started for it: a scenario measures the same alone or
    after others. On one stack for all, the pipeline ran on a broker holding the earlier
    scenarios' ~200,000 messages (Tansu keeps them in memory): 164-174 µs of broker CPU a request
    against 102-146 alone. SIGTERM stops the run as Ctrl-C does: the phase in flight unwinds,
    then its stack stops."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    started = now()
    try:
        reports = []
        for scenario in scenarios:
            err.print(Text.assemble((f"scenario {scenario.name}", "bold"), f": {scenario.description}"))
            with embedded_stack(options.durable) as stack:
                reports.append(await Bench(options, stack, scenario).run())
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
                                              "group (default: one per usable core, at most --partitions, while the "
                                              "scenario's services do not outnumber the cores; else one)."),
    durable: bool = typer.Option(False, "--durable/--not-durable",
                                 help=f"PostgreSQL crash-safe (default: not, {NOT_DURABLE_SETTINGS}, for speed)."),
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
                      instances=instances)
    try:
        report = run(options)
    except (KeyError, ValueError) as error:
        err.print(str(error), style="red")
        raise typer.Exit(2) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print("stopped before the end; the embedded broker and PostgreSQL are stopped too")
        raise typer.Exit(130) from None
    print(json.dumps(report, indent=2))
