"""Operator commands: the mail the local catcher kept, and a request's notifications."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import asyncpg
import typer
from rich.table import Table
from rich.text import Text

from porting_runtime import operator_cli

from ..adapters.mail_catcher import find_mail, read_mail
from ..adapters.store import notifications_of

REQUEST_SID = re.compile(r"KW[0-9a-fA-F]{32}")
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

console = operator_cli.operator_console()
mail_app = typer.Typer(help="E-mail kept by the local SMTP catcher that `porting up` runs.", no_args_is_help=True)
MaildirOption = typer.Option(None, "--maildir", envvar="PORTING_MAILDIR",
                             help="The catcher's Maildir; by default mail/ in the stack's data directory.")


def _maildir(override: Path | None) -> Path:
    # The same data directory every `porting` command uses (`porting --data-dir`, PORTING_DATA_DIR,
    # or the nearest .porting); the catcher `porting up` runs keeps its mail in its mail/.
    return override if override is not None else operator_cli.data_dir() / "mail"


@mail_app.command("list")
def mail_list(
    maildir: Path | None = MaildirOption,
    to: str | None = typer.Option(None, "--to", help="Only mail to this address."),
    last: int = typer.Option(50, "--last", min=1, help="Show the newest N."),
) -> None:
    """List the caught e-mail, oldest first."""
    where = _maildir(maildir)
    mails = read_mail(where)
    if to:
        mails = [m for m in mails if to.lower() in m.recipients.lower()]
    table = Table(title=f"{len(mails)} message(s) in {where}")
    for column in ("id", "received", "to", "subject"):
        table.add_column(column, overflow="fold")
    for mail in mails[-last:]:
        table.add_row(mail.id, f"{mail.received_at:%Y-%m-%d %H:%M:%S}", mail.recipients, mail.subject)
    console.print(table)


@mail_app.command("show")
def mail_show(
    mail_id: str = typer.Argument(..., metavar="ID", help="The id from `porting mail list` (a unique prefix will do), or the Message-ID."),
    maildir: Path | None = MaildirOption,
    html: bool = typer.Option(False, "--html", help="Print the HTML part instead of the plain text."),
) -> None:
    """Print one caught e-mail: its headers and its text (or HTML)."""
    where = _maildir(maildir)
    mail = find_mail(where, mail_id)
    if mail is None:
        console.print(f"no single message matches {mail_id!r} in {where}", style="red")
        raise typer.Exit(2)
    for header in ("From", "To", "Subject", "Date", "Message-ID", "X-Port-In-Request-Sid"):
        console.print(Text.assemble((f"{header}:", "bold"), f" {mail.message.get(header, '')}"))
    console.print()
    console.print(mail.html if html else mail.text)


def notifications(
    port_in_request_sid: str = typer.Argument(..., metavar="SID", help="The port-in request sid (KW...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    database_url: str | None = typer.Option(None, "--database-url", help="The notifier's database (NOTIFIER_DATABASE_URL)."),
) -> None:
    """A request's notifications (e-mail and webhooks) with every delivery attempt."""
    if not REQUEST_SID.fullmatch(port_in_request_sid):
        console.print(f"{port_in_request_sid!r} is not a port-in request sid (KW and 32 hex digits)", style="red")
        raise typer.Exit(2)
    url = operator_cli.database_url_for("notifier", database_url)

    async def read(connection: asyncpg.Connection) -> list[dict[str, Any]]:
        return await notifications_of(connection, port_in_request_sid)

    found = operator_cli.run_with_database(url, read, service="notifier", migrations=[MIGRATIONS])
    if as_json:
        typer.echo(json.dumps(found, default=str, indent=2))
        return
    if not found:
        console.print(f"no notifications for {port_in_request_sid}")
        return
    table = Table(title=f"notifications of {port_in_request_sid}", show_lines=True)
    for column in ("recorded", "channel", "kind", "recipient", "state", "attempts"):
        table.add_column(column, overflow="fold")
    for item in found:
        attempts = "\n".join(
            f"{a['attempt']}. {str(a['finished_at'])[:19]} {a['outcome']}: {a['detail']}" for a in item["attempts"])
        if item["state"] in ("retrying", "scheduled") and item["next_attempt_at"] or item["state"] == "scheduled":
            attempts += f"\nnext: {str(item['next_attempt_at'] or item['ready_at'])[:19]}"
        table.add_row(f"{item['recorded_at']:%Y-%m-%d %H:%M:%S}", item["channel"], item["kind"], item["recipient"],
                      item["state"], attempts.strip() or "-")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(mail_app, name="mail")
    app.command("notifications")(notifications)
