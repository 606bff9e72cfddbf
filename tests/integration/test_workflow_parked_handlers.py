"""Parked events on the workflow's real database (no broker): the timer watching them, the
alert when their request never comes, and the dead letter when it comes and finds them invalid."""

from __future__ import annotations

from datetime import date, timedelta

from porting_runtime.dead_letters import get_dead_letter
from schemas import AlertKind, CarrierOutcome, PortAlertRaised, PortStatusChanged, decode
from workflow.adapters import repository as repository_module
from workflow.domain.parking import MAX_PARKED_PER_REQUEST

from .portability_support import consumer_records
from .test_workflow_support import (
    CA_NUMBER,
    US_NUMBER,
    answered,
    cancel,
    port_requested,
    record,
    scheduled,
    workflow_handlers,
)


async def test_a_parked_event_whose_request_never_comes_raises_one_alert_and_still_applies_if_it_comes(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(cancel(sid))
        timers = await workflow.pool.fetch("SELECT kind, key, due_at FROM timers")
        workflow.clock.advance(timedelta(hours=23))
        early = await workflow.fire_due_timers()
        workflow.clock.advance(timedelta(hours=2))
        fired = await workflow.fire_due_timers()
        again = await workflow.fire_due_timers()
        alerts = await workflow.published(PortAlertRaised, sid)
        await workflow.feed(request)
        status, _ = await workflow.status(sid)
        left = await workflow.pool.fetchval("SELECT count(*) FROM parked_events")
        notes = await workflow.pool.fetchval("SELECT count(*) FROM transitions WHERE reason_code = 'ORPHANED_EVENT' "
                                             "AND port_in_request_sid = $1", sid)

    [(kind, key, due_at)] = [tuple(t) for t in timers]
    assert kind == "parked_event_overdue" and key.startswith(f"{sid}:parked:")
    assert (early, fired, again) == (0, 1, 0), "not before a day, then once"
    [alert] = alerts
    assert (alert.alert, alert.phone_numbers, alert.due_at) == (AlertKind.ORPHANED_EVENT, [], due_at)
    assert "porting.cancel-requested.v1" in alert.message and "waited 25 hours" in alert.message
    assert (status, left, notes) == ("canceled", 0, 1), "the alert does not drop the event; the history keeps it"


async def test_the_watch_stops_when_the_request_arrives_and_applies_the_parked_event(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(cancel(sid))
        await workflow.feed(request)
        timers = await workflow.pool.fetchval("SELECT count(*) FROM timers WHERE kind = 'parked_event_overdue'")
        workflow.clock.advance(timedelta(days=2))
        await workflow.fire_due_timers()
        alerts = await workflow.published(PortAlertRaised, sid)
        changes = await workflow.published(PortStatusChanged, sid)
    assert timers == 0 and alerts == []
    assert [c.status_to.value for c in changes] == ["in_review", "canceled"]


async def test_a_parked_event_its_request_finds_invalid_is_dead_lettered_with_its_original_bytes_and_place(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    stray = record(settings, answered(sid, (CA_NUMBER, CarrierOutcome.ACCEPTED)), event_id="answer-1")
    [consumed] = consumer_records([stray])
    async with workflow_handlers(settings) as workflow:
        await workflow.consumer.process([consumed])
        await workflow.feed(request)
        [row] = await workflow.pool.fetch("SELECT id, source_topic, source_partition, source_offset, event_id, error "
                                          "FROM dead_letters")
        kept = await get_dead_letter(workflow.pool, row["id"], workflow.sealer)  # type: ignore[arg-type]
        claimed = await workflow.pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = 'answer-1'")
        history = await workflow.pool.fetch("SELECT kind, reason_code FROM transitions WHERE cause_event_id = 'answer-1'")
        left = await workflow.pool.fetchval("SELECT count(*) FROM parked_events")
        timers = await workflow.pool.fetchval("SELECT count(*) FROM timers WHERE kind = 'parked_event_overdue'")
        status = await workflow.status(sid)

    assert (row["source_topic"], row["source_partition"], row["source_offset"], row["event_id"]) == (
        consumed.topic, consumed.partition, consumed.offset, "answer-1")
    assert CA_NUMBER in row["error"] and "parked until its request arrived" in row["error"]
    assert kept is not None and kept.value == stray.value
    assert kept.headers == [(n.encode(), v) for n, v in stray.headers], "the headers it came with"
    assert claimed == 0, "a redrive of it is handled, not skipped"
    assert [tuple(h) for h in history] == [("note", "PARKED_EVENT_DEAD_LETTERED")], "not recorded as ignored"
    assert (left, timers) == (0, 0)
    assert status == ("in_review", {US_NUMBER: "in_review"})


async def test_an_event_parked_before_originals_were_kept_is_dead_lettered_re_encoded_with_its_place_unknown(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    stray = answered(sid, (CA_NUMBER, CarrierOutcome.ACCEPTED))
    async with workflow_handlers(settings) as workflow:
        await workflow.feed_batch([record(settings, stray, event_id="answer-old")])
        await workflow.pool.execute("UPDATE parked_events SET original = NULL, source_topic = NULL, "
                                    "source_partition = NULL, source_offset = NULL")
        await workflow.feed(request)
        [row] = await workflow.pool.fetch("SELECT id, source_topic, source_partition, source_offset FROM dead_letters")
        kept = await get_dead_letter(workflow.pool, row["id"], workflow.sealer)  # type: ignore[arg-type]
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == (
        settings.topic(stray.event_type), -1, -1)
    assert kept is not None and kept.key == sid.encode()
    redelivered = decode([(n.decode(), v) for n, v in kept.headers], kept.value)
    assert (redelivered.attributes.id, redelivered.data) == ("answer-old", stray)


async def test_events_beyond_the_limit_for_one_unseen_request_are_dead_lettered_and_those_kept_apply_when_it_comes(
        settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    # A flood of answers for one request not seen yet, in two batches (the count carries over).
    answers = [record(settings, answered(sid, (US_NUMBER, CarrierOutcome.ACCEPTED)), event_id=f"answer-{i}")
               for i in range(MAX_PARKED_PER_REQUEST + 3)]
    async with workflow_handlers(settings) as workflow:
        await workflow.feed_batch(answers[:60])
        await workflow.feed_batch(answers[60:])
        parked = await workflow.pool.fetchval("SELECT count(*) FROM parked_events")
        refused = await workflow.pool.fetch("SELECT event_id, error FROM dead_letters ORDER BY id")
        await workflow.feed(request)
        left = await workflow.pool.fetchval("SELECT count(*) FROM parked_events")
        ignored = await workflow.pool.fetchval("SELECT count(*) FROM transitions WHERE kind = 'ignored' "
                                               "AND port_in_request_sid = $1", sid)
    assert parked == MAX_PARKED_PER_REQUEST
    assert [r["event_id"] for r in refused] == [f"answer-{i}" for i in range(MAX_PARKED_PER_REQUEST, len(answers))]
    assert f"{MAX_PARKED_PER_REQUEST} events already wait for request {sid}" in refused[0]["error"]
    assert "redrive" in refused[0]["error"]
    # Settled once the request came: answers for a number not yet submitted are recorded as ignored.
    assert (left, ignored) == (0, MAX_PARKED_PER_REQUEST)


async def test_parking_one_more_event_for_a_request_reads_none_of_the_events_parked_before_it(settings, monkeypatch):
    """Parked events are read only when they may settle: their request arriving, or their watch
    firing. Every read of one is counted here."""
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    reads = []
    read = repository_module._parked
    monkeypatch.setattr(repository_module, "_parked", lambda fields: reads.append(fields["event_id"]) or read(fields))
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(cancel(sid))
        await workflow.feed_batch([record(settings, answered(sid, (US_NUMBER, CarrierOutcome.ACCEPTED)),
                                          event_id="answer-after")])
        parking_reads = list(reads)
        await workflow.feed(request)
        parked = await workflow.pool.fetchval("SELECT count(*) FROM parked_events")
    assert parking_reads == [], "parking the second read none"
    assert len(reads) == 2 and reads[1] == "answer-after" and parked == 0, "its request read both, once"


async def test_a_parked_event_the_contract_has_since_come_to_refuse_is_dead_lettered_and_its_request_goes_on(settings):
    """The contract tightens (a time zone the host decides, refused since): an event parked before
    must not fail its request's arrival."""
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(scheduled(sid, US_NUMBER, on=date(2027, 3, 2)))
        parked_id = await workflow.pool.fetchval("SELECT event_id FROM parked_events")
        await workflow.pool.execute("""UPDATE parked_events SET data = jsonb_set(data, '{time_zone}', '"localtime"')""")
        await workflow.feed(request)
        dead = await workflow.pool.fetch("SELECT event_id, error FROM dead_letters")
        left = await workflow.pool.fetchval("SELECT count(*) FROM parked_events")
        status = await workflow.status(sid)
        notes = await workflow.pool.fetch("SELECT reason_code FROM transitions WHERE kind = 'note'")
        watches = await workflow.pool.fetchval("SELECT count(*) FROM timers WHERE kind = 'parked_event_overdue'")
    assert status == ("in_review", {US_NUMBER: "in_review"})
    [(event_id, error)] = [tuple(d) for d in dead]
    assert event_id == parked_id
    assert "no longer passes the contract" in error and "unknown time zone 'localtime'" in error
    assert (left, watches) == (0, 0), "its watch stopped with it"
    assert [n["reason_code"] for n in notes] == ["PARKED_EVENT_DEAD_LETTERED"]


async def test_a_parked_event_the_contract_has_since_come_to_refuse_is_dead_lettered_when_its_watch_fires(settings):
    """Its request never came: it can never apply, so the watch dead-letters it (where the ops desk
    sees it and can redrive it) rather than finding nothing waiting and saying nothing."""
    sid = port_requested(US_NUMBER).port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(scheduled(sid, US_NUMBER, on=date(2027, 3, 2)))
        await workflow.pool.execute("""UPDATE parked_events SET data = jsonb_set(data, '{time_zone}', '"localtime"')""")
        workflow.clock.advance(timedelta(hours=25))
        fired = await workflow.fire_due_timers()
        dead = await workflow.pool.fetch("SELECT error FROM dead_letters")
        left = await workflow.pool.fetchval("SELECT count(*) FROM parked_events")
        failed = await workflow.pool.fetchval("SELECT count(*) FROM timers WHERE failed_at IS NOT NULL")
    assert fired == 1 and (left, failed) == (0, 0)
    assert [("unknown time zone 'localtime'" in d["error"]) for d in dead] == [True]
