"""The workflow on the real broker and PostgreSQL: with the portability service, across restarts,
with two instances, and as its own process with its logs read."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import asyncpg

from porting_runtime import MovableClock
from schemas import (
    AlertKind,
    CancellationDenied,
    CarrierOutcome,
    PortAlertRaised,
    PortStatusChanged,
    PortSubmitted,
    dead_letter_topic,
    decode,
)
from workflow.service import WORKFLOW
from workflow.domain.calendar import BusinessCalendar

from ..conftest import fresh_database
from ..kafka_support import collect, fetchval, publish, service_environment, wait_until
from .portability_support import TARGET, portability_api
from .test_workflow_support import (
    ACCOUNT_NUMBER,
    GB_NUMBER,
    PIN,
    START,
    US_NUMBER,
    answered,
    cancel,
    checked,
    port_requested,
    record,
    rejected,
    running_workflow,
    scheduled,
)


async def request_status(settings, sid: str) -> str | None:
    return await _status(settings, "SELECT status FROM port_in_requests WHERE port_in_request_sid = $1", sid)


async def number_status(settings, sid: str) -> str | None:
    return await _status(settings, "SELECT status FROM port_in_numbers WHERE port_in_request_sid = $1", sid)


async def _status(settings, query: str, sid: str) -> str | None:
    try:
        return await fetchval(settings.database_url, query, sid)
    except asyncpg.UndefinedTableError:  # the service has not applied its migrations yet
        return None


async def followups(settings, event_type, sid: str, expect: int, settle: float = 1.0) -> list:
    """The topic's events for this request, once `expect` arrived and `settle` seconds passed for extras."""
    records = await collect(settings, settings.topic(event_type.event_type), expect=expect, settle=settle)
    events = [decode(r.headers, r.value).data for r in records]
    return [e for e in events if e.subject == sid]


async def test_a_us_port_through_portability_and_workflow_ends_with_the_number_held_by_the_account(
        settings, infrastructure):
    calendar = BusinessCalendar("US")
    port_date = calendar.add_business_days(datetime.now(UTC).date(), 10)
    request = port_requested(US_NUMBER, account=TARGET)
    sid = request.port_in_request_sid
    async with fresh_database(infrastructure) as portability_database, \
            portability_api(settings.model_copy(update={"database_url": portability_database})) as api, \
            running_workflow(settings, MovableClock()):
        await publish(settings, [record(settings, request)])
        await wait_until(lambda: number_status(settings, sid), what="the request received")
        await wait_until(lambda: _is(number_status(settings, sid), "port_submitted"), what="submitted")
        for event, status in ((answered(sid, (US_NUMBER, CarrierOutcome.ACCEPTED)), "port_pending"),
                              (scheduled(sid, US_NUMBER, on=port_date), "scheduled"),
                              (answered(sid, (US_NUMBER, CarrierOutcome.ACTIVATED)), "completed")):
            await publish(settings, [record(settings, event)])
            await wait_until(lambda status=status: _is(number_status(settings, sid), status), what=status)

        async def held_by_the_account() -> bool:
            answer = (await api.get(f"/v1/Porting/Portability/PhoneNumber/{US_NUMBER}")).json()
            return answer.get("not_portable_reason_code") == 22131

        await wait_until(held_by_the_account, what="the next check answers 22131")
        changes = await followups(settings, PortStatusChanged, sid, expect=5)
        [order] = await followups(settings, PortSubmitted, sid, expect=1)
    assert [(c.status_to.value, [n.status_to.value for n in c.phone_numbers]) for c in changes] == [
        ("in_review", ["in_review"]), ("in_progress", ["port_submitted"]), ("in_progress", ["port_pending"]),
        ("in_progress", ["scheduled"]), ("completed", ["completed"])]
    assert order.phone_numbers[0].pin == PIN


async def _is(pending, expected: str) -> bool:
    return await pending == expected


async def test_a_cancel_published_before_its_request_is_applied_once_the_request_arrives(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with running_workflow(settings, MovableClock(START)):
        await publish(settings, [record(settings, cancel(sid))])
        await wait_until(lambda: fetchval(settings.database_url, "SELECT count(*) FROM parked_events"),
                         what="the cancel parked")
        await publish(settings, [record(settings, request)])
        await wait_until(lambda: _is(request_status(settings, sid), "canceled"), what="the request canceled")
        changes = await followups(settings, PortStatusChanged, sid, expect=2)
    assert [c.status_to.value for c in changes] == ["in_review", "canceled"]


async def test_an_international_cancel_five_business_days_ahead_goes_canceling_then_canceled_and_two_days_ahead_is_denied(
        settings):
    early, late = (port_requested(GB_NUMBER, country="GB", fees_acknowledged=True) for _ in range(2))
    port_dates = {early.port_in_request_sid: date(2027, 2, 8), late.port_in_request_sid: date(2027, 2, 3)}

    async def step(make, status: str) -> None:
        """Each topic is consumed on its own: a step is published once the one before it applied."""
        await publish(settings, [record(settings, make(sid, on)) for sid, on in port_dates.items()])
        for sid in port_dates:
            await wait_until(lambda sid=sid: _is(number_status(settings, sid), status), what=f"{sid} {status}")

    async with running_workflow(settings, MovableClock(START)):  # Monday 1 February 2027
        await publish(settings, [record(settings, event) for r in (early, late) for event in (r, checked(r))])
        for sid in port_dates:
            await wait_until(lambda sid=sid: _is(number_status(settings, sid), "port_submitted"), what="submitted")
        await step(lambda sid, _: answered(sid, (GB_NUMBER, CarrierOutcome.ACCEPTED)), "port_pending")
        await step(lambda sid, on: scheduled(sid, GB_NUMBER, on=on, zone="Europe/London"), "scheduled")
        await publish(settings, [record(settings, cancel(sid, accepts_fees_and_risk=True)) for sid in port_dates])
        await wait_until(lambda: _is(number_status(settings, early.port_in_request_sid), "canceling"),
                         what="the early cancel under way")
        [denial] = await followups(settings, CancellationDenied, late.port_in_request_sid, expect=1)
        await publish(settings, [record(settings, answered(early.port_in_request_sid,
                                                           (GB_NUMBER, CarrierOutcome.CANCELED)))])
        await wait_until(lambda: _is(request_status(settings, early.port_in_request_sid), "canceled"),
                         what="the carrier's confirmation applied")
        # Both requests' changes: the early one's six and the late one's four.
        early_changes = await followups(settings, PortStatusChanged, early.port_in_request_sid, expect=10)
        late_status = (await request_status(settings, late.port_in_request_sid),
                       await number_status(settings, late.port_in_request_sid))
    assert denial.reason_code == "CANCELLATION_TOO_LATE"
    assert late_status == ("in_progress", "scheduled")
    assert [(c.status_to.value, [n.status_to.value for n in c.phone_numbers]) for c in early_changes] == [
        ("in_review", ["in_review"]), ("in_progress", ["port_submitted"]), ("in_progress", ["port_pending"]),
        ("in_progress", ["scheduled"]), ("in_progress", ["canceling"]), ("canceled", ["canceled"])]


async def test_timers_survive_a_restart_and_fire_once_with_two_instances(settings):
    clock = MovableClock(START)
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with running_workflow(settings, clock):
        await publish(settings, [record(settings, request), record(settings, checked(request))])
        await wait_until(lambda: fetchval(settings.database_url,
                                          "SELECT count(*) FROM timers WHERE kind = 'carrier_sla'"),
                         what="the carrier SLA scheduled")
    async with running_workflow(settings, clock), running_workflow(settings, clock):
        clock.advance(timedelta(days=8))  # past five business days
        await wait_until(lambda: fetchval(settings.database_url, "SELECT count(*) = 0 FROM timers "
                                                                 "WHERE kind = 'carrier_sla'"),
                         what="the carrier SLA fired")
        alerts = await followups(settings, PortAlertRaised, sid, expect=1, settle=3.0)
    assert [(a.alert, a.phone_numbers) for a in alerts] == [(AlertKind.CARRIER_SLA_BREACHED, [US_NUMBER])]


async def test_no_pin_or_account_number_in_any_event_but_port_submitted_nor_in_the_services_log(settings, tmp_path):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    log_file = tmp_path / "workflow.log"
    environment = service_environment(settings, LOG_LEVEL="DEBUG")
    with open(log_file, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "workflow"], env=environment, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        await publish(settings, [record(settings, request), record(settings, checked(request))])
        await wait_until(lambda: _is(number_status(settings, sid), "port_submitted"), timeout=60, what="submitted")
        await publish(settings, [record(settings, answered(sid, rejected(US_NUMBER)))])
        await wait_until(lambda: _is(request_status(settings, sid), "action_required"), what="action required")
        await publish(settings, [record(settings, cancel(sid))])
        await wait_until(lambda: _is(request_status(settings, sid), "canceled"), what="canceled")
        expected = {PortStatusChanged.event_type: 4, PortSubmitted.event_type: 1}
        records = {topic: await collect(settings, settings.topic(topic), expect=expected.get(topic, 0), settle=1.0)
                   for topic in [*WORKFLOW.publishes, dead_letter_topic(WORKFLOW.name)]}
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, 20)
        if process.poll() is None:
            process.kill()
    logged = log_file.read_bytes()
    assert b'"event": "service started"' in logged or b"service started" in logged, "the log was captured"
    # Every event the workflow publishes, and its dead letters: only the carrier-facing order has them.
    leaks = [topic for topic, found in records.items() if topic != PortSubmitted.event_type
             for r in found if PIN.encode() in r.value or ACCOUNT_NUMBER.encode() in r.value]
    assert leaks == []
    assert len(records[PortStatusChanged.event_type]) == 4
    [order] = records[PortSubmitted.event_type]
    assert PIN.encode() in order.value, "the carrier-facing order alone carries it"
    assert PIN.encode() not in logged and ACCOUNT_NUMBER.encode() not in logged
