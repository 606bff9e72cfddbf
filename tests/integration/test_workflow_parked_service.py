"""Parked events on the real broker and PostgreSQL: an orphaned event's alert across a restart
and with two instances, and a parked event its request finds invalid dead-lettered, listed and
redriven like any dead letter."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from typer.testing import CliRunner

from porting_cli.main import app
from porting_runtime import MovableClock
from schemas import AlertKind, CarrierOutcome, CarrierResponded, PortAlertRaised, dead_letter_topic, decode

from ..conftest import TEST_DATA_ENCRYPTION_KEY
from ..kafka_support import collect, fetchval, publish, wait_until
from .test_workflow_support import (
    CA_NUMBER,
    START,
    US_NUMBER,
    answered,
    cancel,
    port_requested,
    record,
    running_workflow,
)

runner = CliRunner()


def porting(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False,
                         env={"COLUMNS": "250", "DATA_ENCRYPTION_KEYS": TEST_DATA_ENCRYPTION_KEY,
                              "PORTING_DATA_DIR": "/nonexistent"})


async def _count(settings, query: str) -> int:
    return await fetchval(settings.database_url, query)


async def test_an_event_whose_request_never_comes_raises_one_alert_after_a_restart_with_two_instances(settings):
    clock = MovableClock(START)
    sid = port_requested(US_NUMBER).port_in_request_sid  # a request that is never published
    async with running_workflow(settings, clock):
        await publish(settings, [record(settings, cancel(sid), event_id="cancel-orphan")])
        await wait_until(lambda: _count(settings, "SELECT count(*) FROM timers WHERE kind = 'parked_event_overdue'"),
                         what="the cancel parked and watched")
    async with running_workflow(settings, clock), running_workflow(settings, clock):
        clock.advance(timedelta(hours=25))
        await wait_until(lambda: _count(settings, "SELECT count(*) = 0 FROM timers "
                                                  "WHERE kind = 'parked_event_overdue'"), what="the watch fired")
        records = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=1, settle=3.0)
        parked = await _count(settings, "SELECT count(*) FROM parked_events")
    alerts = [decode(r.headers, r.value).data for r in records]
    assert [(a.port_in_request_sid, a.alert) for a in alerts] == [(sid, AlertKind.ORPHANED_EVENT)], "once"
    assert "porting.cancel-requested.v1 cancel-orphan" in alerts[0].message
    assert parked == 1, "still kept for its request"


async def test_a_parked_event_its_request_finds_invalid_is_dead_lettered_listed_and_redriven(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    stray = record(settings, answered(sid, (CA_NUMBER, CarrierOutcome.ACCEPTED)), event_id="answer-stray")
    dead_letters = settings.topic(dead_letter_topic("workflow"))
    db = ("--database-url", settings.database_url)
    async with running_workflow(settings, MovableClock(START)):
        await publish(settings, [stray])
        await wait_until(lambda: _count(settings, "SELECT count(*) FROM parked_events"), what="the answer parked")
        await publish(settings, [record(settings, request)])
        [dead] = await collect(settings, dead_letters, expect=1)
        [original] = await collect(settings, settings.topic(CarrierResponded.event_type), expect=1)
        listed = await asyncio.to_thread(porting, "dead-letters", "list", "workflow", *db)
        redriven = await asyncio.to_thread(porting, "dead-letters", "redrive", "workflow", *db)
        # Back on its topic, handled again (no inbox row left) and refused again on arrival.
        await wait_until(lambda: _count(settings, "SELECT count(*) = 2 FROM dead_letters"),
                         what="the redriven answer dead-lettered again")
        again = await collect(settings, settings.topic(CarrierResponded.event_type), expect=2)

    headers = dict(dead.headers)
    assert dead.value == original.value, "the bytes it came with"
    assert (headers["dlt_source_topic"], headers["dlt_source_partition"], headers["dlt_source_offset"]) == (
        original.topic.encode(), str(original.partition).encode(), str(original.offset).encode())
    assert CA_NUMBER.encode() in headers["dlt_error"] and headers["ce_id"] == b"answer-stray"
    assert "answer-stray" in listed.stdout and "parked until its request arrived" in listed.stdout
    assert "redriven: 1" in redriven.stdout
    assert [r.value for r in again] == [original.value, original.value]
