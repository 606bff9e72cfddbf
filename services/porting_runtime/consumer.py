"""The consumer pipeline: decode, dead-letter or handle, commit the database, then the offset.

A batch of records from one partition shares one transaction and one offset commit;
a single message is the batch of one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from schemas import CloudEvent, ContractViolation, PortingEvent, decode, dead_letter_topic
from schemas.tracing import trace_id_of

from . import metrics
from .dead_letters import record_dead_letter
from .failures import Backoff, is_transient
from .logs import bind_event_context, clear_event_context, get_logger
from .outbox import write_outbox
from .unit_of_work import UnitOfWork

log = get_logger(__name__)

Handler = Callable[[CloudEvent[Any], UnitOfWork], Awaitable[None]]
AfterCommit = Callable[[Sequence[ConsumerRecord]], Awaitable[None]]


class EventRejected(Exception):
    """A rule the event's data breaks: it can never succeed, so it is dead-lettered with this reason."""


class ProcessingAbandoned(Exception):
    """Shutdown came while a failure was being retried: nothing was committed, the records come again."""


class _Poisoned(Exception):
    pass


@dataclass(frozen=True)
class Route:
    event: type[PortingEvent]
    handler: Handler


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
    ) -> None:
        self.name = name
        self.pool = pool
        self.topic_prefix = topic_prefix
        self.routes = {f"{topic_prefix}{r.event.event_type}": r for r in routes}
        self.dead_letter_topic = f"{topic_prefix}{dead_letter_topic(name)}"
        self._after_commit = after_commit
        self._backoff = backoff or Backoff()
        self._stopping = asyncio.Event()

    @property
    def topics(self) -> list[str]:
        return list(self.routes)

    def stop(self) -> None:
        self._stopping.set()

    async def process(self, records: Sequence[ConsumerRecord], consumer: AIOKafkaConsumer | None) -> None:
        """Handle records (any partitions), committing each partition's offset after its transaction."""
        batches = _by_partition(records)
        for index, (partition, batch) in enumerate(batches.items()):
            try:
                await self._process_partition(batch)
            except ProcessingAbandoned:
                if consumer is not None:
                    # Rewind what was not committed, so this consumer can never skip it.
                    for rest_partition, rest in list(batches.items())[index:]:
                        consumer.seek(rest_partition, rest[0].offset)
                raise
            if consumer is not None:
                await self._commit_offset(consumer, partition, batch[-1].offset + 1)

    async def _process_partition(self, batch: list[ConsumerRecord]) -> None:
        decoded: list[CloudEvent[Any] | str] = [self._decode(record) for record in batch]
        backoff = Backoff(self._backoff.initial, self._backoff.maximum)
        while True:
            try:
                with metrics.HANDLER_SECONDS.labels(self.name).time():
                    outcomes = await self._record_effects(batch, decoded)
                break
            except Exception as error:
                # Handlers' own failures were dead-lettered above; what reaches here is the database
                # or broker being away, or a fault in the pipeline itself. Either way the partition is
                # held and retried: skipping it would lose the records.
                metrics.TRANSIENT_FAILURES.labels("consumer").inc()
                delay = backoff.next_delay()
                if is_transient(error):
                    log.warning("transient failure, retrying", consumer=self.name, error=repr(error), retry_in=round(delay, 2))
                else:
                    log.exception("unexpected failure, holding the partition and retrying", consumer=self.name,
                                  retry_in=round(delay, 2))
                if await self._stopped_within(delay):
                    raise ProcessingAbandoned from error
        for record, item, outcome in zip(batch, decoded, outcomes, strict=True):
            metrics.EVENTS.labels(self.name, record.topic, outcome).inc()
            if outcome == "dead_lettered":
                metrics.DEAD_LETTERS.labels(self.name, record.topic).inc()
                log.error("dead-lettered", consumer=self.name, topic=record.topic,
                          partition=record.partition, offset=record.offset, error=item)
        if self._after_commit is not None:
            await self._after_commit(batch)

    async def _record_effects(self, batch: list[ConsumerRecord], decoded: list[CloudEvent[Any] | str]) -> list[str]:
        # Optimistic: the whole batch in one transaction. A handler that fails for good
        # marks its record poisoned and the batch runs again without it, so no savepoints
        # are paid for in the common case.
        while True:
            try:
                async with self.pool.acquire() as connection, connection.transaction():
                    return await self._apply(connection, batch, decoded)
            except _Poisoned:
                continue

    async def _apply(self, connection: asyncpg.Connection, batch: list[ConsumerRecord], decoded: list[CloudEvent[Any] | str]) -> list[str]:
        claimed = await self._claim(connection, batch, decoded)
        outcomes: list[str] = []
        follow_ups = []
        for index, (record, item) in enumerate(zip(batch, decoded, strict=True)):
            if isinstance(item, str):
                await record_dead_letter(
                    connection, consumer=self.name, dead_letter_topic=self.dead_letter_topic,
                    record=record, error=item, event_id=_header(record, "ce_id"),
                )
                outcomes.append("dead_lettered")
                continue
            if item.attributes.id not in claimed:
                outcomes.append("duplicate")
                continue
            claimed.discard(item.attributes.id)
            unit = UnitOfWork(connection, source=self.name, topic_prefix=self.topic_prefix, cause=item.attributes)
            bind_event_context(
                port_in_request_sid=item.data.subject, event_id=item.attributes.id,
                event_type=item.attributes.type, trace_id=trace_id_of(item.attributes.traceparent),
            )
            try:
                await self.routes[record.topic].handler(item, unit)
            except Exception as error:
                if is_transient(error):
                    raise
                reason = str(error) if isinstance(error, EventRejected) else f"handler failed: {type(error).__name__}: {error}"
                log.error("handler failed for good", exc_info=not isinstance(error, EventRejected))
                decoded[index] = reason
                raise _Poisoned from error
            finally:
                clear_event_context()
            follow_ups.extend(unit.pending)
            outcomes.append("handled")
        await write_outbox(connection, follow_ups)
        return outcomes

    async def _claim(self, connection: asyncpg.Connection, batch: list[ConsumerRecord], decoded: list[CloudEvent[Any] | str]) -> set[str]:
        """Insert the inbox rows of the batch in one statement; returns the ids seen for the first time."""
        rows = [(e.attributes.id, e.attributes.type, r.topic, r.partition, r.offset)
                for r, e in zip(batch, decoded, strict=True) if not isinstance(e, str)]
        if not rows:
            return set()
        inserted = await connection.fetch(
            """INSERT INTO inbox (consumer, event_id, event_type, topic, partition, "offset")
               SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[])
               ON CONFLICT (consumer, event_id) DO NOTHING
               RETURNING event_id""",
            self.name, *map(list, zip(*rows, strict=True)),
        )
        return {row["event_id"] for row in inserted}

    def _decode(self, record: ConsumerRecord) -> CloudEvent[Any] | str:
        route = self.routes.get(record.topic)
        if route is None:
            return f"no handler for topic {record.topic!r}"
        try:
            return decode(record.headers or (), record.value, expected_type=route.event.event_type)
        except ContractViolation as violation:
            return str(violation)

    async def _commit_offset(self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({partition: offset})
        except Exception as error:  # a rebalance or a broker hiccup: the inbox dedupes the redelivery
            log.warning("offset commit failed", consumer=self.name, partition=str(partition), error=repr(error))
            return
        highwater = consumer.highwater(partition)
        if highwater is not None:
            metrics.CONSUMER_LAG.labels(self.name, partition.topic, partition.partition).set(max(0, highwater - offset))

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True


def _by_partition(records: Sequence[ConsumerRecord]) -> dict[TopicPartition, list[ConsumerRecord]]:
    batches: dict[TopicPartition, list[ConsumerRecord]] = {}
    for record in records:
        batches.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
    return batches


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode("utf-8", "replace")
    return None
