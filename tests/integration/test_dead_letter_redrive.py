"""Operators list, inspect and redrive dead letters once a fix is deployed."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr
from typer.testing import CliRunner

from porting_cli.main import app
from porting_runtime.sealing import generate_key

from ..factories import port_requested, port_requested_payload
from .ledger import FIXED_LEDGER, REJECTED_CUSTOMER, fetchval, port_requested_record, publish, rows_are, running, wait_until

runner = CliRunner()
KEY = generate_key()


def porting(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "250", "DATA_ENCRYPTION_KEYS": KEY})


async def test_a_dead_letter_redriven_after_a_fix_is_handled_once_and_cannot_be_redriven_twice(settings):
    settings = settings.model_copy(update={"data_encryption_keys": SecretStr(KEY)})
    carrier = {**port_requested_payload()["losing_carrier_information"], "customer_name": REJECTED_CUSTOMER}
    record = port_requested_record(settings, port_requested(losing_carrier_information=carrier))
    await publish(settings, [record])
    async with running(settings):
        assert await wait_until(lambda: rows_are(settings, "dead_letters", 1))

    db = ("--database-url", settings.database_url)
    listed = await asyncio.to_thread(porting, "dead-letters", "list", "ledger", *db)
    assert "the customer name breaks a rule" in listed.stdout
    shown = await asyncio.to_thread(porting, "dead-letters", "show", "ledger", "1", *db)
    assert REJECTED_CUSTOMER in shown.stdout and "ce_id" in shown.stdout
    assert "redriven: 1" in (await asyncio.to_thread(porting, "dead-letters", "redrive", "ledger", *db)).stdout
    assert "redriven: nothing" in (await asyncio.to_thread(porting, "dead-letters", "redrive", "ledger", *db)).stdout
    again = await asyncio.to_thread(porting, "dead-letters", "redrive", "ledger", "1", "999", *db)
    assert again.exit_code == 1 and "no dead letter pending with id 1, 999" in again.stdout

    async with running(settings, FIXED_LEDGER):
        assert await wait_until(lambda: rows_are(settings, "effects", 1))

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 1
    assert await fetchval(settings.database_url, "SELECT count(*) FROM dead_letters") == 1
    assert "the customer name" not in (await asyncio.to_thread(porting, "dead-letters", "list", "ledger", *db)).stdout
