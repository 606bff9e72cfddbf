"""Publishes the outbox to Kafka in commit order per key, deleting rows only once acknowledged.

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
from .database import advisory_lock_id, connect
from .failures import Backoff, classify, describe, is_transient
from .health import ProgressBoard
from .logs import get_logger
from .message_size import message_size
from .outbox import NOTIFY_CHANNEL
from .sealed_outbox import open_outbox_row
from .sealing import Sealer

log = get_logger(__name__)

ProducerFactory = Callable[[], AIOKafkaProducer]
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
        max_message_bytes: int = 1_000_000,
        board: ProgressBoard | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.board = board or ProgressBoard()
        self.sealer = sealer
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
        self._relead_backoff = Backoff(maximum=5.0)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Lead, or stand by; a transient failure (database or broker away) retries here,
        anything else goes to the supervisor, which logs it and restarts the relay."""
        backoff = self._relead_backoff
        while not self._stop.is_set():
            try:
                await self._lead()
                backoff.reset()
            except Exception as error:
                self.is_leader = False
                if not is_transient(error):
                    raise
                metrics.TRANSIENT_FAILURES.labels("outbox_relay").inc()
                self.board.failing("outbox relay", describe(error))
                await self._sleep(backoff.next_delay())

    async def _lead(self) -> None:
        """Hold the service's relay lock on a dedicated connection, and relay while holding it."""
        connection = await connect(self.database_url)
        try:
            lock = advisory_lock_id(f"outbox-relay:{self.service}")
            while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", lock):
                if await self._sleep(self.poll_interval):
                    return
            self.is_leader = True
            # Led again: the next step-down waits the first delay, not one grown by past ones.
            self._relead_backoff.reset()
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
        while not self._stop.is_set():
            self._wake.clear()
            # Read on the lock's own connection: the lock lives as long as it does, and if it is
            # gone another relay may lead now, and publishing on would interleave a key's rows.
            # The read raises and the relay steps down before its next batch (one round trip
            # proves both; a separate liveness query cost one more per pass). A session ended
            # while a batch is in flight may still see that batch published twice: duplicates,
            # deduped by consumers, never a loss (rows are deleted only once acknowledged). `sent_at IS NULL`: rows an earlier version
            # marked sent wait for the purge, and the predicate is the index's (outbox_unsent).
            rows = await leadership.fetch(
                """SELECT id, topic, key, value, header_names, header_values, sealed
                   FROM outbox WHERE sent_at IS NULL AND set_aside_at IS NULL ORDER BY id LIMIT $1""",
                self.batch_size,
            )
            if rows:
                try:
                    sent, refused = await self._publish(producer, rows)
                except Exception as error:
                    if not is_transient(error):
                        raise
                    metrics.TRANSIENT_FAILURES.labels("outbox_relay").inc()
                    self.board.failing("outbox relay", describe(error))
                    log.warning("publishing the outbox failed; retrying", error=describe(error))
                    with contextlib.suppress(Exception):  # the backlog grows while the broker is away
                        await self._measure_backlog()
                    await self._sleep(publish_backoff.next_delay())
                    continue
                publish_backoff.reset()
                # Acknowledged: the broker holds the event now. Deleted, not marked sent and kept:
                # one write a row instead of two, and no day of rows (~100 million at the target rate).
                await leadership.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", sent)
                if refused:
                    await self._set_aside(leadership, refused)
                metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(sent))
            await self._report_backlog(full_batch=len(rows) == self.batch_size)
            if len(rows) < self.batch_size:
                await self._wait_for_work()

    async def _publish(self, producer: AIOKafkaProducer, rows: list[Any]) -> tuple[list[int], list[tuple[int, str]]]:
        """Send a batch; returns the ids acknowledged and the rows the broker can never accept.

        Enqueue the whole batch (aiokafka groups it per partition), then wait for every ack. A
        transient failure raises and nothing is deleted, so the batch goes again in order:
        duplicates are possible, losses are not, and consumers dedupe on (ce_source, ce_id).
        """
        refused: list[tuple[int, str]] = []
        deliveries: list[tuple[int, Any]] = []
        for row in rows:
            if row["sealed"] and self.sealer is None:
                refused.append((row["id"], "sealed, and this relay has no key to unseal it"))
                continue
            try:
                message = open_outbox_row(row, self.sealer)  # type: ignore[arg-type]
            except Exception as error:  # a row sealed under a key since removed, or damaged
                refused.append((row["id"], f"cannot be opened: {describe(error)}"))
                continue
            size = message_size(message.key, message.value, message.headers)
            if size > self.max_message_bytes:
                refused.append((row["id"], f"{size} bytes; the broker takes at most {self.max_message_bytes}"))
                continue
            try:
                delivery = await producer.send(message.topic, value=message.value, key=message.key,
                                               headers=message.headers)
            except Exception as error:
                # send() only checks and enqueues this one message: unless the broker is away,
                # what it refuses (too large, no key or value, a bad header) is this row's.
                if classify(error) == "transient":
                    raise
                refused.append((row["id"], describe(error)))
                continue
            deliveries.append((row["id"], delivery))
        results = await asyncio.gather(*(d for _, d in deliveries), return_exceptions=True)
        sent = []
        for (row_id, _), result in zip(deliveries, results, strict=True):
            if not isinstance(result, BaseException):
                sent.append(row_id)
            elif classify(result) == "record":
                refused.append((row_id, describe(result)))
            else:
                raise result
        return sent, refused

    async def _set_aside(self, connection: asyncpg.Connection, refused: list[tuple[int, str]]) -> None:
        await connection.execute(
            """UPDATE outbox SET set_aside_at = now(), error = r.error
               FROM unnest($1::bigint[], $2::text[]) AS r(id, error) WHERE outbox.id = r.id""",
            [i for i, _ in refused], [e[:2000] for _, e in refused],
        )
        for row_id, error in refused:
            log.error("outbox row refused by the broker for good; set aside", outbox_id=row_id, error=error)
        metrics.OUTBOX_SET_ASIDE.labels(self.service).inc(len(refused))

    async def _report_backlog(self, *, full_batch: bool) -> None:
        # A short batch took every unsent row there was: the backlog is nil, no need to count.
        # Behind a full batch there may be more; count it, but not on every turn of a busy loop.
        gauge = metrics.OUTBOX_BACKLOG.labels(self.service)
        if not full_batch:
            gauge.set(0)
            self.board.progressed("outbox relay", waiting=0)
            return
        self.board.progressed("outbox relay")
        await self._measure_backlog()

    async def _measure_backlog(self) -> None:
        """Count the unsent rows, at most every few seconds (a count is not free on a busy table)."""
        now = asyncio.get_running_loop().time()
        if now - self._backlog_measured_at >= BACKLOG_MEASURE_INTERVAL:
            backlog = await self.pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND set_aside_at IS NULL")
            metrics.OUTBOX_BACKLOG.labels(self.service).set(backlog)
            self.board.waiting("outbox relay", backlog)
            self._backlog_measured_at = now

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()


