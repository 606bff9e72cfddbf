"""The notifier's database: notifications and their delivery attempts. One statement per batch,
whatever its size."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from porting_runtime.subject_locks import lock_subjects

from ..domain.attempts import AttemptResult
from ..domain.deliveries import Notification
from ..domain.outages import REMINDER_EVERY, OutageChanges, RecipientFailures, reachable_recipients

# NOTIFY wakes senders when something became due to send (delivered on commit). The payload
# names the channels (comma-separated) with something due, so a sender claims only on those;
# an empty payload (an older instance's) means every channel.
DUE_CHANNEL = "notifier_deliveries_due"
UNFINISHED = ("pending", "sending", "retrying")


@dataclass(frozen=True)
class ToRecord:
    notification: Notification
    state: str  # scheduled (waits for its date), pending (send now) or withdrawn (already moot)
    ready_at: datetime


@dataclass(frozen=True)
class Claimed:
    delivery_id: str
    port_in_request_sid: str
    channel: str
    audience: str
    recipient: str
    kind: str
    payload: dict[str, Any]
    phone_numbers: tuple[str, ...]
    attempt: int
    ready_at: datetime
    # Set when the previous attempt's sender stopped before recording its outcome.
    interrupted_since: datetime | None


@dataclass(frozen=True)
class Finished:
    claimed: Claimed
    result: AttemptResult
    started_at: datetime
    finished_at: datetime
    state: str  # delivered, failed, retrying or gave_up
    next_attempt_at: datetime | None = None


async def record(connection: asyncpg.Connection, rows: Sequence[ToRecord], recorded_at: datetime) -> list[asyncpg.Record]:
    """Insert what is new; what was recorded before (a replay) stays as it is. Returns the new rows."""
    if not rows:
        return []
    n = [r.notification for r in rows]
    return await connection.fetch(
        """WITH new AS (
           INSERT INTO notifications (delivery_id, port_in_request_sid, channel, audience, recipient, kind, payload,
                                      phone_numbers, cause_source, cause_id, state, recorded_at, ready_at, finished_at)
           SELECT d, s, c, a, r, k, p::jsonb, ARRAY(SELECT jsonb_array_elements_text(nums::jsonb)), cs, ci, st, $13::timestamptz, ra,
                  CASE WHEN st = 'withdrawn' THEN $13::timestamptz END
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[]) WITH ORDINALITY
                AS x(d, s, c, a, r, k, p, nums, cs, ci, st, ra, position)
           ORDER BY position  -- seq follows the events' order
           ON CONFLICT (delivery_id) DO NOTHING
           RETURNING delivery_id, state, ready_at, channel)
           -- Senders wake on commit for the channels with something to send now, told in this
           -- statement (an uncorrelated subquery runs once) rather than in a round trip of its own.
           SELECT delivery_id, state, ready_at,
                  (SELECT pg_notify($14, string_agg(DISTINCT channel, ',')) FROM new WHERE state = 'pending'
                   HAVING count(*) > 0) AS notified
           FROM new""",
        [x.delivery_id for x in n], [x.port_in_request_sid for x in n], [x.channel.value for x in n],
        [x.audience.value for x in n], [x.recipient for x in n], [x.kind for x in n],
        [json.dumps(x.payload) for x in n], [json.dumps(list(x.phone_numbers)) for x in n],
        [x.cause_source for x in n], [x.cause_id for x in n], [r.state for r in rows], [r.ready_at for r in rows],
        recorded_at, DUE_CHANNEL,
    )


async def withdraw_reminders(connection: asyncpg.Connection, targets: Sequence[tuple[str, str | None]],
                             at: datetime) -> list[str]:
    """Withdraw scheduled reminders of (request, number), or of the whole request when number is None."""
    if not targets:
        return []
    rows = await connection.fetch(
        """UPDATE notifications n SET state = 'withdrawn', finished_at = $3
           FROM unnest($1::text[], $2::text[]) AS w(sid, number)
           WHERE n.state = 'scheduled' AND n.port_in_request_sid = w.sid
             AND (w.number IS NULL OR w.number = ANY (n.phone_numbers))
           RETURNING n.delivery_id""",
        [sid for sid, _ in targets], [number for _, number in targets], at,
    )
    return [r["delivery_id"] for r in rows]


async def make_ready(connection: asyncpg.Connection, delivery_ids: Sequence[str], at: datetime) -> int:
    """A reminder's date or a retry's time has come: it is to be sent now."""
    # One statement, telling the senders which channels have work (on commit).
    changed = await connection.fetchval(
        """WITH ready AS (
               UPDATE notifications SET state = 'pending', next_attempt_at = NULL
               WHERE delivery_id = ANY ($1::text[]) AND state IN ('scheduled', 'retrying')
               RETURNING channel)
           SELECT count(*), pg_notify($2, string_agg(DISTINCT channel, ',')) FROM ready HAVING count(*) > 0""",
        list(delivery_ids), DUE_CHANNEL,
    )
    return int(changed or 0)


ORDERED_CHANNELS = {"email"}
# Pending rows and lapsed leases are looked for apart, each through its own index (migration
# 003), so a claim never steps over the notifications other sends hold; the older of both go.
_CLAIM = """WITH pending AS (
               SELECT delivery_id, seq, state AS was, lease_until AS old_lease FROM notifications n
               WHERE channel = $1 AND state = 'pending' {in_order}
               ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED),
           lapsed AS (
               SELECT delivery_id, seq, state AS was, lease_until AS old_lease FROM notifications n
               WHERE channel = $1 AND state = 'sending' AND lease_until < $2 {in_order}
               ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED),
           due AS (SELECT * FROM lapsed UNION ALL SELECT * FROM pending ORDER BY seq LIMIT $3),
           claimed AS (
               UPDATE notifications n SET state = 'sending', attempts = n.attempts + 1, lease_until = $4
               FROM due WHERE n.delivery_id = due.delivery_id
               RETURNING n.delivery_id, n.port_in_request_sid, n.channel, n.audience, n.recipient, n.kind,
                         n.payload, n.phone_numbers, n.attempts, n.ready_at, due.was, due.old_lease),
           -- The interrupted attempt is kept as it is found, with the claim: kept with the next
           -- outcome instead, a second stop before that outcome lost it from the history.
           interrupted AS (
               INSERT INTO delivery_attempts (delivery_id, attempt, started_at, finished_at, outcome, detail)
               SELECT delivery_id, attempts - 1, old_lease - ($4::timestamptz - $2::timestamptz), $2, 'interrupted',
                      'the notifier stopped before it learned the outcome'
               FROM claimed WHERE was = 'sending'
               ON CONFLICT (delivery_id, attempt) DO NOTHING)
           SELECT * FROM claimed"""
CLAIM = _CLAIM.format(in_order="")
CLAIM_IN_ORDER = _CLAIM.format(in_order="""
                 AND NOT EXISTS (
                     SELECT 1 FROM notifications e
                     WHERE e.port_in_request_sid = n.port_in_request_sid AND e.channel = n.channel
                       AND e.recipient = n.recipient AND e.seq < n.seq
                       AND e.state IN ('pending', 'sending', 'retrying')
                     OFFSET 0)""")
# OFFSET 0 keeps the check a subplan run for each candidate with its values, so it is always an
# index lookup by request, channel and recipient: left to become an anti-join, statistics from a
# quiet moment made the planner scan every unfinished notification for each candidate (see
# migration 004; tests/integration/test_notifier_store_plans.py).


async def claim(connection: asyncpg.Connection, channel: str, limit: int, now: datetime,
                lease: timedelta) -> list[Claimed]:
    """Take up to `limit` notifications due to send on `channel`, each counted as a new attempt.
    One whose sender's lease ran out (it stopped mid-send) is taken again. A person reads a
    request's e-mails in the order things happened: an e-mail waits while an earlier one to the
    same address is unfinished (sent concurrently, "submitted" could overtake "received").
    Webhooks are not held back: like the public Port In webhooks they carry `last_date_updated`,
    by which receivers order them, and holding them would halve their throughput."""
    if limit <= 0:
        return []
    rows = await connection.fetch(CLAIM_IN_ORDER if channel in ORDERED_CHANNELS else CLAIM, channel, now, limit,
                                  now + lease)
    return [Claimed(
        delivery_id=r["delivery_id"], port_in_request_sid=r["port_in_request_sid"], channel=r["channel"],
        audience=r["audience"], recipient=r["recipient"], kind=r["kind"], payload=json.loads(r["payload"]),
        phone_numbers=tuple(r["phone_numbers"]), attempt=r["attempts"], ready_at=r["ready_at"],
        interrupted_since=(r["old_lease"] - lease) if r["was"] == "sending" and r["old_lease"] else None,
    ) for r in rows]


_END_OUTAGES = """DELETE FROM unreachable_recipients r
                  USING unnest({channels}::text[], {recipients}::text[]) AS d(channel, recipient)
                  WHERE r.channel = d.channel AND r.recipient = d.recipient"""
_FINISH = """WITH kept AS (
               INSERT INTO delivery_attempts (delivery_id, attempt, started_at, finished_at, outcome, status_code, detail)
               SELECT * FROM unnest($7::text[], $8::int[], $9::timestamptz[], $10::timestamptz[], $11::text[],
                                    $12::int[], $13::text[])
               ON CONFLICT (delivery_id, attempt) DO NOTHING),
           -- A recipient that took a delivery is reachable again: its outage, if any, is over.
           reachable AS ({end_outages})
           UPDATE notifications n
           SET state = u.state, next_attempt_at = u.next_at, lease_until = NULL,
               last_error = CASE WHEN u.state = 'delivered' THEN NULL ELSE u.detail END,
               finished_at = CASE WHEN u.state IN ('delivered', 'failed', 'gave_up') THEN $6::timestamptz END
           FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], $14::text[])
                AS u(delivery_id, attempt, state, next_at, detail, claimed_as)
           WHERE n.delivery_id = u.delivery_id AND n.state = u.claimed_as AND n.attempts = u.attempt
           RETURNING n.delivery_id""".format(end_outages=_END_OUTAGES.format(channels="$15", recipients="$16"))
# Why the claimed state ('sending') comes as a column and not as a constant: with a constant,
# the planner may reach the rows through the partial queue indexes (notifications_leased is on
# state = 'sending'), whose entries for notifications already delivered stay until a vacuum. Seen: a bitmap scan over 8,861 such
# entries to move 14 notifications on, 2 ms a batch and growing with the traffic since the last
# vacuum. As a join column it cannot prove those indexes' predicates, and the primary key is
# the way in: one lookup a notification, whatever the churn.


async def finish(connection: asyncpg.Connection | asyncpg.Pool, finished: Sequence[Finished],
                 now: datetime, *, ending_outages: bool = True) -> set[str]:
    """Keep each attempt and move its notification on. Returns the delivery ids moved on: one
    re-taken by another sender meanwhile (its lease ran out) is left to that sender. A recipient
    that took a delivery has its outage, if any, ended (domain/outages.py), unless
    `ending_outages` is False: a batch with failures changes outages in time order instead
    (change_outages).

    One statement (the attempts and the ended outages are kept by a data-modifying WITH, which PostgreSQL runs to
    completion whether or not it is read): one round trip per batch instead of two, and, being
    one statement, atomic without a transaction around it, so a batch with nothing else to
    write (no retry timer, no alert) needs no BEGIN and COMMIT either."""
    if not finished:
        return set()
    # An interrupted attempt before these was kept when its notification was claimed again.
    # Every delivery the recipient took ends its outage, also one another sender had re-taken
    # meanwhile (the recipient answered all the same) and an ops e-mail. Sorted, as
    # change_outages takes them. (That one locks its recipients first; this statement, without
    # a transaction, cannot, so against it a deadlock stays possible, if rare: two senders, two
    # recipients each in an outage, one taking a delivery and refusing one in each batch.
    # PostgreSQL detects it, the batch is retried, nothing is lost.)
    delivered = reachable_recipients((f.claimed.channel, f.claimed.recipient) for f in finished
                                     if f.state == "delivered") if ending_outages else []
    rows = await connection.fetch(
        _FINISH,
        [f.claimed.delivery_id for f in finished], [f.claimed.attempt for f in finished],
        [f.state for f in finished], [f.next_attempt_at for f in finished], [f.result.detail for f in finished],
        now,
        [f.claimed.delivery_id for f in finished], [f.claimed.attempt for f in finished],
        [f.started_at for f in finished], [f.finished_at for f in finished],
        [f.result.outcome.value for f in finished], [f.result.status_code for f in finished],
        [f.result.detail for f in finished],
        ["sending" for _ in finished],
        [channel for channel, _ in delivered], [recipient for _, recipient in delivered],
    )
    return {r["delivery_id"] for r in rows}


@dataclass(frozen=True)
class Outage:
    """A recipient's outage as an alert tells it: since when, and how many deliveries so far."""

    began_at: datetime
    undelivered: int
    reminder: bool  # of an outage ops was alerted of before


async def change_outages(connection: asyncpg.Connection, changes: OutageChanges, now: datetime,
                         ) -> dict[str, Outage]:
    """A batch's changes to outages, in its time order (domain/outages.py), in the caller's
    transaction. Returns the deliveries that alert, with their outage."""
    if not changes:
        return {}
    await lock_subjects(connection, changes.recipients)
    alerting = await note_undelivered(connection, changes.undelivered_before, now)
    if changes.reachable:
        await connection.execute(
            _END_OUTAGES.format(channels="$1", recipients="$2"),
            [channel for channel, _ in changes.reachable], [recipient for _, recipient in changes.reachable])
    return alerting | await note_undelivered(connection, changes.undelivered_after, now)


async def note_undelivered(connection: asyncpg.Connection, failures: Sequence[RecipientFailures], now: datetime,
                           ) -> dict[str, Outage]:
    """Count each recipient's undelivered deliveries into its outage. Returns the deliveries that
    alert, with their outage: the first failure of a recipient with no outage in progress, or
    the first after its last alert is REMINDER_EVERY old (see domain/outages.py)."""
    if not failures:
        return {}
    rows = await connection.fetch(
        """INSERT INTO unreachable_recipients AS r (channel, recipient, began_at, alerted_at, alerted_delivery_id,
                                                    undelivered, last_undelivered_at)
           SELECT channel, recipient, $5, $5, delivery_id, n, $5
           FROM unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS f(channel, recipient, delivery_id, n)
           ON CONFLICT (channel, recipient) DO UPDATE SET
               alerted_at = CASE WHEN r.alerted_at <= $6 THEN EXCLUDED.alerted_at ELSE r.alerted_at END,
               alerted_delivery_id = CASE WHEN r.alerted_at <= $6 THEN EXCLUDED.alerted_delivery_id
                                          ELSE r.alerted_delivery_id END,
               undelivered = r.undelivered + EXCLUDED.undelivered,
               last_undelivered_at = EXCLUDED.last_undelivered_at
           RETURNING alerted_delivery_id, began_at, undelivered, began_at < alerted_at AS reminder""",
        [f.channel for f in failures], [f.recipient for f in failures], [f.first_delivery_id for f in failures],
        [f.count for f in failures], now, now - REMINDER_EVERY,
    )
    # A delivery ends undelivered once, so an outage names one of these only when this statement
    # began it (or its reminder); one in progress keeps the delivery that alerted before.
    ours = {f.first_delivery_id for f in failures}
    return {r["alerted_delivery_id"]: Outage(r["began_at"], r["undelivered"], r["reminder"])
            for r in rows if r["alerted_delivery_id"] in ours}


async def unfinished_by_channel(connection: asyncpg.Connection | asyncpg.Pool) -> dict[str, tuple[int, datetime | None]]:
    rows = await connection.fetch(
        """SELECT channel, count(*) AS waiting, min(ready_at) AS oldest FROM notifications
           WHERE state = ANY ($1::text[]) AND ready_at IS NOT NULL GROUP BY channel""",  # the index's predicate
        list(UNFINISHED),
    )
    return {r["channel"]: (r["waiting"], r["oldest"]) for r in rows}


async def notifications_of(connection: asyncpg.Connection, port_in_request_sid: str) -> list[dict[str, Any]]:
    """A request's notifications, oldest first, each with every attempt."""
    rows = await connection.fetch(
        """SELECT n.delivery_id, n.channel, n.audience, n.recipient, n.kind, n.state, n.recorded_at, n.ready_at,
                  n.next_attempt_at, n.attempts, n.last_error, n.finished_at, n.phone_numbers, n.cause_id,
                  coalesce(json_agg(json_build_object(
                      'attempt', a.attempt, 'started_at', a.started_at, 'finished_at', a.finished_at,
                      'outcome', a.outcome, 'status_code', a.status_code, 'detail', a.detail)
                      ORDER BY a.attempt) FILTER (WHERE a.attempt IS NOT NULL), '[]') AS attempt_list
           FROM notifications n LEFT JOIN delivery_attempts a USING (delivery_id)
           WHERE n.port_in_request_sid = $1
           GROUP BY n.delivery_id ORDER BY n.recorded_at, n.channel, n.kind, n.recipient""",
        port_in_request_sid,
    )
    result = []
    for row in rows:
        item = {k: row[k] for k in row.keys() if k != "attempt_list"}
        item["phone_numbers"] = list(row["phone_numbers"])
        item["attempts_made"] = item.pop("attempts")
        item["attempts"] = json.loads(row["attempt_list"])
        result.append(item)
    return result
