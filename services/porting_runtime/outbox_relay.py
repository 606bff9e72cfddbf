"""Publishes the outbox to Kafka in commit order per key, marking rows sent only once acknowledged.

One relay per service is active at a time (a session advisory lock); the others stand by,
so no two relays can interleave a key's rows. It wakes on LISTEN/NOTIFY, polls as a
fallback, produces in batches, and keeps retrying while the broker is down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from . import metrics
from .database import advisory_lock_id
from .failures import Backoff, is_transient
from .logs import get_logger
from .outbox import NOTIFY_CHANNEL

log = get_logger(__name__)

ProducerFactory = Callable[[], AIOKafkaProducer]
SENT_RETENTION = "7 days"
BACKLOG_MEASURE_INTERVAL = 5.0  # seconds


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        database_url: str,
        pool: asyncpg.Pool,
        producer_factory: ProducerFactory,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
    ) -> None:
        self.service = service
        self.database_url = database_url
        self.pool = pool
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.is_leader = False
        self._backlog_measured_at = float("-inf")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        backoff = Backoff(maximum=5.0)
        while not self._stop.is_set():
            try:
                await self._lead()
                backoff.reset()
            except Exception as error:
                if not is_transient(error):
                    log.exception("outbox relay failed; restarting it")
                metrics.TRANSIENT_FAILURES.labels("outbox_relay").inc()
                self.is_leader = False
                await self._sleep(backoff.next_delay())

    async def _lead(self) -> None:
        """Hold the service's relay lock on a dedicated connection, and relay while holding it."""
        connection = await asyncpg.connect(self.database_url)
        try:
            lock = advisory_lock_id(f"outbox-relay:{self.service}")
            while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", lock):
                if await self._sleep(self.poll_interval):
                    return
            self.is_leader = True
            await connection.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            producer = self.producer_factory()
            await producer.start()
            try:
                await self._relay(producer, connection)
            finally:
                with contextlib.suppress(Exception):
                    await producer.stop()
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await connection.close()

    async def _relay(self, producer: AIOKafkaProducer, leadership: asyncpg.Connection) -> None:
        publish_backoff = Backoff(maximum=5.0)
        cleaned = asyncio.get_running_loop().time()
        while not self._stop.is_set():
            self._wake.clear()
            # The lock lives as long as its connection: if that is gone, another relay may lead
            # now, and publishing on would interleave a key's rows. This raises and steps down.
            await leadership.fetchval("SELECT 1")
            rows = await self.pool.fetch(
                """SELECT id, topic, key, value, header_names, header_values
                   FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1""",
                self.batch_size,
            )
            if rows:
                try:
                    await _publish(producer, rows)
                except Exception as error:
                    if not is_transient(error):
                        raise
                    metrics.TRANSIENT_FAILURES.labels("outbox_relay").inc()
                    log.warning("publishing the outbox failed; retrying", error=repr(error))
                    await self._sleep(publish_backoff.next_delay())
                    continue
                publish_backoff.reset()
                await self.pool.execute(
                    "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
                )
                metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
            await self._report_backlog(full_batch=len(rows) == self.batch_size)
            if asyncio.get_running_loop().time() - cleaned > 3600:
                await self.pool.execute(f"DELETE FROM outbox WHERE sent_at < now() - interval '{SENT_RETENTION}'")
                cleaned = asyncio.get_running_loop().time()
            if len(rows) < self.batch_size:
                await self._wait_for_work()

    async def _report_backlog(self, *, full_batch: bool) -> None:
        # A short batch took every unsent row there was: the backlog is nil, no need to count.
        # Behind a full batch there may be more; count it, but not on every turn of a busy loop.
        gauge = metrics.OUTBOX_BACKLOG.labels(self.service)
        if not full_batch:
            gauge.set(0)
            return
        now = asyncio.get_running_loop().time()
        if now - self._backlog_measured_at >= BACKLOG_MEASURE_INTERVAL:
            gauge.set(await self.pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
            self._backlog_measured_at = now

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()


async def _publish(producer: AIOKafkaProducer, rows: list[Any]) -> None:
    # Enqueue the whole batch (aiokafka groups it per partition), then wait for every ack.
    # If any fails, none is marked sent and the batch goes again: duplicates are possible,
    # losses are not, and consumers dedupe on ce_id.
    deliveries = [
        await producer.send(
            row["topic"],
            value=row["value"],
            key=row["key"],
            headers=list(zip(row["header_names"], row["header_values"], strict=True)),
        )
        for row in rows
    ]
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]

