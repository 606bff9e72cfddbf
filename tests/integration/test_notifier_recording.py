"""Recording in the consuming transaction, on a real PostgreSQL without a broker: each
(event, channel, recipient) once, reminders withdrawn when moot, even inside one batch."""

from __future__ import annotations

from datetime import UTC, datetime

from notifier.service import NOTIFIER
from notifier.settings import NotifierSettings
from porting_runtime import MovableClock

from ..handler_support import handler_harness
from ..unit.notifier.events import alert_raised, status_changed

US = "+14155550100"
START = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


def notifier_settings(settings):
    return NotifierSettings(**settings.model_dump(), ops_alert_emails=["ops@carrier.example"])


def scheduled(first, **fields):
    return status_changed("in_progress", "in_progress", [(US, "port_pending", "scheduled")], port_date="2027-03-02",
                          port_in_request_sid=first.port_in_request_sid, account_sid=first.account_sid, **fields).data


def canceled(first):
    return status_changed("in_progress", "canceled", [(US, "scheduled", "canceled")],
                          port_in_request_sid=first.port_in_request_sid, account_sid=first.account_sid).data


async def reminders(harness, sid):
    return [(r["state"], r["timers"]) for r in await harness.pool.fetch(
        """SELECT n.state, (SELECT count(*) FROM timers t WHERE t.key = n.delivery_id) AS timers
           FROM notifications n WHERE n.port_in_request_sid = $1 AND n.kind = 'routing_reminder'""", sid)]


async def test_each_event_records_its_notifications_once_and_a_new_schedule_replaces_the_older_reminder(settings):
    async with handler_harness(NOTIFIER, notifier_settings(settings), MovableClock(START)) as harness:
        first = status_changed(None, "in_review").data
        event = scheduled(first)
        await harness.handle(event)
        record = harness.record(event)
        await harness.handle(record, record)  # the same event twice in one batch: the inbox keeps one
        counts = await harness.pool.fetch("SELECT channel, state, count(*) AS n FROM notifications "
                                          "GROUP BY channel, state ORDER BY channel, state")
        assert [(r["channel"], r["state"], r["n"]) for r in counts] == [
            ("email", "pending", 2), ("email", "scheduled", 1), ("email", "withdrawn", 1), ("webhook", "pending", 2)]
        assert sorted(await reminders(harness, first.port_in_request_sid)) == [("scheduled", 1), ("withdrawn", 0)]


async def test_a_reminder_made_moot_later_is_withdrawn_with_its_timer(settings):
    async with handler_harness(NOTIFIER, notifier_settings(settings), MovableClock(START)) as harness:
        first = status_changed(None, "in_review").data
        await harness.handle(scheduled(first))
        await harness.handle(canceled(first))
        assert await reminders(harness, first.port_in_request_sid) == [("withdrawn", 0)]


async def test_a_reminder_made_moot_within_the_same_batch_is_recorded_withdrawn_and_never_timed(settings):
    async with handler_harness(NOTIFIER, notifier_settings(settings), MovableClock(START)) as harness:
        first, other = status_changed(None, "in_review").data, status_changed(None, "in_review").data
        await harness.handle(scheduled(first), canceled(first), scheduled(other))
        assert await reminders(harness, first.port_in_request_sid) == [("withdrawn", 0)]
        assert await reminders(harness, other.port_in_request_sid) == [("scheduled", 1)]


async def test_a_reminder_fires_into_the_sender_queue_when_its_date_comes(settings):
    clock = MovableClock(START)
    async with handler_harness(NOTIFIER, notifier_settings(settings), clock) as harness:
        first = status_changed(None, "in_review").data
        await harness.handle(scheduled(first))
        assert await harness.fire_due_timers() == 0
        clock.set(datetime(2027, 2, 28, 9, 0, tzinfo=UTC))
        assert await harness.fire_due_timers() == 1
        assert await reminders(harness, first.port_in_request_sid) == [("pending", 0)]


async def test_an_alert_is_recorded_for_the_ops_desk_only(settings):
    async with handler_harness(NOTIFIER, notifier_settings(settings), MovableClock(START)) as harness:
        await harness.handle(alert_raised().data)
        rows = await harness.pool.fetch("SELECT audience, channel, recipient, kind FROM notifications")
        assert [tuple(r.values()) for r in rows] == [("ops", "email", "ops@carrier.example", "ops_alert")]
