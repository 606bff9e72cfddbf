"""The consumer pipeline: decode, dead-letter or handle, commit the database, then the offset.

The records of one topic in a poll, from every partition of it, share one transaction; the
caller commits their offsets after it. One set of round trips for all of a poll's partitions
rather than one per partition: on two cores, where PostgreSQL, the broker and the services share
the CPU, every round trip waits for a core, and this cut the p99 at 3,000 events/s from about
370 ms to about 275 ms (make bench). Each partition keeps its order within the batch; topics
are handled concurrently, each on its own connection.

The common path pays for no savepoint: the whole batch goes to its route's handler at once. When that fails for a reason that belongs to a record (or for an unknown reason,
more than a few times), the batch runs again with every event alone in a savepoint, and the
events that fail alone are dead-lettered: one bad record never holds its partition.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from schemas import (
    CloudEvent,
    ContractViolation,
    PortingEvent,
    dead_letter_topic,
    decode,
)

from . import metrics
from .clock import WALL_CLOCK, Clock
from .dead_letter_writer import DeadLetterWriter
from .failures import Backoff, EventRejected, classify, describe
from .health import ProgressBoard
from .logs import event_context, get_logger, record_fields
from .sealing import Sealer
from .unit_of_work import UnitOfWork

log = get_logger(__name__)

Handler = Callable[[CloudEvent[Any], UnitOfWork], Awaitable[None]]
BatchHandler = Callable[[Sequence[CloudEvent[Any]], UnitOfWork], Awaitable[None]]
AfterCommit = Callable[[Sequence[ConsumerRecord]], Awaitable[None]]
UNKNOWN_FAILURE_RETRIES = 3

__all__ = ["AfterCommit", "EventConsumer", "EventRejected", "ProcessingAbandoned", "Route"]


class ProcessingAbandoned(Exception):
    """Shutdown came while a failure was being retried: nothing was committed, the records come again."""


class _RuntimeFault(Exception):
    pass


class _KnownCulprit(Exception):
    def __init__(self, index: int, reason: str) -> None:
        self.index, self.reason = index, reason


@dataclass(frozen=True)
class Route:
    """Which handler takes an event type. `batch=True`: the handler takes every new event of a
    topic's batch at once (set-based); otherwise one event at a time."""

    event: type[PortingEvent]
    handler: Handler | BatchHandler
    batch: bool = False


@dataclass(frozen=True)
class UnitOptions:
    source: str
    topic_prefix: str = ""
    publishes: frozenset[str] | None = None
    max_message_bytes: int = 1_000_000
    clock: Clock = WALL_CLOCK
    sealer: Sealer | None = None

    def unit(self, connection: asyncpg.Connection, cause: Any = None) -> UnitOfWork:
        return UnitOfWork(connection, source=self.source, topic_prefix=self.topic_prefix, cause=cause,
                          publishes=self.publishes, max_message_bytes=self.max_message_bytes, clock=self.clock,
                          sealer=self.sealer)


Decoded = CloudEvent[Any] | str  # an event, or why the record can never be one


class EventConsumer:
    def __init__(
        self,
        *,
        name: str,
        pool: asyncpg.Pool,
        routes: Sequence[Route],
        topic_prefix: str = "",
        after_commit: AfterCommit | None = None,
        backoff: Backoff | None = None,
        dead_letters: DeadLetterWriter | None = None,
        unit_options: UnitOptions | None = None,
        board: ProgressBoard | None = None,
    ) -> None:
        self.name = name
        self.pool = pool
        self.topic_prefix = topic_prefix
        self.routes: dict[str, Route] = {}
        for route in routes:
            topic = f"{topic_prefix}{route.event.event_type}"
            if topic in self.routes:
                raise ValueError(f"{name}: two routes for {route.event.event_type}")
            self.routes[topic] = route
        self.dead_letter_topic = f"{topic_prefix}{dead_letter_topic(name)}"
        self.dead_letters = dead_letters or DeadLetterWriter(consumer=name, topic=self.dead_letter_topic)
        self.unit_options = unit_options or UnitOptions(source=name, topic_prefix=topic_prefix)
        self.board = board or ProgressBoard()
        self._after_commit = after_commit
        self._backoff = backoff or Backoff()
        self._stopping = asyncio.Event()

    @property
    def topics(self) -> list[str]:
        return list(self.routes)

    def stop(self) -> None:
        self._stopping.set()

    async def process(self, records: Sequence[ConsumerRecord], consumer: AIOKafkaConsumer | None = None) -> Counter[str]:
        """Handle records of any partitions: each topic's in one transaction, the topics
        concurrently, every partition in its own order; with a consumer, commit the offsets of the
        partitions whose transactions committed, in one request. Returns how many were handled,
        duplicate and dead-lettered. Tests and `porting replay` call this directly with records
        they bring (no consumer group)."""
        batches = by_topic(records)
        results = await asyncio.gather(*(self.process_batch(b) for b in batches.values()), return_exceptions=True)
        abandoned: BaseException | None = None
        outcomes: Counter[str] = Counter()
        done: dict[TopicPartition, int] = {}
        for batch, result in zip(batches.values(), results, strict=True):
            if isinstance(result, BaseException):
                if consumer is not None:
                    for partition, first in first_offsets(batch).items():
                        consumer.seek(partition, first)  # never skip what was not committed
                abandoned = abandoned or result
            else:
                outcomes.update(result)
                for record in batch:
                    done[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if consumer is not None and done:
            await commit_offsets(consumer, self.name, done)  # one request for every partition of the poll
        if abandoned is not None:
            raise abandoned
        return outcomes

    async def process_batch(self, batch: list[ConsumerRecord]) -> list[str]:
        """One topic's records, in one transaction; see the module's docstring for failures."""
        parts = [f"partition {p.topic}[{p.partition}]" for p in first_offsets(batch)]
        decoded: list[Decoded] = [self._decode(record) for record in batch]
        backoff = Backoff(self._backoff.initial, self._backoff.maximum)
        isolate, unknown_failures = False, 0
        while True:
            try:
                with metrics.HANDLER_SECONDS.labels(self.name).time():
                    async with self.pool.acquire() as connection, connection.transaction():
                        apply = self._apply_isolated if isolate else self._apply
                        outcomes = await apply(connection, batch, decoded)
                break
            except _KnownCulprit as culprit:  # a one-event handler rejected its event: run again without it
                decoded[culprit.index] = culprit.reason
                continue
            except Exception as error:
                kind = classify(error)
                metrics.PIPELINE_FAILURES.labels(self.name, kind).inc()
                if kind != "transient" and not isolate and (kind == "record" or unknown_failures >= UNKNOWN_FAILURE_RETRIES):
                    # Narrow it down: every event alone, so only the one that causes it is dead-lettered.
                    log.warning("batch failed; handling its events one by one", consumer=self.name,
                                error=describe(error))
                    isolate = True
                    continue
                unknown_failures += kind != "transient"
                for part in parts:
                    self.board.failing(part, describe(error))
                delay = backoff.next_delay()
                if kind == "transient":
                    log.warning("transient failure, holding the partition", consumer=self.name,
                                error=describe(error), retry_in=round(delay, 2))
                else:  # outside the handlers even with every event alone: hold, and health says so
                    log.exception("failure outside the handlers, holding the partition", consumer=self.name,
                                  retry_in=round(delay, 2))
                if await self._stopped_within(delay):
                    raise ProcessingAbandoned from error
        for part in parts:
            self.board.progressed(part)
        self._report(batch, decoded, outcomes)
        if self._after_commit is not None:
            await self._after_commit(batch)
        return outcomes

    async def _apply(self, connection: asyncpg.Connection, batch: list[ConsumerRecord],
                     decoded: list[Decoded]) -> list[str]:
        """The whole batch in one go: one inbox statement, one handler call for a batch route."""
        claimed = await self._claim(connection, batch, decoded)
        outcomes, fresh = [], []
        for index, item in enumerate(decoded):
            if isinstance(item, str):
                outcomes.append("dead_lettered")
            elif _identity(item) in claimed:
                claimed.discard(_identity(item))  # a second copy within the batch is a duplicate
                outcomes.append("handled")
                fresh.append((index, item))
            else:
                outcomes.append("duplicate")
        unit = self.unit_options.unit(connection)
        if fresh:
            route = self.routes[batch[0].topic]
            if route.batch:
                await route.handler([item for _, item in fresh], unit)  # type: ignore[arg-type]
            else:
                for index, item in fresh:
                    await self._handle_one(route, item, unit, index)
        rejected = [(i, unit.rejection_of(d)) for i, d in enumerate(decoded)
                    if not isinstance(d, str) and outcomes[i] == "handled" and unit.rejection_of(d)]
        if rejected:
            # A rejected event leaves no inbox row, so a redrive after a fix is handled.
            await self._unclaim(connection, [decoded[i] for i, _ in rejected])  # type: ignore[misc]
            for index, reason in rejected:
                decoded[index], outcomes[index] = reason, "dead_lettered"  # type: ignore[assignment]
        await self._write_dead_letters(connection, batch, decoded, outcomes)
        await unit.flush()
        return outcomes

    async def _handle_one(self, route: Route, item: CloudEvent[Any], unit: UnitOfWork, index: int) -> None:
        unit.cause = item.attributes
        try:
            with event_context(item):  # restores the outer context (the service name) after
                await route.handler(item, unit)  # type: ignore[arg-type]
        except EventRejected as rejection:
            raise _KnownCulprit(index, str(rejection)) from rejection
        finally:
            unit.cause = None

    async def _apply_isolated(self, connection: asyncpg.Connection, batch: list[ConsumerRecord],
                              decoded: list[Decoded]) -> list[str]:
        """Every event alone in a savepoint; one that fails alone is dead-lettered, the rest commit."""
        route = self.routes[batch[0].topic]
        outcomes = []
        for index, item in enumerate(decoded):
            if isinstance(item, str):
                outcomes.append("dead_lettered")
                continue
            try:
                async with connection.transaction():
                    if not await self._claim(connection, [batch[index]], [item]):
                        outcomes.append("duplicate")
                        continue
                    unit = self.unit_options.unit(connection, cause=item.attributes)
                    with event_context(item):
                        if route.batch:
                            await route.handler([item], unit)  # type: ignore[arg-type]
                        else:
                            await route.handler(item, unit)  # type: ignore[arg-type]
                    if (reason := unit.rejection_of(item)) is not None:
                        raise EventRejected(reason)
                    await unit.write_own_now()  # the handler's: any fault of it is this event's
                    try:
                        await unit.flush()
                    except Exception as error:
                        # The runtime's own writes: only a fault of the data belongs to the record.
                        if classify(error) != "record":
                            raise _RuntimeFault from error
                        raise
                outcomes.append("handled")
            except _RuntimeFault as fault:
                raise fault.__cause__ from None  # type: ignore[misc]
            except Exception as error:
                if classify(error) == "transient":
                    raise
                reason = str(error) if isinstance(error, EventRejected) else f"handler failed: {describe(error)}"
                with event_context(item):
                    log.error("event failed alone; dead-lettering it", consumer=self.name,
                              exc_info=not isinstance(error, EventRejected))
                decoded[index] = reason
                outcomes.append("dead_lettered")
        await self._write_dead_letters(connection, batch, decoded, outcomes)
        return outcomes

    async def _claim(self, connection: asyncpg.Connection, records: Sequence[ConsumerRecord],
                     decoded: Sequence[Decoded]) -> set[tuple[str, str]]:
        """Insert the inbox rows in one statement; returns the (source, id) pairs seen for the first time.
        Every value is bounded and validated by the contract before it gets here."""
        rows = [(e.attributes.source, e.attributes.id, e.attributes.type, r.topic, r.partition, r.offset)
                for r, e in zip(records, decoded, strict=True) if not isinstance(e, str)]
        if not rows:
            return set()
        inserted = await connection.fetch(
            """INSERT INTO inbox (consumer, event_source, event_id, event_type, topic, partition, "offset")
               SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[])
               ON CONFLICT (consumer, event_source, event_id) DO NOTHING
               RETURNING event_source, event_id""",
            self.name, *map(list, zip(*rows, strict=True)),
        )
        return {(row["event_source"], row["event_id"]) for row in inserted}

    async def _unclaim(self, connection: asyncpg.Connection, events: list[CloudEvent[Any]]) -> None:
        await connection.execute(
            """DELETE FROM inbox USING unnest($2::text[], $3::text[]) AS u(s, i)
               WHERE consumer = $1 AND event_source = u.s AND event_id = u.i""",
            self.name, [e.attributes.source for e in events], [e.attributes.id for e in events],
        )

    async def _write_dead_letters(self, connection: asyncpg.Connection, batch: list[ConsumerRecord],
                                  decoded: list[Decoded], outcomes: list[str]) -> None:
        """Keep the batch's dead letters; one kept before (a redelivery) counts as a duplicate."""
        indexes = [i for i, item in enumerate(decoded) if isinstance(item, str)]
        if not indexes:
            return
        stored = await self.dead_letters.write(connection, [(batch[i], decoded[i]) for i in indexes])
        for index, kept_now in zip(indexes, stored, strict=True):
            if not kept_now:
                outcomes[index] = "duplicate"

    def _decode(self, record: ConsumerRecord) -> Decoded:
        route = self.routes.get(record.topic)
        if route is None:
            return f"no handler for topic {record.topic!r}"
        try:
            return decode(record.headers or (), record.value, expected_type=route.event.event_type)
        except ContractViolation as violation:
            return str(violation)
        except Exception as error:  # anything a hostile record provokes in decoding is that record's
            return f"could not decode: {describe(error)}"

    def _report(self, batch: list[Any], decoded: list[Decoded], outcomes: list[str]) -> None:
        counts = Counter((record.topic, outcome) for record, outcome in zip(batch, outcomes, strict=True))
        for (topic, outcome), count in counts.items():  # one label lookup per kind, not per record
            metrics.EVENTS.labels(self.name, topic, outcome).inc(count)
        for record, item, outcome in zip(batch, decoded, outcomes, strict=True):
            if outcome == "dead_lettered":
                metrics.DEAD_LETTERS.labels(self.name, record.topic).inc()
                log.error("dead-lettered", consumer=self.name, topic=record.topic,
                          partition=record.partition, offset=record.offset, error=item,
                          **record_fields(getattr(record, "headers", None)))

    async def record_undecodable(self, record: Any, reason: str) -> None:
        """Dead-letter a record the client library could not even decode: only its place is known."""
        backoff = Backoff(self._backoff.initial, self._backoff.maximum)
        while True:
            try:
                async with self.pool.acquire() as connection, connection.transaction():
                    [kept_now] = await self.dead_letters.write(connection, [(record, reason)])
                break
            except Exception as error:
                if classify(error) != "transient" and backoff.attempt >= UNKNOWN_FAILURE_RETRIES:
                    log.exception("could not keep the undecodable record's dead letter; skipping it",
                                  consumer=self.name, topic=record.topic, partition=record.partition,
                                  offset=record.offset)
                    break
                if await self._stopped_within(backoff.next_delay()):
                    raise ProcessingAbandoned from error
        self._report([record], [reason], ["dead_lettered" if kept_now else "duplicate"])

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True


def _identity(event: CloudEvent[Any]) -> tuple[str, str]:
    return (event.attributes.source, event.attributes.id)


def by_topic(records: Sequence[ConsumerRecord]) -> dict[str, list[ConsumerRecord]]:
    batches: dict[str, list[ConsumerRecord]] = {}
    for record in records:
        batches.setdefault(record.topic, []).append(record)
    return batches


def first_offsets(batch: Sequence[ConsumerRecord]) -> dict[TopicPartition, int]:
    """Each partition of a batch, with the offset of its first record in it."""
    firsts: dict[TopicPartition, int] = {}
    for record in batch:
        firsts.setdefault(TopicPartition(record.topic, record.partition), record.offset)
    return firsts


async def commit_offsets(consumer: AIOKafkaConsumer, name: str, offsets: dict[TopicPartition, int]) -> None:
    """One request for every partition given; the consume loop reports lag after each poll."""
    try:
        await consumer.commit(offsets)
    except Exception as error:  # a rebalance or a broker hiccup: the inbox dedupes the redelivery
        log.warning("offset commit failed", consumer=name, partitions=sorted(map(str, offsets)), error=repr(error))
        return
