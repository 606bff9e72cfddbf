"""`porting dead-letters` opens sealed dead letters, and shows secrets only when asked to."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from porting_cli.main import app
from porting_runtime.dead_letters import record_dead_letters, record_undecodable
from porting_runtime.sealing import Sealer, generate_key

from .dead_letters_support import ACCOUNT_NUMBER, DLT, PIN, SOURCE, migrated, outbox_messages, record, secret_payload

runner = CliRunner()
KEY = generate_key()
SEALER = Sealer([KEY])


def porting(*args: str, key: str = KEY):
    # No local stack's key file may stand in for a missing key: point at a data dir without one.
    return runner.invoke(app, list(args), catch_exceptions=False,
                         env={"COLUMNS": "250", "DATA_ENCRYPTION_KEYS": key, "PORTING_DATA_DIR": "/nonexistent"})


@pytest.fixture
async def stored(database_url):
    """Dead letters 1 (JSON with secrets), 2 (not JSON), 3 (terminal escapes), 4 (no bytes)."""
    async with migrated(database_url) as connection, connection.transaction():
        await record_dead_letters(
            connection, consumer="tests", dead_letter_topic=DLT, sealer=SEALER, max_message_bytes=1_000_000,
            failures=[
                (record(0, secret_payload(), headers=[("ce_id", b"e0"), ("pin", PIN.encode())]), "a [red]rule[/red]"),
                (record(1, f"pin={PIN}".encode()), "not JSON"),
                (record(2, b"\x1b]0;owned body\x07\x1b[2J", headers=[("x-note", b"\x1b[2Jowned header")]), "odd"),
            ],
        )
        await record_undecodable(connection, consumer="tests", dead_letter_topic=DLT, topic=SOURCE, partition=0,
                                 offset=3, error="header key not UTF-8", sealer=SEALER, max_message_bytes=1_000_000)
    return ("--database-url", database_url)


async def cli(*args: str, **options: str):
    return await asyncio.to_thread(porting, "dead-letters", *args, **options)


async def test_show_without_reveal_prints_the_event_but_not_its_pin_or_account_number(stored):
    shown = await cli("show", "tests", "1", *stored)
    assert shown.exit_code == 0
    assert "Ada" in shown.stdout and "+14155550199" in shown.stdout and "ce_id: e0" in shown.stdout
    assert PIN not in shown.stdout and ACCOUNT_NUMBER not in shown.stdout
    assert "[redacted]" in shown.stdout


async def test_show_with_reveal_prints_the_pin_and_account_number(stored):
    shown = await cli("show", "tests", "1", "--reveal", *stored)
    assert PIN in shown.stdout and ACCOUNT_NUMBER in shown.stdout


async def test_a_body_that_is_not_json_is_shown_only_with_reveal_and_otherwise_only_its_size(stored):
    hidden = await cli("show", "tests", "2", *stored)
    assert PIN not in hidden.stdout and "8 bytes" in hidden.stdout
    assert f"pin={PIN}" in (await cli("show", "tests", "2", "--reveal", *stored)).stdout


async def test_control_characters_from_a_record_never_reach_the_operators_terminal(stored):
    for args in (("show", "tests", "3"), ("show", "tests", "3", "--reveal")):
        shown = await cli(*args, *stored)
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
        assert "owned header" in shown.stdout
    assert "owned body" in shown.stdout  # the last, with --reveal


async def test_show_without_the_services_key_refuses_plainly(stored):
    missing = await cli("show", "tests", "1", *stored, key="")
    assert missing.exit_code == 1 and "DATA_ENCRYPTION_KEYS" in missing.stderr
    wrong = await cli("show", "tests", "1", *stored, key=generate_key())
    assert wrong.exit_code == 1 and "cannot be opened" in wrong.stderr and PIN not in wrong.output


async def test_show_of_an_unknown_id_says_so(stored):
    unknown = await cli("show", "tests", "99", *stored)
    assert unknown.exit_code == 1 and "no dead letter 99" in unknown.stderr


async def test_list_prints_stored_text_literally_not_as_markup(stored):
    listed = await cli("list", "tests", *stored)
    assert "a [red]rule[/red]" in listed.stdout and "header key not UTF-8" in listed.stdout


async def test_redrive_sends_back_those_with_bytes_and_names_those_without(stored, database_url):
    redriven = await cli("redrive", "tests", *stored)
    assert "redriven: 1, 2, 3" in redriven.stdout
    assert "their bytes are not available: 4" in redriven.stdout
    async with migrated(database_url) as connection:
        resent = (await outbox_messages(connection, SEALER))[-3:]
    assert (resent[0].topic, resent[0].value) == (SOURCE, secret_payload())
