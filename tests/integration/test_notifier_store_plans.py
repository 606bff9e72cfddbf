"""How the senders claim, keep and move on notifications; and how PostgreSQL reaches them: by primary key, however many
notifications were delivered since the last vacuum (their entries stay in the partial queue
indexes until then, and a plan through those indexes costs more with every one)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

from notifier.adapters import store
from notifier.domain.attempts import AttemptResult, Outcome
from notifier.service import NOTIFIER
from porting_runtime.database import apply_migrations, create_pool

NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
DELIVERED_BEFORE = 3000
BURST = 3000
IN_FLIGHT = 14


class PlanOnly:
    """Stands in for the connection: explains each statement with its real arguments, runs nothing."""

    def __init__(self, connection):
        self.connection = connection
        self.plans = []

    async def fetch(self, sql, *args):
        self.plans.append(json.loads(await self.connection.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)))
        return []


def scans_of(plan, table):
    found, nodes = [], [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Relation Name") == table and node["Node Type"] != "ModifyTable":
            found.append((node["Node Type"], node.get("Index Name")))
        nodes.extend(node.get("Plans", []))
    return found


@contextlib.asynccontextmanager
async def notifier_queue(settings):
    """A connection to the notifier's migrated database, whose notifications no vacuum or analyze
    of its own may tidy up before a statement is explained."""
    pool = await create_pool(settings.database_url)
    try:
        await apply_migrations(pool, "notifier", NOTIFIER.migrations)
        async with pool.acquire() as connection:
            await connection.execute("ALTER TABLE notifications SET (autovacuum_enabled = off)")
            yield connection
    finally:
        await pool.close()


async def _notifications(connection, prefix, count, state):
    await connection.execute(
        """INSERT INTO notifications (delivery_id, port_in_request_sid, channel, audience, recipient, kind, payload,
                                      cause_source, cause_id, state, recorded_at, ready_at, attempts, lease_until)
           SELECT $1 || i, 'KW' || md5(i::text), 'email', 'customer', 'ada@example.com', 'received', '{}',
                  'test', $1 || i, $3, $4::timestamptz, $4::timestamptz, 1, $4::timestamptz + interval '5 minutes'
           FROM generate_series(1, $2) AS i""", prefix, count, state, NOW)


async def test_moving_sent_notifications_on_reaches_them_by_primary_key_after_heavy_churn(settings):
    async with notifier_queue(settings) as connection:
        # Statistics from a quiet moment (everything delivered), then a burst delivered
        # without a vacuum since: its entries stay in the partial indexes of the unfinished.
        await _notifications(connection, "msg_earlier_", DELIVERED_BEFORE, "delivered")
        await connection.execute("ANALYZE notifications")
        await _notifications(connection, "msg_burst_", BURST, "pending")
        await connection.execute("UPDATE notifications SET state = 'sending' WHERE delivery_id LIKE 'msg_burst_%'")
        await connection.execute("UPDATE notifications SET state = 'delivered', lease_until = NULL "
                                 "WHERE delivery_id LIKE 'msg_burst_%'")
        await _notifications(connection, "msg_now_", IN_FLIGHT, "sending")
        # Two this sender must leave alone: one already delivered, one taken again by another
        # sender after this one's lease ran out (its attempt count moved on).
        await _notifications(connection, "msg_done_", 1, "delivered")
        await _notifications(connection, "msg_retaken_", 1, "sending")
        await connection.execute("UPDATE notifications SET attempts = 2 WHERE delivery_id = 'msg_retaken_1'")
        finished = [_delivered(f"msg_now_{i}") for i in range(1, IN_FLIGHT + 1)]
        finished += [_delivered("msg_done_1"), _delivered("msg_retaken_1")]
        explained = PlanOnly(connection)
        await store.finish(explained, finished, NOW)
        # And the statement does what it says when it runs.
        moved = await store.finish(connection, finished, NOW)
        left = {r["delivery_id"]: (r["state"], r["attempts"]) for r in await connection.fetch(
            "SELECT delivery_id, state, attempts FROM notifications WHERE delivery_id IN "
            "('msg_done_1', 'msg_retaken_1')")}
    [plan] = explained.plans
    assert scans_of(plan, "notifications") == [("Index Scan", "notifications_pkey")]
    assert moved == {f"msg_now_{i}" for i in range(1, IN_FLIGHT + 1)}
    assert left == {"msg_done_1": ("delivered", 1), "msg_retaken_1": ("sending", 2)}


def _delivered(delivery_id):
    return store.Finished(
        claimed=store.Claimed(delivery_id=delivery_id, port_in_request_sid="KW", channel="email",
                              audience="customer", recipient="ada@example.com", kind="received", payload={},
                              phone_numbers=(), attempt=1, ready_at=NOW, interrupted_since=None),
        result=AttemptResult(Outcome.DELIVERED, "accepted"), started_at=NOW,
        finished_at=NOW + timedelta(seconds=1), state="delivered")


async def _queued(connection, prefix, count, state, lease_until):
    await connection.execute(
        """INSERT INTO notifications (delivery_id, port_in_request_sid, channel, audience, recipient, kind, payload,
                                      cause_source, cause_id, state, recorded_at, ready_at, attempts, lease_until)
           SELECT $1 || i, 'KW' || md5($1 || i), 'email', 'customer', 'ada@example.com', 'received', '{}',
                  'test', $1 || i, $3, $4::timestamptz, $4::timestamptz, 1, $5::timestamptz
           FROM generate_series(1, $2) AS i""", prefix, count, state, NOW, lease_until)


def rows_examined(plan, table):
    """The rows of `table` the statement's scans went through: returned or filtered out."""
    examined, nodes = 0, [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Relation Name") == table and node["Node Type"] != "ModifyTable":
            per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0) + node.get(
                "Rows Removed by Index Recheck", 0)
            examined += per_loop * node["Actual Loops"]
        nodes.extend(node.get("Plans", []))
    return examined


async def claim_as_run(connection, limit):
    """The plan of an e-mail claim of `limit` as it ran (EXPLAIN ANALYZE runs it: rolled back after)."""
    explained = connection.transaction()
    await explained.start()
    try:
        return json.loads(await connection.fetchval(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {store.CLAIM_IN_ORDER}",
            "email", NOW, limit, NOW + timedelta(minutes=5)))
    finally:
        await explained.rollback()


async def test_a_claim_does_not_step_over_the_notifications_being_sent(settings):
    async with notifier_queue(settings) as connection:
        # A sender stopped mid-send long ago, then thousands in flight, then what is due now.
        await _queued(connection, "msg_lapsed_", 1, "sending", NOW - timedelta(minutes=1))
        await _queued(connection, "msg_in_flight_", IN_FLIGHT_AHEAD, "sending", NOW + timedelta(minutes=5))
        await _queued(connection, "msg_due_", 5, "pending", None)
        await connection.execute("ANALYZE notifications")
        plan = await claim_as_run(connection, 10)
        claimed = await store.claim(connection, "email", 10, NOW, timedelta(minutes=5))
        # More lapsed and more pending than the room: the room, oldest first, no more.
        await _queued(connection, "msg_lapsed_more_", 3, "sending", NOW - timedelta(minutes=1))
        await _queued(connection, "msg_due_more_", 3, "pending", None)
        within_room = await store.claim(connection, "email", 4, NOW, timedelta(minutes=5))
    # Before migration 003 a claim went through every row in flight (3,000 here) to reach these.
    assert rows_examined(plan, "notifications") < 100, rows_examined(plan, "notifications")
    # RETURNING keeps no order: compared as sets.
    assert {c.delivery_id for c in claimed} == {"msg_lapsed_1", *(f"msg_due_{i}" for i in range(1, 6))}
    assert {c.delivery_id for c in claimed if c.interrupted_since is not None} == {"msg_lapsed_1"}
    assert {c.delivery_id for c in within_room} == {"msg_lapsed_more_1", "msg_lapsed_more_2", "msg_lapsed_more_3",
                                                    "msg_due_more_1"}


IN_FLIGHT_AHEAD = 3000


async def test_each_interrupted_attempt_is_kept_as_it_is_found_even_when_the_resend_is_interrupted_too(settings):
    lease = timedelta(minutes=2)
    async with notifier_queue(settings) as connection:
        await _queued(connection, "msg_twice_stopped_", 1, "pending", None)
        await connection.execute("UPDATE notifications SET attempts = 0")  # never tried yet
        await store.claim(connection, "email", 10, NOW, lease)  # the sender stops before the outcome
        [again] = await store.claim(connection, "email", 10, NOW + timedelta(minutes=3), lease)  # and again
        kept_before_any_outcome = await _attempts(connection)
        [last] = await store.claim(connection, "email", 10, NOW + timedelta(minutes=6), lease)
        result = AttemptResult(Outcome.DELIVERED, "accepted")
        await store.finish(connection, [store.Finished(last, result, NOW + timedelta(minutes=6),
                                                       NOW + timedelta(minutes=7), "delivered")], NOW)
        kept = await _attempts(connection)
    assert again.interrupted_since == NOW and last.interrupted_since == NOW + timedelta(minutes=3)
    assert kept_before_any_outcome == [(1, "interrupted", NOW, NOW + timedelta(minutes=3))]
    assert kept == [(1, "interrupted", NOW, NOW + timedelta(minutes=3)),
                    (2, "interrupted", NOW + timedelta(minutes=3), NOW + timedelta(minutes=6)),
                    (3, "delivered", NOW + timedelta(minutes=6), NOW + timedelta(minutes=7))]


async def _attempts(connection):
    rows = await connection.fetch("SELECT attempt, outcome, started_at, finished_at FROM delivery_attempts "
                                  "WHERE delivery_id = 'msg_twice_stopped_1' ORDER BY attempt")
    return [tuple(row) for row in rows]


async def test_a_claim_prepared_while_the_queue_was_nearly_empty_is_planned_again_for_the_queue_as_it_grew(settings):
    """A generic plan cached after a few claims on a fresh, nearly empty table walked every
    unfinished notification for each one it looked at once the queue grew; the runtime's pools
    plan every statement for its arguments and the table as it is (database.PLANNER_SETTINGS)."""
    arguments = "'email', '2027-02-01 09:00+00', 32, '2027-02-01 09:02+00'"
    async with notifier_queue(settings) as connection:
        await _queued(connection, "msg_early_", 20, "pending", None)
        await connection.execute(f"PREPARE claim (text, timestamptz, int, timestamptz) AS {store.CLAIM_IN_ORDER}")
        for _ in range(8):  # past the five runs after which PostgreSQL may keep a generic plan
            await connection.execute(f"EXECUTE claim ({arguments})")
            await connection.execute("UPDATE notifications SET state = 'delivered' WHERE state = 'sending'")
        # The queue grows, a notification for each of 2,000 requests.
        await connection.execute(
            """INSERT INTO notifications (delivery_id, port_in_request_sid, channel, audience, recipient, kind,
                                          payload, cause_source, cause_id, state, recorded_at, ready_at)
               SELECT 'msg_later_' || i, 'KW' || md5('later' || i), 'email', 'customer', 'ada@example.com',
                      'received', '{}', 'test', 'msg_later_' || i, 'pending', $1::timestamptz, $1::timestamptz
               FROM generate_series(1, 2000) AS i""", NOW)
        explained = connection.transaction()
        await explained.start()
        plan = json.loads(await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim ({arguments})"))
        await explained.rollback()
    # With the plan cached on the 20-row table: the 2,000 unfinished for each of the 32 taken (64,000).
    assert rows_examined(plan, "notifications") < 500, rows_examined(plan, "notifications")


async def test_a_claim_with_statistics_from_a_quiet_moment_still_reaches_notifications_by_their_indexes(settings):
    """make bench's pipeline collapse (a claim 15.9 s, PostgreSQL 21-23 ms of CPU a request): an
    ANALYZE while everything was delivered made the unfinished notifications look like none, and
    the planner walked the gauges' index of them whole for every pending one (migration 004)."""
    async with notifier_queue(settings) as connection:
        await _notifications(connection, "msg_quiet_", 40, "delivered")
        await connection.execute("ANALYZE notifications")  # the last statistics the planner gets
        await _queued(connection, "msg_delivered_", 6000, "delivered", None)
        await _queued(connection, "msg_waiting_", 10_000, "pending", None)
        await _queued(connection, "msg_sending_", 32, "sending", NOW + timedelta(minutes=5))
        plan = await claim_as_run(connection, 32)
        claimed = await store.claim(connection, "email", 32, NOW, timedelta(minutes=5))
    # Without migration 004 and the subplan: 100 million rows; 15.9 s in the reproduction, 132 ms with 004 alone.
    assert rows_examined(plan, "notifications") < 500, rows_examined(plan, "notifications")
    assert len(claimed) == 32 and all(c.delivery_id.startswith("msg_waiting_") for c in claimed)
