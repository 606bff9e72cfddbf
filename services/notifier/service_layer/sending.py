"""The sender: takes committed notifications, sends them, keeps every attempt, retries, gives up.

A notification is claimed (a committed attempt with a lease) before it is sent, and its outcome
is recorded after, so the notifier always knows what it sent: a delivered notification is never
sent again. A sender that stops mid-send leaves a lease that runs out; the next sender records
that attempt as interrupted and sends again, with the same delivery id, so the receiver can
tell. Sends run concurrently, bounded per channel; outcomes are recorded in batches. A
retryable failure waits on a durable timer; past the give-up time (or refused for good) a
customer delivery raises PortAlertRaised(delivery_gave_up) for the ops desk, once per
recipient's outage (domain/outages.py), while an ops delivery that fails is logged and counted
only, so an alert never begets another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from porting_runtime import BackgroundContext
from porting_runtime.database import connect
from porting_runtime.failures import Backoff, describe, is_transient
from porting_runtime.logs import get_logger
from schemas import AlertKind, PortAlertRaised

from .. import metrics
from ..adapters import store
from ..adapters.smtp import SmtpSender
from ..adapters.templates import EmailTemplates, TemplateProblem, UnsendableRecipient, compose
from ..adapters.webhook_client import WebhookClient
from ..domain.attempts import AttemptResult, Outcome, RetryPolicy
from ..domain.outages import REMINDER_EVERY, Ended, outage_changes
from ..domain.webhooks import webhook_bytes
from ..settings import NotifierSettings
from .recording import DELIVERY_RETRY

log = get_logger(__name__)
POLL_SECONDS = 2.0
# Outcomes of sends finishing within this long of each other are recorded in one transaction.
COALESCE_SECONDS = 0.01
GAUGE_SECONDS = 5.0
DRAIN_SECONDS = 15.0
UNRECORDED_ROOM = 4


def claim_room(limit: int, sending: int, unrecorded: int) -> int:
    """How many notifications of a channel to claim now. At most `limit` send at once and as many
    again wait, claimed ahead, so a send never waits for a database round trip. Claimed and not
    yet recorded (`unrecorded`: sending, or sent with the outcome unrecorded) stops at
    UNRECORDED_ROOM times the limit: a recorder that falls behind slows the claims instead of
    leaving ever more notifications in 'sending' (make bench saw 3,437, each claim slower)."""
    return min(2 * limit - sending, UNRECORDED_ROOM * limit - unrecorded)


class DeliverySender:
    """A background loop of the notifier service (see ServiceDefinition.background)."""

    __name__ = "delivery-sender"

    def __init__(self, templates: EmailTemplates | None = None) -> None:
        self.templates = templates or EmailTemplates()

    async def __call__(self, context: BackgroundContext) -> None:
        run = _SenderRun(self.templates, context)
        try:
            await run.loop()
        finally:
            await run.close()


class _SenderRun:
    """One run of the loop, with its connections; the runtime restarts a failed run."""

    def __init__(self, templates: EmailTemplates, context: BackgroundContext) -> None:
        settings: NotifierSettings = context.settings
        self.templates, self.context = templates, context
        self.pool, self.settings, self.stopping, self.clock = context.pool, settings, context.stopping, context.clock
        self.wake = asyncio.Event()
        self.clock.subscribe(self.wake)  # a test moving the clock wakes the sender too
        self.retry: RetryPolicy = settings.retry_policy()
        self.limits = {"email": settings.email_send_concurrency, "webhook": settings.webhook_send_concurrency}
        self.lease = timedelta(seconds=2 * max(settings.smtp_timeout_seconds, settings.webhook_timeout_seconds) + 60)
        secret = settings.webhook_signing_secret.get_secret_value() if settings.webhook_signing_secret else None
        if secret is None:
            log.error("WEBHOOK_SIGNING_SECRET is not set: webhooks wait, unsent, until it is")
        self.smtp = SmtpSender(
            host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls, timeout_seconds=settings.smtp_timeout_seconds,
            connections=settings.email_send_concurrency)
        self.webhooks = WebhookClient(secret, timeout_seconds=settings.webhook_timeout_seconds,
                                      max_connections=settings.webhook_send_concurrency,
                                      targets=settings.webhook_targets())
        # Each claimed notification is a task; at most `limit` per channel send at once, and up
        # to as many again wait, claimed ahead, so a send never waits for a database round trip.
        self.slots = {channel: asyncio.Semaphore(limit) for channel, limit in self.limits.items()}
        self.in_flight: dict[asyncio.Task[None], str] = {}
        self.finished: list[store.Finished] = []  # sent, the outcome not yet recorded
        self.recording: list[store.Finished] = []  # the outcomes being recorded now
        self.outcomes = asyncio.Event()
        self.gauges_at = 0.0
        # Channels that may have something to claim: named by a NOTIFY, freed by an outcome (the
        # next e-mail to a recipient), left with more after a full claim, or every POLL_SECONDS.
        # A claim costs a round trip and a query; one per wake-up on a channel with nothing due
        # (webhooks, when no request names a URL) was as many claims as e-mails.
        self.maybe_due = set(self.limits)
        self.polled_at = time.monotonic()

    async def loop(self) -> None:
        listener = await connect(self.settings.database_url)
        recorder = asyncio.create_task(self.record_outcomes(), name="notifier-outcomes")
        try:
            await listener.add_listener(store.DUE_CHANNEL, self._notified)
            while not self.stopping.is_set():
                if recorder.done():
                    recorder.result()  # its failure is this run's: the runtime restarts both
                self.wake.clear()
                try:
                    more = await self.claim_and_send()
                    await self.refresh_gauges()
                except Exception as error:
                    if not is_transient(error):
                        raise
                    # Sends in flight go on; only new claims wait for the database.
                    log.warning("claiming deliveries failed; retrying", error=describe(error))
                    more = False
                if not more:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake_or_stop(), POLL_SECONDS)
            await self.drain()
        finally:
            recorder.cancel()
            with contextlib.suppress(Exception):
                await listener.close()

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        named = {channel for channel in payload.split(",") if channel in self.limits}
        self.maybe_due |= named or set(self.limits)  # an empty payload: every channel
        self.wake.set()

    async def _wake_or_stop(self) -> None:
        stop = asyncio.ensure_future(self.stopping.wait())
        wake = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    async def claim_and_send(self) -> bool:
        """Claim enough to keep every channel busy; True when a channel had more due than room."""
        more = False
        now = self.clock.now()
        if time.monotonic() - self.polled_at >= POLL_SECONDS:
            # Leases run out and clocks move without a NOTIFY: every channel is looked at now and then.
            self.maybe_due, self.polled_at = set(self.limits), time.monotonic()
        for channel, limit in self.limits.items():
            if channel not in self.maybe_due:
                continue
            sending = sum(1 for c in self.in_flight.values() if c == channel)
            sent = sum(1 for done in (*self.finished, *self.recording) if done.claimed.channel == channel)
            room = claim_room(limit, sending, sending + sent)
            # Refill in batches (half the room at least), not one claim per finished send.
            if room < max(1, limit // 2):
                continue
            self.maybe_due.discard(channel)
            try:
                async with self.pool.acquire() as connection:
                    claimed = await store.claim(connection, channel, room, now, self.lease)
            except BaseException:
                self.maybe_due.add(channel)
                raise
            if len(claimed) == room:
                self.maybe_due.add(channel)
            more = more or len(claimed) == room
            for item in claimed:
                task = asyncio.create_task(self.deliver(item), name=f"deliver-{item.delivery_id}")
                self.in_flight[task] = channel
                task.add_done_callback(self._done)
        return more and not self.stopping.is_set()

    def _done(self, task: asyncio.Task[None]) -> None:
        self.in_flight.pop(task, None)
        self.outcomes.set()
        self.wake.set()

    async def record_outcomes(self) -> None:
        """Outcomes are recorded in batches, beside the sends: the next of a recipient's
        notifications becomes claimable once its predecessor's outcome is recorded."""
        backoff = Backoff(maximum=10.0)
        while True:
            await self.outcomes.wait()
            self.outcomes.clear()
            await asyncio.sleep(COALESCE_SECONDS)  # let sends finishing together share a transaction
            try:
                await self.record_finished()
            except Exception as error:
                if not is_transient(error):
                    raise
                # The outcomes are kept; sends already made must not be lost to a database blip
                # (a restart would resend them once their leases ran out).
                log.warning("recording delivery outcomes failed; retrying", error=describe(error))
                self.outcomes.set()
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            self.wake.set()

    async def deliver(self, item: store.Claimed) -> None:
        async with self.slots[item.channel]:
            await self._attempt(item)

    async def _attempt(self, item: store.Claimed) -> None:
        started, began = self.clock.now(), time.monotonic()
        try:
            result = await self.send(item)
        except Exception as error:  # a fault of ours must cost a retry, never the notification
            log.exception("delivery attempt failed unexpectedly", delivery_id=item.delivery_id)
            result = AttemptResult(Outcome.RETRYABLE, f"notifier error: {type(error).__name__}")
        metrics.SEND_SECONDS.labels(item.channel).observe(time.monotonic() - began)
        self.finished.append(self.decide(item, result, started, self.clock.now()))

    async def send(self, item: store.Claimed) -> AttemptResult:
        if item.channel == "webhook":
            return await self.webhooks.post(item.recipient, item.delivery_id, webhook_bytes(item.payload))
        try:
            rendered = self.templates.render(item.kind, item.payload)
        except TemplateProblem as problem:
            # A broken template is fixed by ops and a restart; until then the e-mail waits.
            log.error("e-mail template cannot be rendered", kind=item.kind, problem=str(problem))
            return AttemptResult(Outcome.RETRYABLE, f"template problem: {problem}"[:500])
        try:
            message = compose(rendered, delivery_id=item.delivery_id, sender=self.settings.notifier_from_address,
                              recipient=item.recipient, sent_at=datetime.now(UTC),
                              port_in_request_sid=item.port_in_request_sid)
        except UnsendableRecipient as refused:
            # No retry makes it deliverable: final, with the reason (as a server's 5xx refusal is).
            return AttemptResult(Outcome.FAILED, f"recipient refused before sending: {refused}"[:500])
        return await self.smtp.send(message)

    def decide(self, item: store.Claimed, result: AttemptResult, started: datetime,
               finished: datetime) -> store.Finished:
        if result.outcome is Outcome.DELIVERED:
            return store.Finished(item, result, started, finished, "delivered")
        if result.outcome is Outcome.FAILED:
            return store.Finished(item, result, started, finished, "failed")
        next_at = self.retry.next_attempt(item.delivery_id, attempts_made=item.attempt, recorded_at=item.ready_at,
                                          now=finished, retry_after=result.retry_after)
        if next_at is None:
            return store.Finished(item, result, started, finished, "gave_up")
        return store.Finished(item, result, started, finished, "retrying", next_at)

    async def record_finished(self) -> None:
        if not self.finished:
            return
        batch, self.finished = self.finished, []
        self.recording = batch
        try:
            if not any(self.needs_unit(done) for done in batch):
                # The usual batch, all delivered (or ops failures, only counted): its one statement
                # is atomic alone, so no transaction around it (BEGIN, COMMIT: two round trips fewer).
                moved = await store.finish(self.pool, batch, self.clock.now())
            else:
                # With a failure in the batch, outages change in its time order (change_outages);
                # otherwise its deliveries end theirs within finish's one statement.
                failing = any(self.ends_undelivered(done) for done in batch)
                async with self.context.unit() as unit:
                    moved = await store.finish(unit.connection, batch, unit.now(), ending_outages=not failing)
                    alerting: dict[str, store.Outage] = {}
                    if failing:
                        ends = [Ended(done.claimed.channel, done.claimed.recipient, done.claimed.delivery_id,
                                      done.state == "delivered", done.finished_at)
                                for done in batch if done.state == "delivered" or (
                                    done.claimed.delivery_id in moved and self.ends_undelivered(done))]
                        alerting = await store.change_outages(unit.connection, outage_changes(ends), unit.now())
                    for done in batch:
                        if done.claimed.delivery_id not in moved:
                            continue
                        if done.state == "retrying":
                            unit.schedule(DELIVERY_RETRY, key=done.claimed.delivery_id, due_at=done.next_attempt_at)
                        elif done.claimed.delivery_id in alerting:
                            unit.publish(self.alert(done, alerting[done.claimed.delivery_id], unit.now()))
        except Exception:
            # Kept for the next turn (the database may be back by then); the leases cover a crash.
            self.finished = batch + self.finished
            raise
        finally:
            self.recording = []
        # A recorded outcome lets the recipient's next e-mail be claimed: its channel is looked at.
        self.maybe_due |= {done.claimed.channel for done in batch}
        for done in batch:
            if done.claimed.delivery_id in moved:
                self.count(done)

    @classmethod
    def needs_unit(cls, done: store.Finished) -> bool:
        """A retry timer or an alert must commit with the outcome, in the unit's transaction."""
        return done.state == "retrying" or cls.ends_undelivered(done)

    @staticmethod
    def ends_undelivered(done: store.Finished) -> bool:
        """A customer delivery ended undelivered: ops hears of it, once per recipient's outage
        (domain/outages.py). An ops delivery never alerts (an alert must not beget another)."""
        return done.state in ("failed", "gave_up") and done.claimed.audience == "customer"

    def alert(self, done: store.Finished, outage: store.Outage, now: datetime) -> PortAlertRaised:
        item = done.claimed
        why = ("it was refused for good" if done.state == "failed"
               else f"it was given up after {item.attempt} attempts in {self.settings.delivery_give_up_hours:g} h")
        # The pointers first: a receiver's long URL or reply cannot cut them off the end.
        opening = (f"{'Reminder: the' if outage.reminder else 'The'} {item.channel} recipient "
                   f"{_shown(item.recipient)} is not taking deliveries: {outage.undelivered} ended undelivered "
                   f"since {outage.began_at:%Y-%m-%d %H:%M:%S} UTC. The {'latest' if outage.reminder else 'first'}:")
        message = (f"{opening} notification {item.kind} for request {item.port_in_request_sid} (delivery "
                   f"{item.delivery_id}) was not delivered: {why}. Every attempt: porting notifications "
                   f"{item.port_in_request_sid}. Until this recipient takes a delivery again, more that fail are "
                   f"kept and counted without another alert for {REMINDER_EVERY.total_seconds() / 3600:g} h. "
                   f"Last attempt: {done.result.detail}")
        return PortAlertRaised(port_in_request_sid=item.port_in_request_sid, alert=AlertKind.DELIVERY_GAVE_UP,
                               message=message[:2000], phone_numbers=list(item.phone_numbers), raised_at=now)

    def count(self, done: store.Finished) -> None:
        channel, audience = done.claimed.channel, done.claimed.audience
        if done.state == "delivered":
            metrics.SENT.labels(channel).inc()
            return
        metrics.FAILED_ATTEMPTS.labels(channel, str(done.state == "retrying").lower()).inc()
        if done.state == "failed":
            metrics.FAILED.labels(channel, audience).inc()
        elif done.state == "gave_up":
            metrics.GAVE_UP.labels(channel, audience).inc()
        if done.state in ("failed", "gave_up"):
            # An ops alert that cannot be delivered is logged and counted, never alerted again.
            log.error("delivery not delivered", delivery_id=done.claimed.delivery_id, state=done.state,
                      channel=channel, audience=audience, kind=done.claimed.kind,
                      port_in_request_sid=done.claimed.port_in_request_sid, detail=done.result.detail)

    async def refresh_gauges(self) -> None:
        if time.monotonic() - self.gauges_at < GAUGE_SECONDS:
            return
        self.gauges_at = time.monotonic()
        unfinished = await store.unfinished_by_channel(self.pool)
        now = self.clock.now()
        for channel in self.limits:
            waiting, oldest = unfinished.get(channel, (0, None))
            metrics.PENDING.labels(channel).set(waiting)
            metrics.OLDEST_PENDING.labels(channel).set(max(0.0, (now - oldest).total_seconds()) if oldest else 0)

    async def drain(self) -> None:
        """On shutdown: let sends in flight finish (bounded by their timeouts) and keep their outcomes."""
        if self.in_flight:
            await asyncio.wait(list(self.in_flight), timeout=DRAIN_SECONDS)
        await self.record_finished()

    async def close(self) -> None:
        self.clock.unsubscribe(self.wake)
        for task in list(self.in_flight):
            task.cancel()  # its lease runs out; the next sender resends it as the same delivery
        await self.smtp.close()
        await self.webhooks.close()


def _shown(recipient: str) -> str:
    """A webhook URL's query may hold the receiver's token: the alert shows scheme, host and path
    (a long path shortened, so the alert keeps room for what follows it)."""
    if "://" not in recipient:
        return recipient
    parts = urlsplit(recipient)
    path = parts.path if len(parts.path) <= SHOWN_PATH else parts.path[:SHOWN_PATH] + "…"
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{path}"


SHOWN_PATH = 200
