"""Operator commands: accounts, inventory, number blocks, and a portability check."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import typer
from rich.progress import Progress

from porting_runtime.operator_cli import database_url_for, operator_console, run_with_database

from ..adapters.coverage_file import CoverageFile
from ..adapters.credentials import hash_token, is_plausible_token
from ..adapters.repository import PortabilityRepository
from ..domain.numbers import NumberBlock, normalised_e164
from ..domain.portability import ProvidedDetails
from ..service_layer.checks import check_numbers

ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
CHUNK = 1000

console = operator_console()
DatabaseOption = typer.Option(
    None, "--database-url",
    help="The portability service's database (default: PORTABILITY_DATABASE_URL, else the running local stack's).",
)
accounts_app = typer.Typer(help="Accounts and their hierarchy.", no_args_is_help=True)
inventory_app = typer.Typer(help="Which account holds which number.", no_args_is_help=True)
numbering_app = typer.Typer(help="Number blocks: carrier, wireless or not, rate center.", no_args_is_help=True)


def _run(database_url: str | None, work: Callable[[PortabilityRepository], Awaitable[Any]]) -> Any:
    async def in_transaction(connection: asyncpg.Connection) -> Any:
        async with connection.transaction():
            return await work(PortabilityRepository(connection))

    return run_with_database(database_url_for("portability", database_url), in_transaction, service="portability",
                             migrations=[Path(__file__).resolve().parents[1] / "migrations"])


def _fail(message: str) -> None:
    console.print(message, style="red")
    raise typer.Exit(2)


def _account(sid: str, what: str = "account sid") -> str:
    if not ACCOUNT_SID.fullmatch(sid):
        _fail(f"{what} {sid!r} must match AC followed by 32 hex digits")
    return sid


def _number(raw: str) -> str:
    e164 = normalised_e164(raw)
    if e164 is None:
        _fail(f"{raw!r} is not a valid E.164 phone number (22102)")
    return e164


@accounts_app.command("add")
def accounts_add(
    account_sid: str,
    token: str = typer.Option(..., "--token", help="The auth token; only its hash is stored."),
    parent: str | None = typer.Option(None, "--parent", help="The parent account of a sub-account."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Add (or update) an account that may use the Portability API."""
    _account(account_sid)
    if not is_plausible_token(token):
        _fail("the token must be 1 to 256 printable ASCII characters")
    if parent:
        _account(parent, "parent sid")

    async def add(repository: PortabilityRepository) -> None:
        if parent and not await repository.token_hash(parent):
            _fail(f"parent account {parent} does not exist; add it first")
        await repository.add_account(account_sid, hash_token(token), parent)

    _run(database_url, add)
    console.print(f"account {account_sid} saved" + (f" under {parent}" if parent else ""))


@inventory_app.command("add")
def inventory_add(number: str, account: str = typer.Option(..., "--account"), database_url: str | None = DatabaseOption) -> None:
    """Record that an account holds a number."""
    _run(database_url, lambda repository: repository.hold([_number(number)], _account(account)))
    console.print(f"{number} is held by {account}")


def _read_csv(path: Path, columns: list[str]) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            _fail(f"{path}: missing column(s) {', '.join(missing)}; expected header: {','.join(columns)}")
        return list(reader)


def _import(database_url: str | None, rows: list[Any], save: Callable[[PortabilityRepository, list[Any]], Awaitable[None]]) -> None:
    async def work(repository: PortabilityRepository) -> None:
        with Progress(console=console) as progress:
            task = progress.add_task("importing", total=len(rows))
            for start in range(0, len(rows), CHUNK):
                await save(repository, rows[start:start + CHUNK])
                progress.advance(task, len(rows[start:start + CHUNK]))

    _run(database_url, work)


@inventory_app.command("import")
def inventory_import(file: Path = typer.Argument(..., exists=True, dir_okay=False), database_url: str | None = DatabaseOption) -> None:
    """Import holdings from a CSV with columns phone_number,account_sid (all or nothing)."""
    rows, problems = [], []
    for line, row in enumerate(_read_csv(file, ["phone_number", "account_sid"]), start=2):
        number, account = normalised_e164(row["phone_number"].strip()), row["account_sid"].strip()
        if number is None:
            problems.append(f"line {line}: {row['phone_number']!r} is not a valid E.164 number")
        elif not ACCOUNT_SID.fullmatch(account):
            problems.append(f"line {line}: {account!r} is not an account sid")
        else:
            rows.append((number, account))
    if problems:
        _fail("nothing imported:\n" + "\n".join(problems[:20]))

    async def save(repository: PortabilityRepository, chunk: list[tuple[str, str]]) -> None:
        await repository.hold_each(chunk)

    _import(database_url, rows, save)
    console.print(f"imported {len(rows)} holdings")


@numbering_app.command("import")
def numbering_import(file: Path = typer.Argument(..., exists=True, dir_okay=False), database_url: str | None = DatabaseOption) -> None:
    """Import number blocks from a CSV: prefix,carrier_name,carrier_id,wireless,rate_center (all or nothing)."""
    truth = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    blocks, problems = [], []
    for line, row in enumerate(_read_csv(file, ["prefix", "carrier_name", "carrier_id", "wireless"]), start=2):
        prefix = row["prefix"].strip().lstrip("+")
        wireless = truth.get(row["wireless"].strip().lower())
        if not re.fullmatch(r"[1-9][0-9]{0,14}", prefix):  # ASCII digits: \d is any Unicode digit
            problems.append(f"line {line}: prefix {row['prefix']!r} must be E.164 digits")
        elif wireless is None:
            problems.append(f"line {line}: wireless {row['wireless']!r} must be true or false")
        elif not row["carrier_name"].strip() or not row["carrier_id"].strip():
            problems.append(f"line {line}: carrier_name and carrier_id are required")
        else:
            blocks.append(NumberBlock(prefix, row["carrier_name"].strip(), row["carrier_id"].strip(), wireless,
                                      (row.get("rate_center") or "").strip() or None))
    if problems:
        _fail("nothing imported:\n" + "\n".join(problems[:20]))
    _import(database_url, blocks, lambda repository, chunk: repository.import_blocks(chunk))
    console.print(f"imported {len(blocks)} number blocks")


def check(
    number: str,
    target: str | None = typer.Option(None, "--target", help="The account to port into."),
    requirements: bool = typer.Option(False, "--requirements", help="Also show what a port of it requires."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Check a number's portability as the Portability API would answer it."""
    if target:
        _account(target, "target account sid")

    async def ask(repository: PortabilityRepository) -> Any:
        [answer] = await check_numbers(repository, CoverageFile(), [(number, ProvidedDetails())],
                                       target_account_sid=target, port_in_request_sid=None)
        return answer

    answer = _run(database_url, ask)
    console.print_json(json.dumps(answer.model_dump(mode="json", exclude={"requirements"})))
    if requirements and answer.requirements:
        console.print_json(answer.requirements.model_dump_json())


def register(app: typer.Typer) -> None:
    app.add_typer(accounts_app, name="accounts")
    app.add_typer(inventory_app, name="inventory")
    app.add_typer(numbering_app, name="numbering")
    app.command("check")(check)
