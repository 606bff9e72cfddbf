"""The notifier on the real broker and PostgreSQL, with a real SMTP catcher and webhook receivers:
each step announced once, retries on durable timers, giving up with one alert, replays silent."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from standardwebhooks import Webhook
from typer.testing import CliRunner

from notifier import metrics
from notifier.adapters import store
from notifier.adapters.mail_catcher import catching_mail, read_mail
from notifier.adapters.templates import load_fix_advice
from notifier.domain.announcements import NotifierPolicy, announce
from notifier.entrypoints.cli import register
from notifier.service import NOTIFIER
from notifier.settings import NotifierSettings
from porting_runtime import MovableClock, RunningService, ServiceSettings
from porting_runtime.database import apply_migrations
from porting_runtime.metrics import OUTBOX_PUBLISHED
from schemas import PortAlertRaised, encode

from ..kafka_support import collect, committed_offsets, publish, running_service, wait_until
from ..unit.notifier.events import alert_raised, status_changed
from .test_notifier_support import (LOCAL_RECEIVER_SETTINGS, REFUSED_DOMAIN, refusing_catcher, signing_secret,
                                   silent_receiver, webhook_receiver)

OPS = "ops@carrier.example"
US = "+14155550100"
START = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


def notifier_settings(settings: ServiceSettings, smtp_port: int, secret: str, **overrides: Any) -> NotifierSettings:
    """The webhook receivers here are local: loopback over http is allowed, as `porting up` allows it."""
    fields = {**settings.model_dump(), "smtp_port": smtp_port, "webhook_signing_secret": secret,
              "ops_alert_emails": [OPS], "webhook_timeout_seconds": 0.5, "smtp_timeout_seconds": 5,
              **LOCAL_RECEIVER_SETTINGS, **overrides}
    return NotifierSettings(**fields)


def running_notifier(settings: NotifierSettings, clock: MovableClock,
                     ) -> contextlib.AbstractAsyncContextManager[RunningService]:
    return running_service(NOTIFIER, settings, serve_http=False, clock=clock, timer_poll_interval=0.2)


async def publish_events(settings: ServiceSettings, *events: Any) -> None:
    await publish(settings, [encode(e.data, source=e.attributes.source, event_id=e.attributes.id,
                                    topic=settings.topic(e.data.event_type)) for e in events])


async def rows(settings: ServiceSettings, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(settings.database_url)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def states(settings: ServiceSettings, sid: str) -> dict[str, str]:
    """Each notification of the request as its delivery id: 'kind recipient state'."""
    try:
        found = await rows(settings, """SELECT delivery_id, kind, recipient, state FROM notifications
                                        WHERE port_in_request_sid = $1""", sid)
    except asyncpg.UndefinedTableError:
        return {}
    return {r["delivery_id"]: r["state"] for r in found} | {
        f"{r['kind']} {r['recipient']}": r["state"] for r in found if r["kind"] in SINGLE_KINDS}


SINGLE_KINDS = {"routing_reminder", "PortInCompleted"}


async def test_a_port_from_request_to_completion_sends_one_email_and_signed_webhooks_per_step(settings, tmp_path):
    secret, clock = signing_secret(), MovableClock(START)
    sid_fields = status_changed(None, "in_review").data
    steps = [
        (None, "in_review", [(US, None, "in_review")], {}),
        ("in_review", "in_progress", [(US, "in_review", "port_submitted")], {}),
        ("in_progress", "action_required", None, {"phone_numbers": [
            {"phone_number": US, "status_from": "port_submitted", "status_to": "port_rejected",
             "reason_code": "INVALID_PIN", "reason": "PIN mismatch"}]}),
        ("action_required", "in_review", [(US, "port_rejected", "in_review")], {}),
        ("in_review", "in_progress", [(US, "in_review", "port_submitted")], {}),
        ("in_progress", "in_progress", [(US, "port_submitted", "port_pending")], {}),
        ("in_progress", "in_progress", [(US, "port_pending", "scheduled")], {"port_date": "2027-03-02"}),
    ]
    async with catching_mail(tmp_path / "mail") as smtp_port, webhook_receiver() as receiver:
        events = [status_changed(f, t, n, port_in_request_sid=sid_fields.port_in_request_sid,
                                 account_sid=sid_fields.account_sid, webhook_url=receiver.url,
                                 changed_at=START.isoformat(), **extra) for f, t, n, extra in steps]
        async with running_notifier(notifier_settings(settings, smtp_port, secret), clock):
            await publish_events(settings, *events)
            await wait_until(lambda: _all_delivered(settings, sid_fields.port_in_request_sid, expect=7 + 12),
                             what="every step's e-mail and webhooks delivered")
            assert (await states(settings, sid_fields.port_in_request_sid))[
                "routing_reminder ada@example.com"] == "scheduled"
            clock.set(datetime(2027, 2, 28, 9, 1, tzinfo=UTC))  # the morning two days before the port date
            await wait_until(lambda: _mail_with(tmp_path, "Reminder: configure voice and SMS routing"),
                             what="the routing reminder")
            completed = status_changed("in_progress", "completed", [(US, "scheduled", "completed")],
                                       port_in_request_sid=sid_fields.port_in_request_sid,
                                       account_sid=sid_fields.account_sid, webhook_url=receiver.url)
            await publish_events(settings, completed)
            await wait_until(lambda: _mail_with(tmp_path, "Your port is complete"), what="the completion e-mail")
            await wait_until(lambda: _all_delivered(settings, sid_fields.port_in_request_sid, expect=7 + 12 + 1 + 1 + 2))
    subjects = [m.subject for m in read_mail(tmp_path / "mail")]
    assert subjects == [
        "We received your port-in request",
        "Your port-in request was approved and submitted to your carrier",
        "Action required: your carrier rejected the port of some numbers",
        "We received your corrected port-in request",
        "Your port-in request was approved and submitted to your carrier",
        "Your carrier accepted the port of your numbers",
        "Your port date: Tuesday 2 March 2027",
        "Reminder: configure voice and SMS routing before your port on Tuesday 2 March 2027",
        "Your port is complete",
    ]
    types = [json.loads(call.body)["type"] for call in receiver.calls]
    assert types.count("PortInActionRequired") == 1 and types.count("PortInPhoneNumberRejected") == 1
    assert set(types[-2:]) == {"PortInCompleted", "PortInPhoneNumberCompleted"}
    assert len({call.headers["webhook-id"] for call in receiver.calls}) == len(receiver.calls) == 14
    verifier = Webhook(secret)
    for call in receiver.calls:
        assert verifier.verify(call.body, call.headers)["data"]["port_in_request_sid"] == sid_fields.port_in_request_sid


async def _all_delivered(settings: ServiceSettings, sid: str, *, expect: int) -> bool:
    found = await states(settings, sid)
    return sum(state == "delivered" for key, state in found.items() if key.startswith("msg_")) == expect


async def _mail_with(tmp_path: Path, subject: str) -> bool:
    return any(m.subject.startswith(subject) for m in read_mail(tmp_path / "mail"))


async def attempts_of(settings: ServiceSettings, sid: str) -> list[asyncpg.Record]:
    return await rows(settings, """SELECT a.attempt, a.outcome, a.status_code FROM delivery_attempts a
                                   JOIN notifications n USING (delivery_id) WHERE n.port_in_request_sid = $1
                                   ORDER BY a.attempt""", sid)


async def test_a_receiver_answering_500_twice_gets_the_webhook_on_the_third_attempt_with_every_attempt_kept(settings, tmp_path):
    secret, clock = signing_secret(), MovableClock(START)
    async with catching_mail(tmp_path / "mail") as smtp_port, webhook_receiver([500, 500, 200]) as receiver:
        event = status_changed("in_progress", "completed", [], webhook_url=receiver.url, notification_emails=[])
        sid = event.data.port_in_request_sid
        sent_before = metrics.SENT.labels("webhook")._value.get()  # noqa: SLF001
        retried_before = metrics.FAILED_ATTEMPTS.labels("webhook", "true")._value.get()  # noqa: SLF001
        async with running_notifier(notifier_settings(settings, smtp_port, secret), clock):
            await publish_events(settings, event)
            for made in (1, 2):
                await wait_until(lambda made=made: _attempts_are(settings, sid, made), what=f"attempt {made}")
                assert len(receiver.calls) == made
                clock.advance(timedelta(minutes=5))  # past the retry's backoff, without waiting for it
            await wait_until(lambda: _all_delivered(settings, sid, expect=1), what="the third attempt delivered")
    assert [(r["attempt"], r["outcome"], r["status_code"]) for r in await attempts_of(settings, sid)] == [
        (1, "retryable", 500), (2, "retryable", 500), (3, "delivered", 200)]
    assert [c.answered for c in receiver.calls] == [500, 500, 200]
    assert metrics.SENT.labels("webhook")._value.get() == sent_before + 1  # noqa: SLF001
    assert metrics.FAILED_ATTEMPTS.labels("webhook", "true")._value.get() == retried_before + 2  # noqa: SLF001
    assert len({c.headers["webhook-id"] for c in receiver.calls}) == 1, "one delivery, one id, every attempt"
    assert Webhook(secret).verify(receiver.calls[-1].body, receiver.calls[-1].headers)["type"] == "PortInCompleted"
    app = _cli()
    # The command runs its own event loop, as it does from a shell.
    shown = await asyncio.to_thread(CliRunner().invoke, app, ["notifications", sid, "--database-url",
                                                            settings.database_url], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("HTTP 500") == 2 and "HTTP 200" in shown.output and "PortInCompleted" in shown.output
    listed = await asyncio.to_thread(CliRunner().invoke, app,
                                     ["notifications", sid, "--json", "--database-url", settings.database_url])
    [webhook] = json.loads(listed.output)
    assert [a["outcome"] for a in webhook["attempts"]] == ["retryable", "retryable", "delivered"]


async def _attempts_are(settings: ServiceSettings, sid: str, count: int) -> bool:
    try:
        return len(await attempts_of(settings, sid)) == count and \
            await _state_is(settings, sid, "retrying")
    except asyncpg.UndefinedTableError:
        return False


def _cli() -> Any:
    import typer

    app = typer.Typer()
    register(app)
    return app


async def test_a_receiver_that_never_answers_leads_to_one_delivery_gave_up_alert_to_ops(settings, tmp_path):
    """Two requests' webhooks to one receiver that accepts connections and never answers: each
    delivery is given up and kept, and ops gets one alert for the receiver, not one per delivery."""
    secret, clock = signing_secret(), MovableClock(START)
    async with catching_mail(tmp_path / "mail") as smtp_port, silent_receiver() as receiver:
        first = status_changed("in_progress", "completed", [(US, "scheduled", "completed")],
                               webhook_url=receiver.url, notification_emails=[])
        second = status_changed("in_progress", "completed", [], webhook_url=receiver.url, notification_emails=[])
        sids = [first.data.port_in_request_sid, second.data.port_in_request_sid]
        async with running_notifier(notifier_settings(settings, smtp_port, secret), clock):
            await publish_events(settings, first, second)
            await wait_until(lambda: _attempts_are(settings, sids[0], 2), what="the first request's first attempts")
            await wait_until(lambda: _attempts_are(settings, sids[1], 1), what="the second request's first attempt")
            await wait_until(lambda: _gauge_at_least(metrics.PENDING, "webhook", 3), what="the pending gauge")
            clock.advance(timedelta(hours=2))
            await wait_until(lambda: _gauge_at_least(metrics.OLDEST_PENDING, "webhook", 7200), what="the oldest pending age")
            clock.advance(timedelta(hours=23))  # past the 24 h give-up time
            await wait_until(lambda: _all_in_state(settings, sids, "gave_up", 3), what="every delivery given up")
            await wait_until(lambda: _mail_with(tmp_path, "[porting alert]"), what="the ops alert e-mail")
            alerts = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=1, settle=1.5)
    [alert] = [json.loads(r.value) for r in alerts]
    assert alert["alert"] == "delivery_gave_up" and alert["port_in_request_sid"] in sids
    assert "given up after 3 attempts" in alert["message"] and "without another alert" in alert["message"]
    [ops_mail] = [m for m in read_mail(tmp_path / "mail") if m.subject.startswith("[porting alert]")]
    assert ops_mail.recipients == OPS and "could not be delivered" in ops_mail.subject
    assert receiver.connections == 3 * 3
    [outage] = await rows(settings, "SELECT * FROM unreachable_recipients WHERE recipient = $1", receiver.url)
    assert outage["undelivered"] == 3 and outage["alerted_delivery_id"] in alert["message"]


async def _all_in_state(settings: ServiceSettings, sids: list[str], state: str, count: int) -> bool:
    """The requests' `count` webhooks are all in `state` (the ops alert is an e-mail of a request too)."""
    found = await rows(settings, """SELECT state FROM notifications
                                    WHERE channel = 'webhook' AND port_in_request_sid = ANY ($1::text[])""", sids)
    return len(found) == count and all(r["state"] == state for r in found)


async def _gauge_at_least(gauge: Any, channel: str, value: float) -> bool:
    return gauge.labels(channel)._value.get() >= value  # noqa: SLF001


async def test_an_ops_alert_refused_for_good_is_counted_and_logged_but_never_alerted_again(settings, tmp_path):
    clock = MovableClock(START)
    refused_ops = f"ops@{REFUSED_DOMAIN}"
    before = metrics.FAILED.labels("email", "ops")._value.get()  # noqa: SLF001
    published_before = OUTBOX_PUBLISHED.labels("notifier")._value.get()  # noqa: SLF001
    async with refusing_catcher(tmp_path / "mail") as smtp_port:
        event = alert_raised("port_date_overdue")
        async with running_notifier(notifier_settings(settings, smtp_port, signing_secret(),
                                                      ops_alert_emails=[refused_ops]), clock):
            await publish_events(settings, event)
            await wait_until(lambda: _state_is(settings, event.data.port_in_request_sid, "failed"),
                             what="the ops e-mail refused")
    # The transaction that recorded the refusal published nothing: no alert about the alert,
    # neither waiting in the outbox nor sent (the relay deletes what the broker acknowledged).
    assert (await rows(settings, "SELECT count(*) AS n FROM outbox"))[0]["n"] == 0
    assert OUTBOX_PUBLISHED.labels("notifier")._value.get() == published_before  # noqa: SLF001
    assert metrics.FAILED.labels("email", "ops")._value.get() == before + 1  # noqa: SLF001


async def _state_is(settings: ServiceSettings, sid: str, state: str) -> bool:
    found = await states(settings, sid)
    return bool(found) and all(s == state for key, s in found.items() if key.startswith("msg_"))


async def test_replaying_the_input_topics_from_the_start_sends_nothing_twice(settings, tmp_path):
    secret, clock = signing_secret(), MovableClock(START)
    async with catching_mail(tmp_path / "mail") as smtp_port, webhook_receiver() as receiver:
        events = [status_changed(None, "in_review", [(US, None, "in_review")], webhook_url=receiver.url)
                  for _ in range(5)] + [alert_raised()]
        first = notifier_settings(settings, smtp_port, secret)
        async with running_notifier(first, clock):
            await publish_events(settings, *events)
            await wait_until(lambda: _count(settings, "delivered", 5 * 3 + 1), what="all delivered")
        mails, calls = len(read_mail(tmp_path / "mail")), len(receiver.calls)
        # The same events again (a producer's retry), then a fresh consumer group reading every
        # topic from offset zero: the inbox and the delivery ids both stop a second send.
        await publish_events(settings, *events)
        # As if the inbox had been cleaned up: only the delivery ids stand between a replay and a resend.
        await rows(settings, "DELETE FROM inbox")
        replay = first.model_copy(update={"consumer_group_prefix": first.consumer_group_prefix + "replay."})
        async with running_notifier(replay, clock):
            topic = settings.topic("porting.port-status-changed.v1")
            await wait_until(lambda: _consumed(replay, topic, 10), what="the replay consumed both copies")
            alert_topic = settings.topic(PortAlertRaised.event_type)
            await wait_until(lambda: _consumed(replay, alert_topic, 2), what="the replayed alerts consumed")
    assert (mails, calls) == (5 + 1, 5 * 2)
    assert len(read_mail(tmp_path / "mail")) == mails and len(receiver.calls) == calls
    assert await _count(settings, None, 5 * 3 + 1)


async def _count(settings: ServiceSettings, state: str | None, expected: int) -> bool:
    try:
        found = await rows(settings, "SELECT count(*) AS n FROM notifications WHERE $1::text IS NULL OR state = $1", state)
    except asyncpg.UndefinedTableError:
        return False
    return found[0]["n"] == expected


async def _consumed(settings: ServiceSettings, topic: str, end: int) -> bool:
    offsets = await committed_offsets(settings, "notifier", topic)
    return sum(o or 0 for o in offsets.values()) >= end



async def test_a_canceled_port_withdraws_its_pending_routing_reminder_whether_in_the_same_batch_or_later(settings, tmp_path):
    clock = MovableClock(START)
    async with catching_mail(tmp_path / "mail") as smtp_port:
        later, together = status_changed(None, "in_review").data, status_changed(None, "in_review").data

        def schedule(request):
            return status_changed("in_progress", "in_progress", [(US, "port_pending", "scheduled")], port_date="2027-03-02",
                                  port_in_request_sid=request.port_in_request_sid, account_sid=request.account_sid,
                                  webhook_url=None)

        def cancel(request):
            return status_changed("in_progress", "canceled", [(US, "scheduled", "canceled")],
                                  port_in_request_sid=request.port_in_request_sid, account_sid=request.account_sid,
                                  webhook_url=None)

        async with running_notifier(notifier_settings(settings, smtp_port, signing_secret()), clock) as service:
            await publish_events(settings, schedule(later))
            await wait_until(lambda: _reminder_is(settings, later.port_in_request_sid, "scheduled"))
            assert await _reminder_timers(service) == 1
            await publish_events(settings, cancel(later), schedule(together), cancel(together))
            await wait_until(lambda: _reminder_is(settings, later.port_in_request_sid, "withdrawn"))
            await wait_until(lambda: _reminder_is(settings, together.port_in_request_sid, "withdrawn"))
            assert await _reminder_timers(service) == 0, "the withdrawn reminders' timers are cancelled"
            clock.set(datetime(2027, 2, 28, 9, 1, tzinfo=UTC))
            await wait_until(lambda: _count(settings, "delivered", 4), what="the four step e-mails")
    assert not [m for m in read_mail(tmp_path / "mail") if m.subject.startswith("Reminder")]


async def _reminder_is(settings: ServiceSettings, sid: str, state: str) -> bool:
    try:
        found = await rows(settings, "SELECT state FROM notifications WHERE port_in_request_sid = $1 "
                                     "AND kind = 'routing_reminder'", sid)
    except asyncpg.UndefinedTableError:
        return False
    return [r["state"] for r in found] == [state]


async def _reminder_timers(service: RunningService) -> int:
    return await service.pool.fetchval("SELECT count(*) FROM timers WHERE kind = 'routing_reminder'")


async def test_a_send_cut_off_by_a_stopped_sender_is_resent_once_its_lease_runs_out_under_the_same_id(settings, tmp_path):
    secret, clock = signing_secret(), MovableClock(START)
    async with catching_mail(tmp_path / "mail") as smtp_port, webhook_receiver() as receiver:
        event = status_changed("in_progress", "completed", [], webhook_url=receiver.url, notification_emails=[])
        sid = event.data.port_in_request_sid
        [webhook] = announce(event, NotifierPolicy(ops_alert_emails=(), advice=load_fix_advice())).notifications
        # An instance recorded the webhook and claimed it, then died before it learned the outcome.
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            await apply_migrations(pool, "notifier", NOTIFIER.migrations)
            async with pool.acquire() as connection:
                await store.record(connection, [store.ToRecord(webhook, "pending", START)], START)
                [claimed] = await store.claim(connection, "webhook", 1, START, timedelta(minutes=5))
        finally:
            await pool.close()
        clock.advance(timedelta(minutes=6))  # its lease has run out
        async with running_notifier(notifier_settings(settings, smtp_port, secret), clock):
            await wait_until(lambda: _all_delivered(settings, sid, expect=1), what="resent after the lease ran out")
    assert [(r["attempt"], r["outcome"]) for r in await attempts_of(settings, sid)] == [(1, "interrupted"), (2, "delivered")]
    assert len(receiver.calls) == 1 and receiver.calls[0].headers["webhook-id"] == claimed.delivery_id == webhook.delivery_id
