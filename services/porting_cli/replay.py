"""`porting replay SERVICE TOPIC`: re-deliver a topic, or a range of it, into one service only.

Like `kafka-consumer-groups --reset-offsets`, but safe: the service's consumer group is not
touched, and its inbox makes every event it already applied a duplicate, so nothing already
applied changes and nothing is sent twice. Events it lost (a database restored from a backup)
are applied again; their follow-ups go to its outbox, which the running service's relay
publishes (the replay itself never produces). The service may be running meanwhile.
See replay_engine.py for how the range is read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import structlog
import typer
from porting_runtime.operator_cli import (
    database_env,
    database_url_for,
    kafka_settings,
    operator_console,
    redact,
    refuse,
    run_with_broker,
)
from porting_runtime.sealing import SealingKeyMissing
from pydantic import ValidationError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .replay_engine import (
    DatabaseUnavailable,
    PartitionReplay,
    ReplayRefused,
    ReplayReport,
    Selection,
    replay_topic,
)
from .replay_service import UnknownService, service_definition
from .stack import SERVICES

console = operator_console()
_COUNTS = ("read", "replayed", "applied", "already_seen", "dead_lettered")  # the table's columns after the offsets
_progress_console = operator_console(stderr=True)


def _moment(option: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        refuse(f"{option}: {text!r} is not an ISO 8601 time (e.g. 2027-02-01T09:30:00Z)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def replay(
    service: str = typer.Argument(..., help="The one service to feed: portability, workflow, notifier."),
    topic: str = typer.Argument(..., help="A topic the service consumes, e.g. porting.port-requested.v1."),
    from_offset: int | None = typer.Option(
        None, "--from-offset", min=0, max=2**63 - 1, help="Start at this offset in every partition read (default: the beginning)."),
    from_time: str | None = typer.Option(
        None, "--from-time", help="Only records stamped at or after this ISO 8601 time (UTC unless it says)."),
    to_time: str | None = typer.Option(
        None, "--to-time", help="Only records stamped before this ISO 8601 time (UTC unless it says)."),
    partition: int | None = typer.Option(None, "--partition", min=0, help="Only this partition."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON (no progress bars)."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="The service's database (default: <SERVICE>_DATABASE_URL, else the stack's)."),
) -> None:
    """Re-deliver TOPIC (or a range of it) into SERVICE only, changing nothing already applied.

    Events the service applied before count as already seen; events it lost are applied, their follow-ups queued.
    The service's consumer group is not touched; the service may keep running.
    """
    if from_offset is not None and from_time is not None:
        refuse("--from-offset and --from-time both say where to start: give one")
    selection = Selection(from_offset=from_offset, from_time=_moment("--from-time", from_time),
                          to_time=_moment("--to-time", to_time), partition=partition)
    if selection.from_time and selection.to_time and selection.from_time >= selection.to_time:
        refuse(f"--from-time {selection.from_time.isoformat()} is not before --to-time {selection.to_time.isoformat()}")
    try:
        definition = service_definition(service)
    except UnknownService as error:
        refuse(f"{error}; the services are: {', '.join(s.name for s in SERVICES if s.exists)}")
    url = database_url_for(service, database_url)
    try:
        settings = kafka_settings(definition.settings, database_url=url)
    except ValidationError as error:
        refuse(f"{service}'s settings from the environment are not valid: {_first_error(error)}")
    report = ReplayReport(service=service, topic=topic, selection=selection)
    progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=_progress_console, disable=as_json)
    tasks: dict[int, TaskID] = {}

    def started(started_report: ReplayReport) -> None:
        progress.start()  # once there is something to show: a refusal before it prints only itself
        for part in started_report.partitions:
            tasks[part.partition] = progress.add_task(f"{started_report.topic}[{part.partition}]",
                                                      total=part.total, completed=part.done)

    def progressed(part: PartitionReplay) -> None:
        progress.update(tasks[part.partition], total=part.total, completed=part.done)

    async def work(_: Any) -> ReplayReport:
        return await replay_topic(definition, settings, topic, selection, report,
                                  on_start=started, on_progress=progressed)

    try:
        with _logs_on_stderr():
            try:
                run_with_broker(work, settings=settings)
            finally:
                if tasks:
                    progress.stop()
    except KeyboardInterrupt:
        _print(report, as_json, note="interrupted: what was committed before it stays; the rest was not replayed")
        raise typer.Exit(130) from None
    except ReplayRefused as refusal:
        if report.partitions:
            _print(report, as_json, note="stopped")
        refuse(str(refusal))
    except DatabaseUnavailable as error:
        refuse(f"cannot use {service}'s database at {redact(url)}: {error}; is the stack running (`make run`)? "
               f"{database_env(service)} or --database-url names another")
    except SealingKeyMissing as error:
        refuse(f"{error}; the replay seals dead letters as {service} does, with its keys")
    _print(report, as_json)


def _print(report: ReplayReport, as_json: bool, note: str | None = None) -> None:
    if as_json:
        document = report.as_json() | ({"note": note} if note else {})
        typer.echo(json.dumps(document))
        return
    selection = report.selection
    bounds = [f"from offset {selection.from_offset}" if selection.from_offset is not None else "",
              f"from {selection.from_time.isoformat()}" if selection.from_time else "",
              f"before {selection.to_time.isoformat()}" if selection.to_time else ""]
    title = f"replay of {report.topic} into {report.service}" + "".join(f", {b}" for b in bounds if b)
    table = Table(title=title, caption=note)
    for column in ("partition", "offsets", "read", "in range", "applied", "already seen", "dead-lettered"):
        table.add_column(column, justify="left" if column == "offsets" else "right")
    for part in report.partitions:
        counts = part.counts()
        table.add_row(str(part.partition), _offsets(part), *(str(counts[k]) for k in _COUNTS))
    totals = report.totals()
    table.add_row("all", "", *(str(totals[k]) for k in _COUNTS), style="bold", end_section=True)
    console.print(table)


def _offsets(part: PartitionReplay) -> str:
    """The range read, first and last offsets included."""
    if part.end_offset is None:
        return f"{part.start_offset}-?"
    return f"{part.start_offset}-{part.end_offset - 1}" if part.total else "none"


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(map(str, first['loc'])).upper() or 'a setting'}: {first['msg']}"


@contextlib.contextmanager
def _logs_on_stderr() -> Iterator[None]:
    """The pipeline's warnings (a dead letter, a retry) go to stderr, never into the counts on
    stdout. Whatever was configured before is put back afterwards."""
    saved = structlog.get_config()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),  # whatever stderr is at the time
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**saved)

