"""Operator commands: a request with its numbers, full history and pending timers; requests by status."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

import asyncpg
import typer
from rich.table import Table
from rich.text import Text

from porting_runtime.operator_cli import database_url_for, operator_console, run_with_database
from schemas import RequestStatus

from ..adapters.repository import WorkflowRepository
from ..service import WORKFLOW

SID = re.compile(r"KW[0-9a-fA-F]{32}")
console = operator_console()
DatabaseOption = typer.Option(
    None, "--database-url",
    help="The workflow service's database (default: WORKFLOW_DATABASE_URL, else the running local stack's).",
)
requests_app = typer.Typer(help="Port-in requests.", no_args_is_help=True)


def _run(database_url: str | None, work: Any) -> Any:
    return run_with_database(database_url_for("workflow", database_url), work, service="workflow",
                             migrations=[WORKFLOW.migrations])


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


async def request_view(connection: asyncpg.Connection, sid: str) -> dict[str, Any] | None:
    """The request as `porting status --json` prints it; never a PIN or an account number."""
    found = await WorkflowRepository(connection).show(sid)
    if found is None:
        return None
    request = found["request"] or dict.fromkeys(("status", "account_sid", "revision", "received_at", "updated_at"))
    numbers = [{"phone_number": n["phone_number"], "status": n["status"], "reason_code": n["reason_code"],
                "reason": n["reason"], "country": n["country"], "port_date": n["port_date"],
                "proposed_port_date": n.get("proposed_port_date"),
                "port_time_range_start": n["port_time_range_start"], "port_time_range_end": n["port_time_range_end"],
                "time_zone": n["time_zone"], "losing_carrier": n["losing_carrier"],
                "fee_per_number": n["fee_per_number"], "fee_currency": n["fee_currency"]}
               for n in found["numbers"]]
    history = [{key: _plain(h[key]) for key in ("at", "cause_event_id", "status_from", "status_to", "phone_number",
                                                  "reason_code", "reason", "kind")} for h in found["history"]]
    timers = [{"kind": t["kind"], "due_at": _plain(t["due_at"]), "failed": t["failed_at"] is not None}
              for t in found["timers"]]
    parked = [{key: _plain(p[key]) for key in ("event_type", "event_id", "reason", "parked_at")}
              for p in found["parked"]]
    return {"port_in_request_sid": sid, "status": request["status"], "account_sid": request["account_sid"],
            "revision": request["revision"], "received_at": _plain(request["received_at"]),
            "updated_at": _plain(request["updated_at"]), "phone_numbers": numbers, "history": history,
            "timers": timers, "parked_events": parked}


# A request's history is a few dozen entries; one flooded with answers for numbers it never
# submitted held 302,002 (each ignored answer notes each number it names), and drawing them all
# took the table 4 minutes and 2.7 million lines. The latest entries are the ones a desk reads.
HISTORY_SHOWN = 1_000


def status(
    sid: str = typer.Argument(..., help="The port-in request sid (KW...)."),
    as_json: bool = typer.Option(False, "--json", help="Print the request as JSON (its whole history)."),
    history_shown: int = typer.Option(
        HISTORY_SHOWN, "--history", min=0,
        help="How many of the latest history entries the table shows (0: all of them)."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Show a port-in request: its numbers, its full history, its pending timers."""
    if not SID.fullmatch(sid):
        console.print(f"{sid!r} is not a port-in request sid (KW followed by 32 hex digits)", style="red")
        raise typer.Exit(2)
    view = _run(database_url, lambda connection: request_view(connection, sid))
    if view is None:
        console.print(f"no port-in request {sid}", style="red")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    if view["status"] is None:
        console.print(Text.assemble((sid, "bold"), "  not received yet: events wait for it"))
    else:
        console.print(Text.assemble((sid, "bold"), f"  {view['status']}  (account {view['account_sid']}, "
                                                   f"revision {view['revision']})"))
    numbers = Table("phone number", "status", "reason", "port date", title="numbers")
    for n in view["phone_numbers"]:
        reason = " ".join(part for part in (n["reason_code"], n["reason"]) if part)
        numbers.add_row(n["phone_number"], n["status"], reason, _port_date_shown(n))
    console.print(numbers)
    entries = view["history"]
    if history_shown and len(entries) > history_shown:
        console.print(f"history: the latest {history_shown:,} of {len(entries):,} entries "
                      "(--history 0 shows them all, --json prints them all)", style="yellow")
        entries = entries[-history_shown:]
    history = Table("at", "number", "from", "to", "reason", "cause", title="history")
    for h in entries:
        to = h["status_to"] if h["kind"] == "transition" else f"{h['status_to']} ({h['kind']})"
        history.add_row(h["at"], h["phone_number"] or "(request)", h["status_from"] or "", to or "",
                        " ".join(p for p in (h["reason_code"], h["reason"]) if p), h["cause_event_id"])
    console.print(history)
    timers = Table("kind", "due at", title="pending timers")
    for t in view["timers"]:
        timers.add_row(t["kind"], t["due_at"] + (" (failed)" if t["failed"] else ""))
    console.print(timers)
    if view["parked_events"]:
        console.print(f"{len(view['parked_events'])} event(s) parked until the request (or revision) arrives:")
        for p in view["parked_events"]:
            console.print(f"  {p['event_type']} {p['event_id']} since {p['parked_at']}")


def _port_date_shown(number: dict[str, Any]) -> str:
    if number["port_date"]:
        return (f"{number['port_date']} {number['port_time_range_start']}-{number['port_time_range_end']} "
                f"{number['time_zone']}")
    if number["proposed_port_date"] and number["status"] == "port_pending":
        return f"{number['proposed_port_date']} (proposed by the carrier)"
    return ""


@requests_app.command("list")
def list_requests(
    status_filter: str | None = typer.Option(None, "--status", help="Only requests in this status."),
    limit: int = typer.Option(50, min=1, max=10_000),
    database_url: str | None = DatabaseOption,
) -> None:
    """The latest port-in requests, newest change first."""
    if status_filter is not None and status_filter not in {s.value for s in RequestStatus}:
        console.print(f"unknown status {status_filter!r}; one of: "
                      f"{', '.join(s.value for s in RequestStatus)}", style="red")
        raise typer.Exit(2)

    async def fetch(connection: asyncpg.Connection) -> list[asyncpg.Record]:
        return list(await WorkflowRepository(connection).list(status_filter, limit))

    rows = _run(database_url, fetch)
    table = Table("port-in request", "status", "numbers", "revision", "account", "updated")
    for row in rows:
        table.add_row(row["port_in_request_sid"], row["status"], str(row["numbers"]), str(row["revision"]),
                      row["account_sid"], row["updated_at"].isoformat())
    console.print(table)
    if not rows:
        console.print("no port-in requests" + (f" in status {status_filter}" if status_filter else ""))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.add_typer(requests_app, name="requests")
