"""The outbox relay: nothing lost while the broker is away, and each key in commit order."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from porting_cli.embedded import EmbeddedKafka, free_port
from porting_runtime.database import apply_migrations, create_pool
from porting_runtime.kafka import build_producer, ensure_topics
from porting_runtime.outbox_relay import OutboxRelay
from porting_runtime.unit_of_work import UnitOfWork
from schemas import AlertKind, PortAlertRaised

from ..factories import request_sid
from ..tcp_proxy import CuttableProxy
from .ledger import LEDGER, collect, wait_until


def alert(sid: str, message: str) -> PortAlertRaised:
    return PortAlertRaised(port_in_request_sid=sid, alert=AlertKind.CARRIER_SLA_BREACHED,
                           message=message, raised_at=datetime.now(UTC))


async def _write(pool: asyncpg.Pool, settings, events) -> None:
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection, source="tests", topic_prefix=settings.topic_prefix)
        for event in events:
            unit.publish(event)
        await unit.flush()


async def _unsent(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")


async def test_follow_ups_written_while_the_broker_is_unreachable_are_published_once_it_returns_then_deleted(settings, tmp_path):
    # A broker of this test's own, reached only through a proxy that the test can cut.
    proxy_port = free_port()
    broker = EmbeddedKafka(port=free_port(), log_file=tmp_path / "kafka.log")
    broker.start_advertising(f"127.0.0.1:{proxy_port}")
    proxy = await CuttableProxy("127.0.0.1", broker.port).start(proxy_port)
    settings = settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{proxy_port}"})
    topic = settings.topic(PortAlertRaised.event_type)
    await ensure_topics(settings, [topic])
    pool = await create_pool(settings.database_url)
    await apply_migrations(pool, "ledger", LEDGER.migrations)

    def producer() -> AIOKafkaProducer:
        fast_failing = build_producer(settings)
        fast_failing._request_timeout_ms = 3000  # noqa: SLF001  # fail sooner than in production
        return fast_failing

    relay = OutboxRelay(service="ledger", database_url=settings.database_url, pool=pool,
                        producer_factory=producer, poll_interval=0.2)
    running = asyncio.create_task(relay.run())
    sid = request_sid()
    try:
        await wait_until(lambda: _leader(relay))
        proxy.cut()
        for batch in range(4):
            await _write(pool, settings, [alert(sid, f"{batch}-{i}") for i in range(5)])
        attempts = _relay_failures()
        assert await wait_until(lambda: _relay_failed_since(attempts, 1), timeout=60), "the relay tried and failed"
        assert await _unsent(pool) == 20, "nothing is deleted while the broker is unreachable"
        proxy.restore()
        assert await wait_until(lambda: _all_sent(pool), timeout=60)
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0, "acknowledged rows are deleted, not kept"
        published = await collect(settings, topic, expect=20, settle=1.0)
    finally:
        relay.stop()
        await running
        await pool.close()
        await proxy.stop()
        broker.stop()

    messages = [PortAlertRaised.model_validate_json(r.value).message for r in published]
    expected = [f"{b}-{i}" for b in range(4) for i in range(5)]
    assert sorted(set(messages)) == sorted(expected), "every follow-up arrived"
    assert [m for i, m in enumerate(messages) if m not in messages[:i]] == expected, "in commit order"


async def _leader(relay: OutboxRelay) -> bool:
    return relay.is_leader


async def _all_sent(pool: asyncpg.Pool) -> bool:
    return await _unsent(pool) == 0


async def test_many_concurrent_writers_on_one_key_come_out_of_the_relay_in_commit_order(settings):
    pool = await create_pool(settings.database_url, max_size=25)
    await apply_migrations(pool, "ledger", LEDGER.migrations)
    await pool.execute("CREATE TABLE commit_log (writer text PRIMARY KEY, seq bigserial)")
    sid = request_sid()

    async def writer(number: int) -> None:
        async with pool.acquire() as connection, connection.transaction():
            unit = UnitOfWork(connection, source="tests", topic_prefix=settings.topic_prefix)
            unit.publish(alert(sid, f"writer-{number}"))
            await unit.flush()
            await asyncio.sleep(random.uniform(0, 0.05))  # commit at a random moment
            # Taken last, just before COMMIT: the order of seq is the order of commits.
            await connection.execute("INSERT INTO commit_log (writer) VALUES ($1)", f"writer-{number}")

    relay = OutboxRelay(service="ledger", database_url=settings.database_url, pool=pool,
                        producer_factory=lambda: build_producer(settings), poll_interval=0.05)
    topic = settings.topic(PortAlertRaised.event_type)
    await ensure_topics(settings, [topic])
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.gather(*(writer(n) for n in range(40)))
        assert await wait_until(lambda: _all_sent(pool))
        commit_order = [r["writer"] for r in await pool.fetch("SELECT writer FROM commit_log ORDER BY seq")]
    finally:
        relay.stop()
        await running
        await pool.close()
    published = await collect(settings, topic, expect=40)

    assert [PortAlertRaised.model_validate_json(r.value).message for r in published] == commit_order


def _relay_failures() -> float:
    from porting_runtime.metrics import TRANSIENT_FAILURES

    return TRANSIENT_FAILURES.labels("outbox_relay")._value.get()  # noqa: SLF001


async def _relay_failed_since(baseline: float, times: int) -> bool:
    return _relay_failures() >= baseline + times


# Advisory locks held in this test's database (pg_locks covers the whole server).
_SESSION_LOCK_HOLDERS = """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
                             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


async def test_a_relay_whose_lock_connection_is_terminated_leads_again_and_publishes_what_was_written_meanwhile(settings):
    """The relay reads the outbox on the connection holding its lock: when an operator (or a
    failover) ends that session, the next read fails, the relay steps down as a transient
    failure (no supervisor restart), takes the lock again on a new connection and publishes on.
    (The relay's earlier separate liveness query stepped down the same way; this guards it.)"""
    pool = await create_pool(settings.database_url)
    await apply_migrations(pool, "ledger", LEDGER.migrations)
    topic = settings.topic(PortAlertRaised.event_type)
    await ensure_topics(settings, [topic])
    relay = OutboxRelay(service="ledger", database_url=settings.database_url, pool=pool,
                        producer_factory=lambda: build_producer(settings), poll_interval=0.05)
    running = asyncio.create_task(relay.run())
    sid = request_sid()
    try:
        assert await wait_until(lambda: _leader(relay))
        await _write(pool, settings, [alert(sid, "before")])
        assert await wait_until(lambda: _all_sent(pool))
        failures = _relay_failures()
        holders = await pool.fetch(_SESSION_LOCK_HOLDERS)
        assert len(holders) == 1, "only the relay holds a session lock in this database"
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", holders[0]["pid"])
        await _write(pool, settings, [alert(sid, "meanwhile")])
        assert await wait_until(lambda: _relay_failed_since(failures, 1)), "stepped down as a transient failure"
        assert await wait_until(lambda: _all_sent(pool)), "led again and published what was written meanwhile"
        assert not running.done(), "the relay kept running (nothing escalated to the supervisor)"
        new_holder = await pool.fetchval(_SESSION_LOCK_HOLDERS)
        assert new_holder not in (None, holders[0]["pid"]), "the lock is held again, on a new connection"
    finally:
        relay.stop()
        await running
        await pool.close()
    published = await collect(settings, topic, expect=2)
    assert [PortAlertRaised.model_validate_json(r.value).message for r in published] == ["before", "meanwhile"]
