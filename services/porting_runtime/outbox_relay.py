"""Publishes the outbox to Kafka in commit order per key, marking rows sent only once acknowledged.

One relay per service is active at a time (a session advisory lock); the others stand by,
so no two relays can interleave a key's rows. It wakes on LISTEN/NOTIFY, polls as a
fallback, produces in batches (reading the next while earlier ones wait for their acks), and
keeps retrying while the broker is down.
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
from .failures import Backoff, classify, describe, is_transient
from .health import ProgressBoard
from .logs import get_logger
from .outbox import NOTIFY_CHANNEL
from .sealed_outbox import open_outbox_row
from .sealing import Sealer

log = get_logger(__name__)

ProducerFactory = Callable[[], AIOKafkaProducer]
BACKLOG_MEASURE_INTERVAL = 5.0  # seconds
LEADERSHIP_CHECK_INTERVAL = 1.0  # seconds
PIPELINE_DEPTH = 4  # batches handed to the producer and not yet confirmed
RECORD_OVERHEAD_BYTES = 512


class _Sending:
    """One batch read from the outbox: the producer's delivery per row, and the rows refused."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.deliveries: list[tuple[int, asyncio.Future[Any]]] = []
        self.refused: list[tuple[int, str]] = []

    async def outcome(self) -> tuple[list[int], list[tuple[int, str]]]:
        """The ids acknowledged and the rows refused for good; raises a transient failure once every
        delivery has settled (nothing of the batch is then marked sent, it goes again)."""
        results = await asyncio.gather(*(d for _, d in self.deliveries), return_exceptions=True)
        sent, refused = [], list(self.refused)
        for (row_id, _), result in zip(self.deliveries, results, strict=True):
            if not isinstance(result, BaseException):
                sent.append(row_id)
            elif classify(result) == "record":
                refused.append((row_id, describe(result)))
            else:
                raise result
        return sent, refused


def _drain(queue: asyncio.Queue[_Sending | None]) -> list[_Sending]:
    batches = []
    while not queue.empty():
        if (batch := queue.get_nowait()) is not None:
            batches.append(batch)
    return batches


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

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Lead, or stand by; a transient failure (database or broker away) retries here,
        anything else goes to the supervisor, which logs it and restarts the relay."""
        backoff = Backoff(maximum=5.0)
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
        """Relay until stopped; a transient failure (the broker away) waits and goes again from the
        oldest unsent row, keeping the producer and the lead."""
        backoff = Backoff(maximum=5.0)
        while not self._stop.is_set():
            try:
                await self._pipeline(producer, leadership, backoff)
            except Exception as error:
                if not is_transient(error) or leadership.is_closed():
                    raise  # a lost lock steps down (see _lead); the rest goes to the supervisor
                metrics.TRANSIENT_FAILURES.labels("outbox_relay").inc()
                self.board.failing("outbox relay", describe(error))
                log.warning("publishing the outbox failed; retrying", error=describe(error))
                with contextlib.suppress(Exception):  # the backlog grows while the broker is away
                    await self._measure_backlog()
                await self._sleep(backoff.next_delay())

    async def _pipeline(self, producer: AIOKafkaProducer, leadership: asyncpg.Connection, backoff: Backoff) -> None:
        """Read and enqueue the next rows while earlier ones wait for their acks.

        A row committed while a batch waits for the broker goes out at once instead of a whole
        cycle later (reading, acks and marking used to take turns). Batches are confirmed in the
        order they were read; the first failure stops both sides, lets what was handed to the
        producer settle (so nothing of it is overtaken by what is read again), and raises: rows
        not yet confirmed go again in id order, which may duplicate, never lose."""
        in_flight: dict[int, None] = {}  # ids handed to the producer and not yet confirmed, in order
        queue: asyncio.Queue[_Sending | None] = asyncio.Queue(maxsize=PIPELINE_DEPTH)
        reading = asyncio.create_task(self._read(producer, leadership, queue, in_flight))
        confirming = asyncio.create_task(self._confirm(queue, in_flight, backoff))
        try:
            # Until one fails, or both end (stopping: the reader's None lets the confirmer finish).
            await asyncio.wait({reading, confirming}, return_when=asyncio.FIRST_EXCEPTION)
            for task in (reading, confirming):
                if task.done() and (error := task.exception()) is not None:
                    raise error
        finally:
            for task in (reading, confirming):
                task.cancel()
            await asyncio.gather(reading, confirming, return_exceptions=True)
            await asyncio.gather(*(d for batch in _drain(queue) for _, d in batch.deliveries),
                                 return_exceptions=True)

    async def _read(self, producer: AIOKafkaProducer, leadership: asyncpg.Connection,
                    queue: asyncio.Queue[_Sending | None], in_flight: dict[int, None]) -> None:
        loop = asyncio.get_running_loop()
        checked_at = loop.time()
        while not self._stop.is_set():
            self._wake.clear()
            # The lock lives as long as its connection: if that is gone, another relay may lead
            # now, and publishing on would interleave a key's rows. This raises and steps down.
            # The listener keeps the connection read, so a closed one shows at once; a round trip
            # besides, once a second, for a connection that went quiet.
            if leadership.is_closed() or loop.time() - checked_at >= LEADERSHIP_CHECK_INTERVAL:
                await leadership.fetchval("SELECT 1")
                checked_at = loop.time()
            rows = await self.pool.fetch(
                """SELECT id, topic, key, value, header_names, header_values, sealed
                   FROM outbox WHERE sent_at IS NULL AND set_aside_at IS NULL AND id <> ALL($2::bigint[])
                   ORDER BY id LIMIT $1""",
                self.batch_size, list(in_flight),
            )
            if rows:
                sending = await self._send(producer, rows)
                in_flight.update(dict.fromkeys(r["id"] for r in rows))
                await queue.put(sending)  # waits while PIPELINE_DEPTH batches are unconfirmed
            await self._report_backlog(full_batch=len(rows) == self.batch_size)
            if len(rows) < self.batch_size:
                await self._wait_for_work()
        await queue.put(None)

    async def _confirm(self, queue: asyncio.Queue[_Sending | None], in_flight: dict[int, None],
                       backoff: Backoff) -> None:
        stopping = False
        while not stopping and (first := await queue.get()) is not None:
            batches = [first]
            while not queue.empty():  # batches read meanwhile are marked in the same statement
                if (later := queue.get_nowait()) is None:
                    stopping = True
                    break
                batches.append(later)
            sent: list[int] = []
            refused: list[tuple[int, str]] = []
            try:
                for batch in batches:
                    batch_sent, batch_refused = await batch.outcome()
                    sent += batch_sent
                    refused += batch_refused
            except Exception:
                await self._mark(sent, refused)  # what was acknowledged before the failure
                raise
            await self._mark(sent, refused)
            for batch in batches:
                for row_id in batch.ids:
                    in_flight.pop(row_id, None)
            backoff.reset()

    async def _mark(self, sent: list[int], refused: list[tuple[int, str]]) -> None:
        if sent:
            await self.pool.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", sent)
            metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(sent))
        if refused:
            await self._set_aside(refused)

    async def _send(self, producer: AIOKafkaProducer, rows: list[Any]) -> _Sending:
        """Hand a batch to the producer (aiokafka groups it per partition), without waiting for acks.
        Rows the broker can never accept are refused here, each with its reason."""
        sending = _Sending([row["id"] for row in rows])
        for row in rows:
            if row["sealed"] and self.sealer is None:
                sending.refused.append((row["id"], "sealed, and this relay has no key to unseal it"))
                continue
            try:
                message = open_outbox_row(row, self.sealer)  # type: ignore[arg-type]
            except Exception as error:  # a row sealed under a key since removed, or damaged
                sending.refused.append((row["id"], f"cannot be opened: {describe(error)}"))
                continue
            size = len(message.key or b"") + len(message.value or b"") + RECORD_OVERHEAD_BYTES + sum(
                len(n.encode()) + len(v or b"") for n, v in message.headers)
            if size > self.max_message_bytes:
                sending.refused.append((row["id"], f"{size} bytes; the broker takes at most {self.max_message_bytes}"))
                continue
            try:
                delivery = await producer.send(message.topic, value=message.value, key=message.key,
                                               headers=message.headers)
            except Exception as error:
                # send() only checks and enqueues this one message: unless the broker is away,
                # what it refuses (too large, no key or value, a bad header) is this row's.
                if classify(error) == "transient":
                    raise
                sending.refused.append((row["id"], describe(error)))
                continue
            sending.deliveries.append((row["id"], delivery))
        return sending

    async def _set_aside(self, refused: list[tuple[int, str]]) -> None:
        await self.pool.execute(
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


