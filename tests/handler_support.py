"""Run a service's handlers against a real PostgreSQL with fabricated records: no broker.

Rules that need the database (loads, writes, follow-ups, timers) are tested in milliseconds
this way; what needs Kafka is tested with the real broker elsewhere.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from porting_runtime import EventConsumer, MovableClock, ServiceDefinition, ServiceSettings
from porting_runtime.database import apply_migrations, create_pool
from porting_runtime.dead_letter_writer import DeadLetterWriter
from porting_runtime.health import ProgressBoard
from porting_runtime.sealing import Sealer
from porting_runtime.timer_loop import TimerLoop
from schemas import KafkaRecord, PortingEvent, dead_letter_topic, encode

_offsets = itertools.count()


def as_consumer_record(record: KafkaRecord, partition: int = 0) -> ConsumerRecord:
    return ConsumerRecord(topic=record.topic, partition=partition, offset=next(_offsets), timestamp=0,
                          timestamp_type=0, key=record.key, value=record.value, checksum=None,
                          serialized_key_size=len(record.key or b""), serialized_value_size=len(record.value or b""),
                          headers=list(record.headers))


@dataclass
class HandlerHarness:
    """A service's pipeline and timers on its own database, fed by hand."""

    definition: ServiceDefinition
    settings: ServiceSettings
    pool: asyncpg.Pool
    pipeline: EventConsumer
    timers: TimerLoop
    clock: MovableClock

    def record(self, event: PortingEvent, **options: Any) -> ConsumerRecord:
        return as_consumer_record(encode(event, source="tests", topic=self.settings.topic(event.event_type), **options))

    async def handle(self, *events_or_records: PortingEvent | ConsumerRecord) -> None:
        """One partition batch, in order, committed as the consumer would."""
        records = [e if isinstance(e, ConsumerRecord) else self.record(e) for e in events_or_records]
        await self.pipeline.process(records)

    async def fire_due_timers(self) -> int:
        fired = 0
        while claimed := await self.timers.fire_due():
            fired += claimed
        return fired

    async def follow_ups(self, event_type: str | None = None) -> list[asyncpg.Record]:
        rows = await self.pool.fetch("SELECT topic, key, value, header_names, header_values FROM outbox "
                                     "WHERE NOT sealed ORDER BY id")
        wanted = self.settings.topic(event_type) if event_type else None
        return [r for r in rows if wanted is None or r["topic"] == wanted]

    async def dead_letters(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT id, error, event_id FROM dead_letters ORDER BY id")


@contextlib.asynccontextmanager
async def handler_harness(definition: ServiceDefinition, settings: ServiceSettings,
                          clock: MovableClock | None = None) -> AsyncIterator[HandlerHarness]:
    clock = clock or MovableClock()
    pool = await create_pool(settings.database_url, max_size=4)
    try:
        await apply_migrations(pool, definition.name, definition.migrations)
        options = definition.unit_options(settings, clock)
        board = ProgressBoard()
        pipeline = EventConsumer(
            name=definition.name, pool=pool, routes=definition.routes(pool, settings), topic_prefix=settings.topic_prefix,
            unit_options=options, board=board,
            dead_letters=DeadLetterWriter(definition.name, settings.topic(dead_letter_topic(definition.name)),
                                          Sealer.from_settings(settings), settings.max_message_bytes),
        )
        timers = TimerLoop(service=definition.name, pool=pool, database_url=settings.database_url,
                           routes=definition.timers(pool, settings) if definition.timers else (),
                           unit_options=options, board=board)
        yield HandlerHarness(definition, settings, pool, pipeline, timers, clock)
    finally:
        await pool.close()


