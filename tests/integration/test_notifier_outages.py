"""A recipient's outage on real PostgreSQL: its first undelivered delivery alerts, the rest are
counted without an alert, a delivery ends it, and one that lasts is recalled after a day."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg

from notifier.adapters import store
from notifier.domain.attempts import AttemptResult, Outcome
from notifier.domain.outages import REMINDER_EVERY, Ended, outage_changes
from notifier.service import NOTIFIER
from porting_runtime.database import apply_migrations, create_pool

NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
RECEIVER = "https://hooks.example.com/porting?token=abc"


@contextlib.asynccontextmanager
async def migrated(settings) -> AsyncIterator[asyncpg.Connection]:
    pool = await create_pool(settings.database_url)
    try:
        await apply_migrations(pool, "notifier", NOTIFIER.migrations)
        async with pool.acquire() as connection:
            yield connection
    finally:
        await pool.close()


async def undelivered(connection, at, *deliveries, channel="webhook", recipient=RECEIVER) -> set[str]:
    """These deliveries to the recipient ended undelivered in one batch: the ones that alert."""
    return set(await noted(connection, at, *deliveries, channel=channel, recipient=recipient))


async def noted(connection, at, *deliveries, channel="webhook", recipient=RECEIVER) -> dict[str, store.Outage]:
    return await batch(connection, at, *[Ended(channel, recipient, d, False, at) for d in deliveries])


async def batch(connection, at, *ends: Ended) -> dict[str, store.Outage]:
    """One recorded batch's changes to outages, as the sender makes them: the alerting ones."""
    async with connection.transaction():
        return await store.change_outages(connection, outage_changes(ends), at)


async def outage(connection, recipient=RECEIVER) -> asyncpg.Record | None:
    return await connection.fetchrow("SELECT * FROM unreachable_recipients WHERE recipient = $1", recipient)


async def test_the_first_undelivered_delivery_alerts_and_the_rest_of_the_outage_is_only_counted(settings):
    async with migrated(settings) as connection:
        assert await noted(connection, NOW, "msg_a", "msg_b") == {"msg_a": store.Outage(NOW, 2, reminder=False)}
        assert await undelivered(connection, NOW + timedelta(hours=1), "msg_c") == set()
        assert await undelivered(connection, NOW + timedelta(hours=2), "msg_d", "msg_e") == set()
        row = await outage(connection)
    assert row["alerted_delivery_id"] == "msg_a" and row["undelivered"] == 5
    assert row["began_at"] == row["alerted_at"] == NOW and row["last_undelivered_at"] == NOW + timedelta(hours=2)


async def test_a_delivery_to_the_recipient_ends_its_outage_so_the_next_failure_alerts_again(settings):
    async with migrated(settings) as connection:
        await _sending(connection, "msg_ok", RECEIVER)
        assert await undelivered(connection, NOW, "msg_a") == {"msg_a"}
        moved = await store.finish(connection, [_delivered("msg_ok")], NOW + timedelta(minutes=5))
        assert moved == {"msg_ok"} and await outage(connection) is None
        assert await undelivered(connection, NOW + timedelta(minutes=10), "msg_b") == {"msg_b"}


async def test_an_email_delivery_ends_the_outage_of_its_address_written_in_any_case(settings):
    async with migrated(settings) as connection:
        await _sending(connection, "msg_ok", "ADA@example.COM", channel="email")
        assert await undelivered(connection, NOW, "msg_a", channel="email", recipient="Ada@Example.com") == {"msg_a"}
        await store.finish(connection, [_delivered("msg_ok", "ADA@example.COM", channel="email")], NOW)
        assert await outage(connection, "ada@example.com") is None


async def test_a_batch_where_the_recipient_took_one_delivery_and_refused_another_alerts_the_refused_one(settings):
    """A receiver refusing one message for good (its 4xx) while it takes the others: that refusal
    is no outage ops already knows of, so it is alerted."""
    async with migrated(settings) as connection:
        assert await undelivered(connection, NOW, "msg_a") == {"msg_a"}
        later = NOW + timedelta(minutes=1)
        alerting = await batch(connection, later, Ended("webhook", RECEIVER, "msg_ok", True, later),
                               Ended("webhook", RECEIVER, "msg_refused", False, later + timedelta(seconds=1)))
        row = await outage(connection)
    assert set(alerting) == {"msg_refused"} and row["alerted_delivery_id"] == "msg_refused"


async def test_a_refusal_recorded_with_a_later_delivery_is_alerted_and_leaves_no_outage_behind(settings):
    """In time order within the batch: the delivery after the refusal ends the outage it began,
    so the next failure is alerted (it was not, when the batch ended outages before counting
    its failures)."""
    async with migrated(settings) as connection:
        alerting = await batch(connection, NOW, Ended("webhook", RECEIVER, "msg_refused", False, NOW),
                               Ended("webhook", RECEIVER, "msg_ok", True, NOW + timedelta(seconds=1)))
        assert set(alerting) == {"msg_refused"} and await outage(connection) is None
        assert await undelivered(connection, NOW + timedelta(minutes=10), "msg_next") == {"msg_next"}


async def test_two_senders_recording_crosswise_batches_at_once_never_deadlock(settings):
    """Each takes a delivery to one receiver and a refusal from the other, both in an outage:
    without the recipients locked first in one order, PostgreSQL found a deadlock in most rounds."""
    other = "https://other.example/hook"
    pool = await create_pool(settings.database_url)
    try:
        async with migrated(settings) as connection:
            for round_ in range(10):
                at = NOW + timedelta(minutes=round_)
                await undelivered(connection, at, f"msg_{round_}_a")
                await undelivered(connection, at, f"msg_{round_}_b", recipient=other)

                async def sender(taken: str, refused: str, name: str) -> dict[str, store.Outage]:
                    async with pool.acquire() as own:
                        return await batch(own, at, Ended("webhook", taken, f"{name}_ok", True, at),
                                           Ended("webhook", refused, f"{name}_refused", False, at + timedelta(seconds=1)))

                first, second = await asyncio.gather(sender(RECEIVER, other, f"msg_{round_}_1"),
                                                     sender(other, RECEIVER, f"msg_{round_}_2"))
                assert len(first) + len(second) >= 1, "each refusal after a delivery begins an outage or counts in one"
    finally:
        await pool.close()


async def test_an_outage_that_lasts_is_recalled_to_ops_with_its_count_once_a_reminder_period_has_passed(settings):
    async with migrated(settings) as connection:
        assert await undelivered(connection, NOW, "msg_a") == {"msg_a"}
        assert await undelivered(connection, NOW + REMINDER_EVERY - timedelta(seconds=1), "msg_b") == set()
        assert await noted(connection, NOW + REMINDER_EVERY, "msg_c", "msg_d") == {
            "msg_c": store.Outage(NOW, 4, reminder=True)}
        assert await undelivered(connection, NOW + REMINDER_EVERY + timedelta(hours=1), "msg_e") == set()
        row = await outage(connection)
    assert row["began_at"] == NOW and row["alerted_at"] == NOW + REMINDER_EVERY and row["undelivered"] == 5


async def test_outages_are_kept_per_recipient_and_channel_with_an_addresses_case_ignored(settings):
    async with migrated(settings) as connection:
        assert await undelivered(connection, NOW, "msg_a", channel="email", recipient="Ada@Example.com") == {"msg_a"}
        assert await undelivered(connection, NOW, "msg_b", channel="email", recipient="ada@example.com") == set()
        assert await undelivered(connection, NOW, "msg_c", channel="email", recipient="bob@example.com") == {"msg_c"}
        assert await undelivered(connection, NOW, "msg_d") == {"msg_d"}


async def _sending(connection, delivery_id, recipient, channel="webhook"):
    await connection.execute(
        """INSERT INTO notifications (delivery_id, port_in_request_sid, channel, audience, recipient, kind,
                                      payload, cause_source, cause_id, state, recorded_at, ready_at, attempts)
           VALUES ($1, 'KW1', $3, 'customer', $2, 'PortInCompleted', '{}', 'test', $1, 'sending', $4, $4, 1)""",
        delivery_id, recipient, channel, NOW)


def _delivered(delivery_id, recipient=RECEIVER, channel="webhook"):
    return store.Finished(
        claimed=store.Claimed(delivery_id=delivery_id, port_in_request_sid="KW1", channel=channel,
                              audience="customer", recipient=recipient, kind="PortInCompleted", payload={},
                              phone_numbers=(), attempt=1, ready_at=NOW, interrupted_since=None),
        result=AttemptResult(Outcome.DELIVERED, "accepted"), started_at=NOW,
        finished_at=NOW + timedelta(seconds=1), state="delivered")
