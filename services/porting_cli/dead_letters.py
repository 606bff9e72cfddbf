"""`porting dead-letters`: list, inspect and redrive what a service could not handle.

Dead letters are sealed at rest; `show` and `redrive` open them with DATA_ENCRYPTION_KEYS, or
else the key file of the running local stack.
`show` redacts PINs and account numbers unless `--reveal` is given, and never prints raw
control characters (a hostile record could drive the operator's terminal).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import typer
from rich.table import Table
from rich.text import Text

from porting_runtime.dead_letters import DeadLetter, get_dead_letter, list_dead_letters, redrive
from porting_runtime.message_size import DEFAULT_MAX_MESSAGE_BYTES
from porting_runtime.operator_cli import (
    data_encryption_keys,
    database_url_for,
    operator_console,
    refuse,
    run_with_database,
)
from porting_runtime.record_text import safe_bytes_text, safe_text
from porting_runtime.sealing import SealedDataUnreadable, Sealer, SealingKeyMissing
from porting_runtime.secret_fields import is_secret_header, redact_secret_fields

from schemas.secrets_in_text import REDACTED

app = typer.Typer(help="Messages a service could not handle: list, inspect, redrive.", no_args_is_help=True)
console = operator_console()
BIGINT_MAX = 2**63 - 1  # a dead letter's id is a PostgreSQL bigint
DatabaseOption = typer.Option(None, "--database-url",
                              help="The service's database (default: <SERVICE>_DATABASE_URL, else the local stack's).")

SHOWN_CHARS = 1_000_000


def _with_connection(service: str, url: str | None, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    try:
        return run_with_database(database_url_for(service, url), work)
    except SealedDataUnreadable as error:
        refuse(f"{error}: the service's own DATA_ENCRYPTION_KEYS open its dead letters")


def _sealer() -> Sealer:
    try:
        # A redrive seals what it puts back in the outbox as the services do: SEALING_FORMAT, its
        # name in any case as pydantic's settings read it.
        chosen = [value for name, value in os.environ.items() if name.upper() == "SEALING_FORMAT"]
        return Sealer.from_text(data_encryption_keys(), chosen[0] if chosen else "aes-gcm-siv")
    except SealingKeyMissing as error:
        refuse(f"{error}; the service's own keys open its dead letters")
    except ValueError as error:
        refuse(str(error))


def redacted_body(value: bytes | None) -> str:
    """The body as an operator may see it without --reveal: JSON with secrets redacted, or
    only its size when it is not JSON (secrets in it could not be found to redact)."""
    if value is None:
        return "(no value)"
    try:
        document = json.loads(value)
        return json.dumps(redact_secret_fields(document), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return f"(body not shown: {len(value)} bytes, not JSON that can be redacted; --reveal shows it)"


@app.command("list")
def list_command(
    service: str,
    all_: bool = typer.Option(False, "--all", help="Include those already redriven."),
    limit: int = typer.Option(100, min=1, max=BIGINT_MAX),
    database_url: str | None = DatabaseOption,
) -> None:
    """The service's dead letters, oldest first."""
    rows = _with_connection(service, database_url, lambda c: list_dead_letters(c, include_redriven=all_, limit=limit))
    table = Table(title=f"dead letters of {service}")
    for column in ("id", "from", "event id", "error", "bytes", "when", "redriven"):
        table.add_column(column)
    for r in rows:
        size = str(r["original_size"]) if r["original_kept"] and r["original_size"] is not None else "-"
        # Text, not markup: stored text comes from hostile records.
        table.add_row(str(r["id"]), Text(f"{r['source_topic']}[{r['source_partition']}]@{r['source_offset']}"),
                      Text(r["event_id"] or "-"), Text(r["error"]), size,
                      r["dead_lettered_at"].isoformat(timespec="seconds"),
                      r["redriven_at"].isoformat(timespec="seconds") if r["redriven_at"] else "")
    console.print(table)


@app.command("show")
def show_command(
    service: str,
    dead_letter_id: int = typer.Argument(..., min=1, max=BIGINT_MAX),
    reveal: bool = typer.Option(False, "--reveal", help="Print PINs, account numbers and non-JSON bodies."),
    database_url: str | None = DatabaseOption,
) -> None:
    """One dead letter: where it came from, why, its headers and its original bytes."""
    sealer = _sealer()
    letter = _with_connection(service, database_url, lambda c: get_dead_letter(c, dead_letter_id, sealer))
    if letter is None:
        refuse(f"no dead letter {dead_letter_id} in {service}")
    _print(_described(letter, reveal))


def _described(letter: DeadLetter, reveal: bool) -> list[str]:
    lines = [
        f"{letter.source_topic} partition {letter.source_partition} offset {letter.source_offset}",
        f"error: {letter.error}",
        f"event id: {letter.event_id or '-'}",
        f"dead-lettered: {letter.dead_lettered_at.isoformat(timespec='seconds')}"
        + (f", redriven {letter.redriven_at.isoformat(timespec='seconds')}" if letter.redriven_at else ""),
    ]
    if not letter.original_kept:
        return [*lines, "its bytes are not available: the Kafka client could not decode the record"]
    if letter.published_truncated:
        lines.append(f"the copy on the dead-letter topic was cut to fit the broker; all {letter.original_size} "
                     "bytes are here")
    lines.append(f"key: {safe_bytes_text(letter.key, SHOWN_CHARS) if letter.key is not None else '(none)'}")
    lines.append("headers:")
    for name, value in letter.headers:
        shown_name = safe_bytes_text(name, SHOWN_CHARS)
        if value is None:
            shown = "(null)"
        elif is_secret_header(name) and not reveal:
            shown = REDACTED
        else:
            shown = safe_bytes_text(value, SHOWN_CHARS)
        lines.append(f"  {shown_name}: {shown}")
    if reveal:
        body = "(no value)" if letter.value is None else safe_bytes_text(letter.value, SHOWN_CHARS)
    else:
        body = safe_text(redacted_body(letter.value), SHOWN_CHARS)
    return [*lines, body]


def _print(lines: list[str]) -> None:
    for line in lines:
        console.print(line, soft_wrap=True)


@app.command("redrive")
def redrive_command(
    service: str,
    dead_letter_ids: list[int] = typer.Argument(None, min=1, max=BIGINT_MAX,
                                                help="Which ones; all not yet redriven when absent."),
    database_url: str | None = DatabaseOption,
    max_message_bytes: int = typer.Option(
        DEFAULT_MAX_MESSAGE_BYTES, "--max-message-bytes", min=10_000, envvar="MAX_MESSAGE_BYTES",
        help="The largest message the broker takes (the service's MAX_MESSAGE_BYTES): larger ones stay pending."),
) -> None:
    """Send dead letters back to their source topic as they were (after a fix is deployed).
    Exits 1 when a dead letter asked for by id was not redriven (not pending, or too large)."""
    sealer = _sealer()
    result = _with_connection(service, database_url,
                              lambda c: redrive(c, dead_letter_ids or None, sealer, max_message_bytes))
    console.print(f"redriven: {', '.join(map(str, result.ids)) or 'nothing'}")
    if result.without_bytes:
        console.print(f"not redrivable, their bytes are not available: {', '.join(map(str, result.without_bytes))}")
    if result.too_large:
        console.print("left pending, larger than the broker takes (at most "
                      f"{max_message_bytes:,} bytes): " + ", ".join(f"{i} ({size:,} bytes)" for i, size in result.too_large))
    accounted = {*result.ids, *result.without_bytes, *(i for i, _ in result.too_large)}
    unknown = sorted(set(dead_letter_ids or ()) - accounted)
    if unknown:
        console.print(f"no dead letter pending with id {', '.join(map(str, unknown))} (see: porting dead-letters list --all)")
    if unknown or (dead_letter_ids and (result.too_large or result.without_bytes)):
        raise typer.Exit(1)
