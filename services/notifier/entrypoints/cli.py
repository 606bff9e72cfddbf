"""Operator commands: the mail the local catcher kept, and a request's notifications."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..adapters.mail_catcher import find_mail, read_mail

console = Console()
mail_app = typer.Typer(help="E-mail kept by the local SMTP catcher that `porting up` runs.", no_args_is_help=True)
DataDirOption = typer.Option(Path(".porting"), "--data-dir", envvar="PORTING_DATA_DIR",
                             help="The stack's data directory; its mail/ holds the caught mail.")


@mail_app.command("list")
def mail_list(
    data_dir: Path = DataDirOption,
    to: str | None = typer.Option(None, "--to", help="Only mail to this address."),
    last: int = typer.Option(50, "--last", min=1, help="Show the newest N."),
) -> None:
    """List the caught e-mail, oldest first."""
    mails = read_mail(data_dir / "mail")
    if to:
        mails = [m for m in mails if to.lower() in m.recipients.lower()]
    table = Table(title=f"{len(mails)} message(s) in {data_dir / 'mail'}")
    for column in ("id", "received", "to", "subject"):
        table.add_column(column, overflow="fold")
    for mail in mails[-last:]:
        table.add_row(mail.id, f"{mail.received_at:%Y-%m-%d %H:%M:%S}", mail.recipients, mail.subject)
    console.print(table)


@mail_app.command("show")
def mail_show(
    mail_id: str = typer.Argument(..., metavar="ID", help="The id from `porting mail list` (a unique prefix will do), or the Message-ID."),
    data_dir: Path = DataDirOption,
    html: bool = typer.Option(False, "--html", help="Print the HTML part instead of the plain text."),
) -> None:
    """Print one caught e-mail: its headers and its text (or HTML)."""
    mail = find_mail(data_dir / "mail", mail_id)
    if mail is None:
        console.print(f"[red]no single message matches {mail_id!r} in {data_dir / 'mail'}[/red]")
        raise typer.Exit(2)
    for header in ("From", "To", "Subject", "Date", "Message-ID", "X-Port-In-Request-Sid"):
        console.print(f"[bold]{header}:[/bold] {mail.message.get(header, '')}", highlight=False)
    console.print()
    console.print(mail.html if html else mail.text, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(mail_app, name="mail")
