"""The `porting` command-line tool for operators and people running the stack locally."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer
from rich.table import Table

from porting_runtime import operator_cli
from porting_runtime.stack_record import DEFAULT_DATA_DIR
from schemas import export

from . import bench, runtime_tables
from .dead_letters import app as dead_letters_app
from .publishing import PublishError, envelope, publish_record
from .replay import replay
from .stack import SERVICES, LocalStack


def _register_service_commands(app: typer.Typer) -> None:
    """Each service that exists brings its own operator commands."""
    import importlib
    import importlib.util

    for service in (s.name for s in SERVICES if s.exists):
        if importlib.util.find_spec(f"{service}.entrypoints.cli"):
            importlib.import_module(f"{service}.entrypoints.cli").register(app)


app = typer.Typer(help="Operate the number-porting platform.", no_args_is_help=True)


@app.callback()
def main(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", envvar=operator_cli.DATA_DIR_ENV,
        help="The local stack's data directory, whose stack.json every command reads "
             "(default: the nearest .porting from here up). KAFKA_BOOTSTRAP_SERVERS and "
             "<SERVICE>_DATABASE_URL name other servers instead.",
    ),
) -> None:
    """Operate the number-porting platform."""
    operator_cli.use_data_dir(data_dir)


schemas_app = typer.Typer(help="The event contract.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(runtime_tables.timers_app, name="timers")
app.add_typer(runtime_tables.outbox_app, name="outbox")
_register_service_commands(app)
app.command("bench")(bench.bench)
app.command("replay")(replay)
console = operator_cli.operator_console()


@app.command()
def up(
    data_dir: Path | None = typer.Option(
        None, help="Where PostgreSQL data, logs and the stack record persist (default: .porting, "
                   "or `porting --data-dir` / PORTING_DATA_DIR)."),
    kafka_port: int = typer.Option(9092),
    postgres_port: int = typer.Option(5433),
    http_port: int = typer.Option(8080, help="The first service's HTTP port; the next ones follow."),
    smtp_port: int = typer.Option(1025, help="The local mail catcher the notifier sends through."),
) -> None:
    """Start the embedded broker, PostgreSQL and every service; Ctrl-C stops them all."""
    root = data_dir or operator_cli.chosen_data_dir() or DEFAULT_DATA_DIR
    stack = LocalStack(root.resolve(), kafka_port=kafka_port, postgres_port=postgres_port, http_port=http_port,
                       smtp_port=smtp_port)
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    started = time.monotonic()
    try:
        with console.status("starting the local stack…"):
            try:
                stack.start()
            except (RuntimeError, TimeoutError, OSError) as error:
                operator_cli.refuse(f"the stack did not start: {error}")
        table = Table(title=f"porting stack up in {time.monotonic() - started:.1f}s")
        table.add_column("what")
        table.add_column("where")
        for what, where in stack.endpoints():
            table.add_row(what, where)
        console.print(table)
        console.print("The embedded broker keeps messages in memory: they are gone after Ctrl-C. Press Ctrl-C to stop.")
        while not stopping:
            looked = stack.supervise()
            for name, code in looked.restarted:
                console.print(f"{name} exited ({code}); started it again; see {stack.logs}", style="yellow")
            if looked.fatal:
                console.print(f"stopped unexpectedly: {', '.join(looked.fatal)}; see {stack.logs}", style="red")
                raise typer.Exit(1)
            time.sleep(0.2)
    finally:
        with console.status("stopping…"):
            stack.stop()
        console.print("stopped; nothing left running.")


@app.command()
def publish(
    topic: str = typer.Argument(..., help="e.g. porting.port-requested.v1"),
    payload: Path = typer.Argument(..., exists=True, dir_okay=False, help="The event's data as JSON."),
    event_id: str | None = typer.Option(None, "--id", help="ce_id; a new one when absent (reuse one to test dedupe)."),
    validate: bool = typer.Option(True, help="--no-validate publishes the payload as it is (to try dead letters)."),
) -> None:
    """Wrap a JSON payload in the CloudEvents envelope and publish it."""
    settings = operator_cli.kafka_settings()
    try:
        record = envelope(topic, payload, event_id=event_id, validate=validate, topic_prefix=settings.topic_prefix)
    except PublishError as error:
        console.print(str(error), style="red")
        raise typer.Exit(2) from None
    partition, offset = operator_cli.run_with_broker(lambda s: publish_record(s, record), settings=settings)
    ce_id = dict(record.headers)["ce_id"].decode()
    console.print(f"published {ce_id} to {record.topic} partition {partition} offset {offset}")


@schemas_app.command("export")
def schemas_export() -> None:
    """Regenerate the committed JSON Schema files and the AsyncAPI document."""
    for path in export.write_all():
        console.print(f"wrote {path}")


@schemas_app.command("show")
def schemas_show(topic: str) -> None:
    """Print one event's JSON Schema."""
    files = {p.stem: text for p, text in export.json_schemas().items()}
    if topic not in files:
        console.print(f"unknown topic {topic!r}", style="red")
        raise typer.Exit(2)
    console.print_json(files[topic])
