"""A unit of work sends a handler's state, its follow-ups and its timer changes in one statement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from porting_runtime import Route, ServiceDefinition, outbox, timers
from porting_runtime.database import apply_migrations, create_pool
from porting_runtime.statement import Writes
from porting_runtime.unit_of_work import UnitOfWork
from schemas import AlertKind, PortAlertRaised, PortRequested

from ..factories import port_requested
from ..handler_support import handler_harness
from .ledger import LEDGER


class _CountingConnection:
    """The connection as the unit of work sees it, counting the statements it sends."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection, self.statements = connection, 0

    async def execute(self, *args: Any) -> str:
        self.statements += 1
        return await self.connection.execute(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url)
    try:
        await apply_migrations(pool, "runtime")
        await pool.execute("CREATE TABLE effects (sid text PRIMARY KEY, note text)")
        yield pool
    finally:
        await pool.close()


def _sid(name: str) -> str:
    return "KW" + name.encode().hex().ljust(32, "0")


def _alert(name: str) -> PortAlertRaised:
    return PortAlertRaised(port_in_request_sid=_sid(name), alert=AlertKind.CARRIER_SLA_BREACHED, message="m",
                           raised_at=datetime.now(UTC))


async def test_a_handlers_state_follow_ups_and_timers_reach_the_database_in_one_statement_with_both_wake_ups(
        pool, database_url):
    listener = await asyncpg.connect(database_url)
    heard: dict[str, list[str]] = {outbox.NOTIFY_CHANNEL: [], timers.NOTIFY_CHANNEL: []}
    due = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        for channel, payloads in heard.items():
            await listener.add_listener(channel, lambda *a, payloads=payloads: payloads.append(a[3]))
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("INSERT INTO timers (kind, key, due_at, data) VALUES ('sla', 'old', now(), '{}')")
            counting = _CountingConnection(connection)
            unit = UnitOfWork(counting, source="tests")  # type: ignore[arg-type]
            unit.write(Writes("effects_written AS (INSERT INTO effects SELECT * FROM unnest($1::text[], $2::text[]))",
                              [["PX1", "PX2"], ["one", "two"]]))
            unit.publish(_alert("PX1"))
            unit.publish(_alert("PX2"))
            unit.schedule("sla", "PX1", due)
            unit.cancel_timers("sla", ["old"])
            await unit.flush()
            assert counting.statements == 1
        await listener.fetchval("SELECT 1")  # notifications sent at commit arrive before this answer
        await asyncio.sleep(0)
    finally:
        await listener.close()

    assert [tuple(r) for r in await pool.fetch("SELECT sid, note FROM effects ORDER BY sid")] == [
        ("PX1", "one"), ("PX2", "two")]
    assert [r["key"] for r in await pool.fetch("SELECT key FROM outbox ORDER BY id")] == [
        _sid("PX1").encode(), _sid("PX2").encode()]
    assert [(r["key"], r["due_at"]) for r in await pool.fetch("SELECT key, due_at FROM timers")] == [("PX1", due)]
    assert heard[outbox.NOTIFY_CHANNEL] == [""]
    assert [float(p) for p in heard[timers.NOTIFY_CHANNEL]] == [due.timestamp()]


async def test_a_unit_with_only_a_cancel_sends_no_wake_up(pool, database_url):
    listener = await asyncpg.connect(database_url)
    heard: list[str] = []
    try:
        await listener.add_listener(timers.NOTIFY_CHANNEL, lambda *a: heard.append(a[3]))
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("INSERT INTO timers (kind, key, due_at, data) VALUES ('sla', 'k', now(), '{}')")
            unit = UnitOfWork(connection, source="tests")
            unit.cancel_timers("sla", ["k"])
            await unit.flush()
        await listener.fetchval("SELECT 1")
        await asyncio.sleep(0)
    finally:
        await listener.close()

    assert await pool.fetchval("SELECT count(*) FROM timers") == 0
    assert heard == []


async def test_many_follow_ups_go_by_copy_after_the_one_statement(pool):
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection, source="tests")
        unit.write(Writes("effects_written AS (INSERT INTO effects VALUES ($1, $2))", ["PX1", "one"]))
        for n in range(outbox.COPY_FROM_ROWS + 5):
            unit.publish(_alert(f"PX{n:04d}"))
        unit.schedule("sla", "PX1", datetime.now(UTC) + timedelta(days=1))
        await unit.flush()

    assert await pool.fetchval("SELECT count(*) FROM effects") == 1
    assert await pool.fetchval("SELECT count(*) FROM timers") == 1
    keys = [r["key"] for r in await pool.fetch("SELECT key FROM outbox ORDER BY id")]
    assert keys == [_sid(f"PX{n:04d}").encode() for n in range(outbox.COPY_FROM_ROWS + 5)]


async def _record_all(events, unit) -> None:
    """A batch handler whose own write refuses one marked request (a PL/pgSQL RAISE: a failure
    of unknown cause, not the data's class)."""
    unit.write(Writes(
        """effects_written AS (
               INSERT INTO effects (request_sid, event_id, worker_pid)
               SELECT s, i, refuse_if_marked(s) FROM unnest($1::text[], $2::text[]) AS e(s, i))""",
        [[e.data.subject for e in events], [e.attributes.id for e in events]]))
    for event in events:
        unit.publish(_alert_for(event.data.subject), cause=event)


def _alert_for(sid: str) -> PortAlertRaised:
    return PortAlertRaised(port_in_request_sid=sid, alert=AlertKind.CARRIER_SLA_BREACHED, message="m",
                           raised_at=datetime.now(UTC))


async def test_an_event_whose_own_write_fails_alone_is_dead_lettered_and_the_others_of_its_batch_take_effect(settings):
    definition = ServiceDefinition(name="ledger", migrations=LEDGER.migrations, publishes=LEDGER.publishes,
                                   routes=lambda pool, settings: [Route(PortRequested, _record_all, batch=True)])
    events = [port_requested() for _ in range(4)]
    marked = events[2].subject
    async with handler_harness(definition, settings) as harness:
        await harness.pool.execute(f"""
            CREATE FUNCTION refuse_if_marked(sid text) RETURNS integer LANGUAGE plpgsql AS $$
            BEGIN IF sid = '{marked}' THEN RAISE EXCEPTION 'refused by the database'; END IF; RETURN 0; END $$""")
        # Held for ever (a timeout here) if the event's own write failing alone were taken for
        # a fault of the runtime's writes.
        await asyncio.wait_for(harness.handle(*events), timeout=60)

        effects = {r["request_sid"] for r in await harness.pool.fetch("SELECT request_sid FROM effects")}
        assert effects == {e.subject for e in events} - {marked}
        dead = await harness.dead_letters()
        assert len(dead) == 1 and "refused by the database" in dead[0]["error"]
        assert len(await harness.follow_ups(PortAlertRaised.event_type)) == 3
