"""`porting timers` and `porting outbox`: what a service's durable timers and outbox hold."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import typer
from rich.table import Table

from porting_runtime.operator_cli import database_url_for, operator_console, run_with_database
from porting_runtime.timers import pending_timers

console = operator_console()
DatabaseOption = typer.Option(None, "--database-url", help="The service's database (default: the running stack's).")
timers_app = typer.Typer(help="A service's durable timers: what is due, what failed.", no_args_is_help=True)
outbox_app = typer.Typer(help="A service's outbox: rows the broker refused and that were set aside.", no_args_is_help=True)


@timers_app.command("list")
def timers_list(
    service: str,
    kind: str | None = typer.Option(None, help="Only timers of this kind."),
    key: str | None = typer.Option(None, help="Only timers of this key (e.g. a request sid)."),
    limit: int = typer.Option(200),
    database_url: str | None = DatabaseOption,
) -> None:
    """Pending timers, soonest first (those already due marked), then the ones that failed for good."""
    rows = run_with_database(database_url_for(service, database_url),
                             lambda c: pending_timers(c, kind=kind, key=key, limit=limit))
    now = datetime.now(UTC)
    table = Table(title=f"timers of {service}")
    for column in ("id", "kind", "key", "due at", "state"):
        table.add_column(column)
    for row in rows:
        state = (f"failed: {row['error']}" if row["failed_at"] else
                 "due" if row["due_at"] <= now else f"in {_age(row['due_at'] - now)}")
        table.add_row(str(row["id"]), row["kind"], row["key"], row["due_at"].isoformat(timespec="seconds"), state)
    console.print(table)


@outbox_app.command("list")
def outbox_list(service: str, limit: int = typer.Option(100), database_url: str | None = DatabaseOption) -> None:
    """Rows set aside because the broker can never accept them (too large, a topic it refuses)."""
    rows = run_with_database(database_url_for(service, database_url), lambda c: _set_aside(c, limit))
    table = Table(title=f"outbox rows of {service} set aside")
    for column in ("id", "topic", "bytes", "created", "set aside", "error"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["id"]), row["topic"], str(row["size"]), row["created_at"].isoformat(timespec="seconds"),
                      row["set_aside_at"].isoformat(timespec="seconds"), row["error"] or "")
    console.print(table)


@outbox_app.command("discard")
def outbox_discard(service: str, ids: list[int], database_url: str | None = DatabaseOption) -> None:
    """Drop set-aside rows once their cause is dealt with (the service's health then clears)."""
    async def discard(connection: asyncpg.Connection) -> list[int]:
        rows = await connection.fetch(
            "DELETE FROM outbox WHERE set_aside_at IS NOT NULL AND id = ANY($1::bigint[]) RETURNING id", ids)
        return sorted(r["id"] for r in rows)

    done = run_with_database(database_url_for(service, database_url), discard)
    console.print(f"discarded: {', '.join(map(str, done)) or 'nothing'}")


async def _set_aside(connection: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await connection.fetch(
        """SELECT id, topic, octet_length(value) AS size, created_at, set_aside_at, error FROM outbox
           WHERE set_aside_at IS NOT NULL ORDER BY id LIMIT $1""", limit)


def _age(delta: object) -> str:
    seconds = int(delta.total_seconds())  # type: ignore[attr-defined]
    days, rest = divmod(seconds, 86400)
    return f"{days}d {rest // 3600}h" if days else f"{rest // 3600}h {rest % 3600 // 60}m"
