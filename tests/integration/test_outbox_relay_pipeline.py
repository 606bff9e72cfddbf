"""The relay reads on while earlier batches wait for their acknowledgements, and a failed batch
loses nothing: on the real PostgreSQL, with a producer whose acknowledgements the test gives."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiokafka.errors import KafkaConnectionError

from porting_runtime.database import apply_migrations, create_pool
from porting_runtime.outbox import write_outbox
from porting_runtime.outbox_relay import OutboxRelay
from schemas import KafkaRecord

from .ledger import LEDGER, wait_until


class HeldProducer:
    """Takes every message at once and acknowledges only when the test says so."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, asyncio.Future[Any]]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        for _, delivery in self.sent:
            if not delivery.done():
                delivery.set_exception(KafkaConnectionError("stopped"))

    async def send(self, topic: str, *, value: bytes, key: bytes | None, headers: Any) -> asyncio.Future[Any]:
        delivery = asyncio.get_running_loop().create_future()
        self.sent.append((value, delivery))
        return delivery

    def values(self) -> list[bytes]:
        return [value for value, _ in self.sent]

    def acknowledge(self, value: bytes) -> None:
        for sent_value, delivery in self.sent:
            if sent_value == value and not delivery.done():
                delivery.set_result(None)

    def fail(self, value: bytes) -> None:
        for sent_value, delivery in self.sent:
            if sent_value == value and not delivery.done():
                delivery.set_exception(KafkaConnectionError("the broker went away"))


async def _write(pool: asyncpg.Pool, *values: bytes) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await write_outbox(connection, [KafkaRecord("relay-pipeline", b"key", value, []) for value in values])


async def _unsent(pool: asyncpg.Pool) -> list[bytes]:
    return [r["value"] for r in await pool.fetch("SELECT value FROM outbox WHERE sent_at IS NULL ORDER BY id")]


async def _relaying(settings, producer: HeldProducer):
    pool = await create_pool(settings.database_url)
    await apply_migrations(pool, "ledger", LEDGER.migrations)
    relay = OutboxRelay(service="ledger", database_url=settings.database_url, pool=pool,
                        producer_factory=lambda: producer, poll_interval=0.05)  # type: ignore[arg-type,return-value]
    return pool, relay, asyncio.create_task(relay.run())


async def test_a_row_committed_while_a_batch_awaits_its_acknowledgement_is_sent_without_waiting_for_it(settings):
    producer = HeldProducer()
    pool, relay, running = await _relaying(settings, producer)
    try:
        await _write(pool, b"first")
        await wait_until(lambda: _has_sent(producer, [b"first"]), what="the first row handed to the producer")
        await _write(pool, b"second")
        await wait_until(lambda: _has_sent(producer, [b"first", b"second"]),
                         what="the second row handed over while the first awaits its ack")
        assert await _unsent(pool) == [b"first", b"second"], "nothing is marked sent before its ack"
        producer.acknowledge(b"second")
        producer.acknowledge(b"first")
        await wait_until(lambda: _nothing_unsent(pool), what="both rows marked sent")
        assert producer.values() == [b"first", b"second"], "each sent once, in commit order"
    finally:
        relay.stop()
        await producer.stop()  # fails what is still unacknowledged, so the relay can end
        await asyncio.wait_for(running, 30)
        await pool.close()


async def test_a_failed_batch_is_sent_again_with_every_unacknowledged_row_behind_it_in_order(settings):
    producer = HeldProducer()
    pool, relay, running = await _relaying(settings, producer)
    try:
        await _write(pool, b"a")
        await wait_until(lambda: _has_sent(producer, [b"a"]), what="a handed over")
        await _write(pool, b"b")
        await wait_until(lambda: _has_sent(producer, [b"a", b"b"]), what="b handed over behind a")
        producer.acknowledge(b"b")
        producer.fail(b"a")
        # The relay waits its backoff, then reads again from the oldest unsent row.
        await wait_until(lambda: _sent_count(producer, 4), timeout=10, what="a and b sent again")
        assert producer.values()[2:] == [b"a", b"b"], "again from the oldest unsent row, in order"
        producer.acknowledge(b"a")
        producer.acknowledge(b"b")
        await wait_until(lambda: _nothing_unsent(pool), what="both marked sent after the retry")
    finally:
        relay.stop()
        await producer.stop()  # fails what is still unacknowledged, so the relay can end
        await asyncio.wait_for(running, 30)
        await pool.close()


async def _has_sent(producer: HeldProducer, values: list[bytes]) -> bool:
    return producer.values() == values


async def _sent_count(producer: HeldProducer, count: int) -> bool:
    return len(producer.sent) >= count


async def _nothing_unsent(pool: asyncpg.Pool) -> bool:
    return await _unsent(pool) == []
