"""How the workflow stores a request (issue 8, throughput): what a save writes again and what it
keeps, and requests stored before the state became json (003_json_state.sql)."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import asyncpg

from porting_runtime.database import apply_migrations
from porting_runtime.sealing import Sealer
from schemas import CarrierOutcome, PortSubmitted
from workflow.domain import decide
from workflow.service import WORKFLOW

from ..unit.workflow.builders import cloud
from .test_workflow_support import (
    ACCOUNT_NUMBER,
    PIN,
    START,
    US_NUMBER,
    US_NUMBER_2,
    answered,
    checked,
    port_requested,
    rejected,
    workflow_handlers,
)


async def test_pin_and_account_number_are_sealed_once_when_they_arrive_and_again_only_for_a_revision_that_brings_its_own(settings):
    request = port_requested(US_NUMBER, US_NUMBER_2)
    sid = request.port_in_request_sid
    revision = port_requested(US_NUMBER, US_NUMBER_2, sid=sid, revision=2, pin="11112222")
    async with workflow_handlers(settings) as workflow:
        async def sealed() -> bytes | None:
            return await workflow.pool.fetchval("SELECT secrets FROM port_in_requests WHERE port_in_request_sid = $1", sid)

        await workflow.feed(request)
        on_arrival = await sealed()
        await workflow.feed(checked(request), answered(sid, (US_NUMBER, CarrierOutcome.ACCEPTED), rejected(US_NUMBER_2)))
        after_saves = await sealed()
        await workflow.feed(revision)
        after_revision = await sealed()
        await workflow.feed(checked(revision))
        orders = await workflow.published(PortSubmitted, sid)
    # Sealed tokens differ at every sealing (a random nonce): equal bytes were not sealed again.
    assert after_saves == on_arrival, "the check and the carrier's answer kept the sealed bytes"
    assert after_revision != on_arrival
    assert json.loads(workflow.sealer.unseal(after_revision)) == {"pins": ["11112222", "11112222"],
                                                                 "account_number": ACCOUNT_NUMBER}
    assert [(o.revision, [n.pin for n in o.phone_numbers], o.losing_carrier_information.account_number)
            for o in orders] == [(1, [PIN, PIN], ACCOUNT_NUMBER), (2, ["11112222"], ACCOUNT_NUMBER)]


async def test_an_event_writes_again_only_the_numbers_it_changed(settings):
    request = port_requested(US_NUMBER, US_NUMBER_2)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request))
        answered_at = workflow.clock.advance(timedelta(hours=2))  # the test clock goes on ticking from there
        await workflow.feed(answered(sid, (US_NUMBER, CarrierOutcome.ACCEPTED)))
        rows = await workflow.pool.fetch(
            "SELECT phone_number, status, updated_at >= $2 AS written, state FROM port_in_numbers "
            "WHERE port_in_request_sid = $1 ORDER BY position", sid, answered_at)
        request_written = await workflow.pool.fetchval(
            "SELECT updated_at >= $2 FROM port_in_requests WHERE port_in_request_sid = $1", sid, answered_at)
    assert [(r["phone_number"], r["status"], r["written"]) for r in rows] == [
        (US_NUMBER, "port_pending", True), (US_NUMBER_2, "port_submitted", False)]
    assert [json.loads(r["state"])["status"] for r in rows] == ["port_pending", "port_submitted"]
    assert request_written


async def test_a_request_stored_before_its_state_became_json_goes_on_after_the_migration(settings, tmp_path: Path):
    before = tmp_path / "workflow" / "migrations"  # named as the service's own: the same migration names
    before.mkdir(parents=True)
    for name in ("001_workflow.sql", "002_parked_event_origin.sql"):
        shutil.copy(WORKFLOW.migrations / name, before / name)
    request = port_requested(US_NUMBER, US_NUMBER_2)
    sid = request.port_in_request_sid
    received, _ = decide(None, cloud(request), START)
    assert received is not None
    sealer = Sealer.from_settings(settings)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        await apply_migrations(pool, WORKFLOW.name, before)
        # As the workflow stored a request before 003: jsonb state without numbers, PIN and
        # account number; the numbers in rows of their own; the secrets sealed beside.
        details = received.details.model_dump(mode="json")
        pins = [n.pop("pin") for n in details["phone_numbers"]]
        account_number = details["losing_carrier_information"].pop("account_number")
        state = received.model_dump(mode="json", exclude={"numbers", "details"}) | {"details": details}
        await pool.execute(
            "INSERT INTO port_in_requests VALUES ($1, $2, $3, $4, $5, $5, $6::jsonb, $7)",
            sid, received.account_sid, received.status.value, received.revision, received.received_at,
            json.dumps(state), sealer.seal(json.dumps({"pins": pins, "account_number": account_number}).encode()))
        for position, number in enumerate(received.numbers.values()):
            await pool.execute(
                "INSERT INTO port_in_numbers VALUES ($1, $2, $3, $4, NULL, NULL, NULL, $5, $6::jsonb)",
                sid, number.phone_number, position, number.status.value, START,
                json.dumps(number.model_dump(mode="json")))
    finally:
        await pool.close()
    async with workflow_handlers(settings) as workflow:  # applies 003
        types = await workflow.pool.fetch(
            "SELECT table_name, data_type FROM information_schema.columns WHERE column_name = 'state' "
            "AND table_name IN ('port_in_requests', 'port_in_numbers') ORDER BY table_name")
        await workflow.feed(checked(request))
        status = await workflow.status(sid)
        [order] = await workflow.published(PortSubmitted, sid)
    assert [(r["table_name"], r["data_type"]) for r in types] == [("port_in_numbers", "json"),
                                                                 ("port_in_requests", "json")]
    assert status == ("in_progress", {US_NUMBER: "port_submitted", US_NUMBER_2: "port_submitted"})
    assert ([n.pin for n in order.phone_numbers], order.losing_carrier_information.account_number) == (
        [PIN, PIN], ACCOUNT_NUMBER)
