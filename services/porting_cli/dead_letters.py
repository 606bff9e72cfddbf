"""`porting dead-letters`: list, inspect and redrive what a service could not handle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from porting_runtime.dead_letters import get_dead_letter, list_dead_letters, redrive
from porting_runtime.operator_cli import run_with_database

app = typer.Typer(help="Messages a service could not handle: list, inspect, redrive.", no_args_is_help=True)
console = Console()
DatabaseOption = typer.Option(None, "--database-url", help="The service's database (default: the local stack's).")


def _database_url(service: str, url: str | None) -> str:
    return url or f"postgresql://{service}:{service}@127.0.0.1:5433/{service}"


def _with_connection(url: str, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    return run_with_database(url, work, console=console)


@app.command("list")
def list_command(
    service: str,
    all_: bool = typer.Option(False, "--all", help="Include those already redriven."),
    limit: int = typer.Option(100),
    database_url: str | None = DatabaseOption,
) -> None:
    """The service's dead letters, oldest first."""
    rows = _with_connection(_database_url(service, database_url),
                            lambda c: list_dead_letters(c, include_redriven=all_, limit=limit))
    table = Table(title=f"dead letters of {service}")
    for column in ("id", "from", "event id", "error", "when", "redriven"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["id"]), f"{r['source_topic']}[{r['source_partition']}]@{r['source_offset']}",
                      r["event_id"] or "-", r["error"], r["dead_lettered_at"].isoformat(timespec="seconds"),
                      r["redriven_at"].isoformat(timespec="seconds") if r["redriven_at"] else "")
    console.print(table)


@app.command("show")
def show_command(service: str, dead_letter_id: int, database_url: str | None = DatabaseOption) -> None:
    """One dead letter: where it came from, why, its headers and its original bytes."""
    row = _with_connection(_database_url(service, database_url), lambda c: get_dead_letter(c, dead_letter_id))
    if row is None:
        console.print(f"[red]no dead letter {dead_letter_id} in {service}[/red]")
        raise typer.Exit(2)
    console.print(f"[bold]{row['source_topic']}[/bold] partition {row['source_partition']} offset {row['source_offset']}")
    console.print(f"error: {row['error']}")
    for name, value in zip(row["header_names"], row["header_values"], strict=True):
        console.print(f"  {name}: {value.decode('utf-8', 'replace')}", markup=False, soft_wrap=True)
    console.print((row["value"] or b"").decode("utf-8", "replace"), markup=False, highlight=False, soft_wrap=True)


@app.command("redrive")
def redrive_command(
    service: str,
    dead_letter_ids: list[int] = typer.Argument(None, help="Which ones; all not yet redriven when absent."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Send dead letters back to their source topic as they were (after a fix is deployed)."""
    ids = _with_connection(_database_url(service, database_url), lambda c: redrive(c, dead_letter_ids or None))
    console.print(f"redriven: {', '.join(map(str, ids)) or 'nothing'}")
