"""The workflow's handlers and timers on a real PostgreSQL, fed fabricated records (no broker)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from porting_runtime.statement import write_all
from porting_runtime.timers import TimerChanges, timer_writes
from schemas import (
    AlertKind,
    CancellationDenied,
    CarrierOutcome,
    PortAlertRaised,
    PortStatusChanged,
    PortSubmitted,
)
from workflow.adapters.repository import WorkflowRepository
from workflow.domain import TimerKind
from workflow.domain.step import timer_key

from .test_workflow_support import (
    ACCOUNT_NUMBER,
    CA_NUMBER,
    GB_NUMBER,
    PIN,
    START,
    US_NUMBER,
    US_NUMBER_2,
    answered,
    cancel,
    checked,
    documents,
    port_requested,
    record,
    rejected,
    scheduled,
    workflow_handlers,
)


async def test_a_us_request_goes_from_review_to_completion_with_a_status_change_for_each_step(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        steps = []
        for event in (request, checked(request), answered(sid, (US_NUMBER, CarrierOutcome.ACCEPTED)),
                      scheduled(sid, US_NUMBER, on=date(2027, 3, 2)), answered(sid, (US_NUMBER, CarrierOutcome.ACTIVATED))):
            await workflow.feed(event)
            steps.append(await workflow.status(sid))
        changes = await workflow.published(PortStatusChanged, sid)
        [order] = await workflow.published(PortSubmitted, sid)
        secrets = await workflow.pool.fetchval("SELECT secrets FROM port_in_requests WHERE port_in_request_sid = $1", sid)
        history = await workflow.pool.fetch("SELECT cause_event_id, status_to FROM transitions "
                                            "WHERE port_in_request_sid = $1 AND phone_number IS NOT NULL ORDER BY id", sid)

    assert steps == [("in_review", {US_NUMBER: "in_review"}), ("in_progress", {US_NUMBER: "port_submitted"}),
                     ("in_progress", {US_NUMBER: "port_pending"}), ("in_progress", {US_NUMBER: "scheduled"}),
                     ("completed", {US_NUMBER: "completed"})]
    assert [(c.status_to.value, [n.status_to.value for n in c.phone_numbers]) for c in changes] == [
        ("in_review", ["in_review"]), ("in_progress", ["port_submitted"]), ("in_progress", ["port_pending"]),
        ("in_progress", ["scheduled"]), ("completed", ["completed"])]
    assert (order.phone_numbers[0].pin, order.losing_carrier_information.account_number) == (PIN, ACCOUNT_NUMBER)
    assert secrets is None, "deleted once the request ended"
    assert [h["status_to"] for h in history] == ["in_review", "port_submitted", "port_pending", "scheduled", "completed"]
    assert len({h["cause_event_id"] for h in history}) == 5, "each transition names the event that caused it"


async def test_pin_and_account_number_are_sealed_at_rest_even_in_the_outbox(settings):
    request = port_requested(US_NUMBER)
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request))
        sealed = await workflow.pool.fetchval("SELECT secrets FROM port_in_requests")
        found = []
        for table in ("port_in_requests", "port_in_numbers", "transitions", "outbox", "timers"):
            text = await workflow.pool.fetchval(f"SELECT string_agg(t::text, ' ') FROM {table} t")
            found += [table for secret in (PIN, ACCOUNT_NUMBER) if secret in (text or "")]
        [order] = await workflow.published(PortSubmitted)
    assert sealed is not None and PIN.encode() not in sealed
    assert found == []
    assert order.phone_numbers[0].pin == PIN, "the relay opens the sealed order to send it"


# A Canadian service address that is not a PO box, for the cases that fail on their documents.
MONTREAL = {"street": "1000 Rue Sherbrooke O", "city": "Montréal", "state": "QC", "zip": "H3A 3R2", "country": "CA"}


@pytest.mark.parametrize(("code", "overrides"), [
    ("PO_BOX_ADDRESS", {"documents": documents("CA")}),  # its address is "C.P. 1234"
    ("BILL_TOO_OLD", {"address": MONTREAL, "documents": documents("CA", bill_dated=date(2026, 12, 1))}),
    ("CSR_MISSING", {"address": MONTREAL, "documents": documents("CA", csr=False)}),
], ids=["french_po_box", "stale_bill", "missing_csr"])
async def test_a_canadian_request_with_a_french_po_box_a_stale_bill_or_no_csr_is_rejected_with_the_reason(
        settings, code, overrides):
    request = port_requested(CA_NUMBER, country="CA", **overrides)
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request))
        status = await workflow.status(request.port_in_request_sid)
        change = (await workflow.published(PortStatusChanged))[-1]
        submitted = await workflow.published(PortSubmitted)
    assert status == ("rejected", {CA_NUMBER: "port_rejected"})
    assert (change.status_to.value, change.phone_numbers[0].reason_code) == ("rejected", code)
    assert change.phone_numbers[0].reason, "a sentence telling the customer how to fix it"
    assert submitted == []


async def test_a_canadian_request_with_a_street_address_a_recent_bill_and_a_csr_is_submitted(settings):
    """The cases above fail on what they change alone: the same request with all of it in order passes."""
    request = port_requested(CA_NUMBER, country="CA", address=MONTREAL, documents=documents("CA"))
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request))
        status = await workflow.status(request.port_in_request_sid)
        [order] = await workflow.published(PortSubmitted)
    assert status == ("in_progress", {CA_NUMBER: "port_submitted"})
    assert [n.phone_number for n in order.phone_numbers] == [CA_NUMBER]


async def test_a_carrier_rejection_asks_for_action_and_a_higher_revision_resubmits_only_the_rejected_number(settings):
    request = port_requested(US_NUMBER, US_NUMBER_2)
    sid = request.port_in_request_sid
    revision = port_requested(US_NUMBER, US_NUMBER_2, sid=sid, revision=2, pin="11112222")
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request),
                            answered(sid, (US_NUMBER, CarrierOutcome.ACCEPTED), rejected(US_NUMBER_2)))
        waiting = await workflow.status(sid)
        await workflow.feed(revision, checked(revision))
        orders = await workflow.published(PortSubmitted, sid)
        after = await workflow.status(sid)
    assert waiting == ("action_required", {US_NUMBER: "port_pending", US_NUMBER_2: "port_rejected"})
    assert [(o.revision, [(n.phone_number, n.pin) for n in o.phone_numbers]) for o in orders] == [
        (1, [(US_NUMBER, PIN), (US_NUMBER_2, PIN)]), (2, [(US_NUMBER_2, "11112222")])]
    assert after == ("in_progress", {US_NUMBER: "port_pending", US_NUMBER_2: "port_submitted"})


async def test_a_us_cancel_after_scheduling_is_denied_with_a_cancellation_denied(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request), scheduled(sid, US_NUMBER, on=date(2027, 3, 2)),
                            cancel(sid, accepts_fees_and_risk=True))
        [denial] = await workflow.published(CancellationDenied, sid)
        status = await workflow.status(sid)
    assert (denial.reason_code, denial.phone_numbers, denial.port_date) == (
        "CANCELLATION_AFTER_SCHEDULING", [US_NUMBER], date(2027, 3, 2))
    assert status == ("in_progress", {US_NUMBER: "scheduled"})


async def test_an_international_cancel_five_business_days_ahead_goes_canceling_then_canceled_and_two_days_is_denied(settings):
    early, late = (port_requested(GB_NUMBER, country="GB", fees_acknowledged=True) for _ in range(2))
    async with workflow_handlers(settings) as workflow:
        for request, port_date in ((early, date(2027, 2, 8)), (late, date(2027, 2, 3))):  # from Monday 1 February
            sid = request.port_in_request_sid
            await workflow.feed(request, checked(request), answered(sid, (GB_NUMBER, CarrierOutcome.ACCEPTED)),
                                scheduled(sid, GB_NUMBER, on=port_date, zone="Europe/London"),
                                cancel(sid, accepts_fees_and_risk=True))
        canceling = await workflow.status(early.port_in_request_sid)
        await workflow.feed(answered(early.port_in_request_sid, (GB_NUMBER, CarrierOutcome.CANCELED)))
        canceled = await workflow.status(early.port_in_request_sid)
        [denial] = await workflow.published(CancellationDenied)
        denied = await workflow.status(late.port_in_request_sid)
    assert canceling == ("in_progress", {GB_NUMBER: "canceling"})
    assert canceled == ("canceled", {GB_NUMBER: "canceled"})
    assert (denial.port_in_request_sid, denial.reason_code) == (late.port_in_request_sid, "CANCELLATION_TOO_LATE")
    assert denied == ("in_progress", {GB_NUMBER: "scheduled"})


async def test_a_cancel_that_arrives_before_its_request_is_parked_and_applied_when_the_request_arrives(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(cancel(sid))
        parked = await workflow.pool.fetchval("SELECT count(*) FROM parked_events WHERE port_in_request_sid = $1", sid)
        await workflow.feed(request)
        status = await workflow.status(sid)
        left = await workflow.pool.fetchval("SELECT count(*) FROM parked_events")
        statuses = [c.status_to.value for c in await workflow.published(PortStatusChanged, sid)]
    assert parked == 1
    assert status == ("canceled", {US_NUMBER: "canceled"})
    assert (left, statuses) == (0, ["in_review", "canceled"])


async def test_an_event_naming_a_number_not_in_the_request_is_dead_lettered_and_the_rest_of_its_batch_applies(settings):
    request, other = port_requested(US_NUMBER), port_requested(US_NUMBER)
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request), other, checked(other))
        stray = answered(request.port_in_request_sid, (US_NUMBER, CarrierOutcome.ACCEPTED),
                         (US_NUMBER_2, CarrierOutcome.ACCEPTED))
        fine = answered(other.port_in_request_sid, (US_NUMBER, CarrierOutcome.ACCEPTED))
        await workflow.feed_batch([record(settings, stray), record(settings, fine)])
        errors = await workflow.pool.fetch("SELECT error FROM dead_letters")
        statuses = (await workflow.status(request.port_in_request_sid), await workflow.status(other.port_in_request_sid))
    assert len(errors) == 1 and US_NUMBER_2 in errors[0]["error"]
    assert statuses == (("in_progress", {US_NUMBER: "port_submitted"}), ("in_progress", {US_NUMBER: "port_pending"}))


async def test_a_port_date_that_already_passed_raises_the_overdue_alert(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request), scheduled(sid, US_NUMBER, on=date(2027, 1, 29)))
        [alert] = await workflow.published(PortAlertRaised, sid)
    assert (alert.alert, alert.phone_numbers) == (AlertKind.PORT_DATE_OVERDUE, [US_NUMBER])


async def test_timers_fire_when_the_clock_passes_them_once_each(settings):
    slow, rejected_request = port_requested(US_NUMBER), port_requested(US_NUMBER_2)
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(slow, checked(slow), rejected_request, checked(rejected_request),
                            answered(rejected_request.port_in_request_sid, rejected(US_NUMBER_2)))
        assert await workflow.fire_due_timers() == 0
        workflow.clock.set(START + timedelta(days=8))  # past five business days
        fired_first = await workflow.fire_due_timers()
        fired_again = await workflow.fire_due_timers()
        [breach] = await workflow.published(PortAlertRaised)
        workflow.clock.set(START + timedelta(days=31))
        await workflow.fire_due_timers()
        expired = await workflow.status(rejected_request.port_in_request_sid)
        pending = await workflow.pool.fetch("SELECT kind, key FROM timers ORDER BY kind")
    assert (fired_first, fired_again) == (1, 0), "the slow request's carrier SLA; the other was answered"
    assert (breach.alert, breach.port_in_request_sid) == (AlertKind.CARRIER_SLA_BREACHED, slow.port_in_request_sid)
    assert expired == ("expired", {US_NUMBER_2: "port_rejected"})
    assert [r["kind"] for r in pending] == [], "nothing left to wait for"


async def test_a_batch_of_requests_takes_one_lock_one_load_and_one_write(settings):
    requests = [port_requested(f"+120155501{i:02d}") for i in range(100)]
    async with workflow_handlers(settings) as workflow:
        await workflow.feed_batch([record(settings, r) for r in requests])
        counted = {what: sum(fragment in s for s in workflow.statements) for what, fragment in [
            ("lock", "pg_advisory_xact_lock(hashtextextended(s, $2))"), ("load", "LEFT JOIN port_in_requests"),
            ("write", "INSERT INTO port_in_requests")]}
        stored = await workflow.pool.fetchval("SELECT count(*) FROM port_in_requests WHERE status = 'in_review'")
        changes = await workflow.published(PortStatusChanged)
    assert counted == {"lock": 1, "load": 1, "write": 1}
    assert stored == 100 and len(changes) == 100


async def test_replaying_the_same_events_changes_nothing(settings):
    request = port_requested(US_NUMBER)
    records = [record(settings, request), record(settings, checked(request))]
    async with workflow_handlers(settings) as workflow:
        for r in records:
            await workflow.feed_batch([r])
        before = await workflow.pool.fetchval("SELECT count(*) FROM outbox")
        for r in records:
            await workflow.feed_batch([r])
        after = await workflow.pool.fetchval("SELECT count(*) FROM outbox")
        history = await workflow.pool.fetchval("SELECT count(*) FROM transitions")
    assert before == after == 3, "PortStatusChanged twice and one PortSubmitted"
    assert history == 4


async def test_a_due_timer_whose_request_a_batch_holds_is_left_for_the_next_pass_and_fires_once_it_is_free(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request))  # submitted: the carrier SLA runs
        workflow.clock.advance(timedelta(days=8))
        async with workflow.pool.acquire() as batch, batch.transaction():
            await WorkflowRepository(batch).lock([sid])  # a consumer's batch on the same request
            fired_while_held = await asyncio.wait_for(workflow.fire_due_timers(), timeout=10)
        fired_after = await workflow.fire_due_timers()
        alerts = await workflow.published(PortAlertRaised, sid)
    assert (fired_while_held, fired_after) == (0, 1)
    assert [a.alert for a in alerts] == [AlertKind.CARRIER_SLA_BREACHED]


async def test_a_due_timer_whose_request_a_batch_holds_is_passed_over_so_the_batch_can_cancel_it_and_it_never_fires(
        settings):
    """The carrier answers as the carrier SLA falls due: the batch holding the request cancels
    the timer. The loop takes a timer's request before its row, as a batch does, so it passes
    over one whose request is held instead of holding the row the batch needs (which deadlocked)."""
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request))
        workflow.clock.advance(timedelta(days=8))
        async with workflow.pool.acquire() as batch, batch.transaction():
            await WorkflowRepository(batch).lock([sid])
            looked = await asyncio.wait_for(workflow.fire_due_timers(), timeout=10)
            changes = TimerChanges()
            changes.cancel(TimerKind.CARRIER_SLA.value, [timer_key(sid, request.revision)])
            await asyncio.wait_for(write_all(batch, [timer_writes(changes)]), timeout=10)
        fired = (looked, await workflow.fire_due_timers())
        alerts = await workflow.published(PortAlertRaised, sid)
        left = await workflow.pool.fetchval("SELECT count(*) FROM timers WHERE kind = 'carrier_sla'")
    assert fired == (0, 0)
    assert (alerts, left) == ([], 0)
