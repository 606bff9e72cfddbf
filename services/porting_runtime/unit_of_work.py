"""What a handler gets: one open transaction, and ways to publish, reject and schedule through it.

Consumers, timers, HTTP handlers and operator commands all write through a unit of work, so
no code path can change state and forget its follow-ups: they commit together or not at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from schemas import CloudEvent, EventAttributes, KafkaRecord, PortingEvent, dead_letter_topic, encode

from .clock import WALL_CLOCK, Clock
from .dead_letter_writer import DeadLetterWriter
from .dead_letters import RawRecord
from .failures import FollowUpRefused
from .message_size import message_size
from .outbox import insert_outbox_rows, outbox_part, outbox_row
from .sealed_outbox import SealedMessage, sealed_row
from .sealing import Sealer
from .statement import Writes, write_all
from .timers import TimerChanges, timer_writes


@dataclass
class UnitOfWork:
    """Everything recorded through it commits together: state, inbox rows, follow-ups, timers."""

    connection: asyncpg.Connection
    source: str
    topic_prefix: str = ""
    cause: EventAttributes | None = None
    # Event types this service declared it publishes; None accepts any (operator tools).
    publishes: frozenset[str] | None = None
    max_message_bytes: int = 1_000_000
    clock: Clock = WALL_CLOCK
    # Seals follow-ups published with `sealed=True` (the runtime gives every unit one).
    sealer: Sealer | None = None
    # Follow-ups in the order they were published, each with whether it is sealed at rest.
    _follow_ups: list[tuple[KafkaRecord, bool]] = field(default_factory=list)
    _timers: TimerChanges = field(default_factory=TimerChanges)
    _rejected: dict[int, str] = field(default_factory=dict)
    _writes: list[Writes] = field(default_factory=list)

    def publish(self, event: PortingEvent, cause: CloudEvent[Any] | EventAttributes | None = None, *,
                sealed: bool = False) -> None:
        """Queue a follow-up; it reaches Kafka only if the transaction commits. A follow-up names
        its cause, so it continues the cause's trace (the unit's own cause by default). `sealed`:
        it carries secrets (a PIN), so its outbox row is encrypted at rest until the relay sends it."""
        if self.publishes is not None and event.event_type not in self.publishes:
            raise FollowUpRefused(f"{self.source} does not declare that it publishes {event.event_type}")
        attributes = cause.attributes if isinstance(cause, CloudEvent) else cause
        record = encode(event, source=self.source, topic=f"{self.topic_prefix}{event.event_type}",
                        caused_by=attributes or self.cause)
        if (size := message_size(record.key, record.value, record.headers)) > self.max_message_bytes:
            raise FollowUpRefused(f"{event.event_type} would be {size} bytes; the broker takes at most "
                                  f"{self.max_message_bytes}")
        if sealed and self.sealer is None:
            raise FollowUpRefused(f"{event.event_type} must be sealed and this unit of work has no key")
        self._follow_ups.append((record, sealed))

    def reject(self, event: CloudEvent[Any], reason: str) -> None:
        """From a batch handler: this event can never succeed; it is dead-lettered with the reason.
        The handler must leave no effect of it behind."""
        self._rejected[id(event)] = reason

    def rejection_of(self, event: CloudEvent[Any]) -> str | None:
        return self._rejected.get(id(event))

    async def dead_letter(self, record: RawRecord, reason: str) -> bool:
        """An event this service consumed in an earlier transaction (a parked one) is found to
        never succeed: dead-lettered now, in this transaction, with its original bytes and place,
        as if refused when consumed (`porting dead-letters`, redrive). False when already kept."""
        writer = DeadLetterWriter(self.source, f"{self.topic_prefix}{dead_letter_topic(self.source)}",
                                  self.sealer, self.max_message_bytes)
        return await writer.write_consumed(self.connection, record, reason)

    def schedule(self, kind: str, key: str, due_at: datetime, data: Mapping[str, Any] | None = None,
                 cause: CloudEvent[Any] | EventAttributes | None = None) -> None:
        """A durable timer, fired once into the handler of its kind; replaces a pending one of the
        same kind and key. It carries the trace of its cause (the unit's own by default)."""
        attributes = (cause.attributes if isinstance(cause, CloudEvent) else cause) or self.cause
        traceparent = attributes.traceparent if attributes else None
        self._timers.schedule(kind, key, due_at, dict(data or {}), traceparent)

    def cancel_timers(self, kind: str, keys: Iterable[str]) -> None:
        self._timers.cancel(kind, keys)

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def pending(self) -> list[KafkaRecord]:
        """The follow-ups published so far and not sealed."""
        return [record for record, sealed in self._follow_ups if not sealed]

    def take_follow_ups(self) -> list[tuple[KafkaRecord, bool]]:
        """Every follow-up published so far, in order, with whether it is sealed; the unit forgets them."""
        follow_ups, self._follow_ups = self._follow_ups, []
        return follow_ups

    def write(self, writes: Writes | None) -> None:
        """The handler's own writes, sent at flush in one statement with the follow-ups and the
        timer changes: one round trip for a batch's state, timers and outbox. None: nothing."""
        if writes is not None:
            self._writes.append(writes)

    async def write_own_now(self) -> None:
        """The handler's own writes alone, now (an event handled alone: a fault of its own writes
        is then told from one of the follow-ups' and timers')."""
        parts, self._writes = self._writes, []
        await write_all(self.connection, parts)

    async def flush(self) -> None:
        """Write what was queued in the open transaction: the handler's writes, the follow-ups
        (in publish order) and the timer changes, in one statement; a batch of COPY_FROM_ROWS
        follow-ups or more goes by COPY after it."""
        rows = [
            sealed_row(SealedMessage(r.topic, r.key, r.value, [(n.encode(), v) for n, v in r.headers]),
                       self.sealer) if sealed  # type: ignore[arg-type]
            else outbox_row(r)
            for r, sealed in self.take_follow_ups()
        ]
        parts, self._writes = self._writes, []
        if (outbox := outbox_part(rows)) is not None:
            parts.append(outbox)
        changes, self._timers = self._timers, TimerChanges()
        if (timers := timer_writes(changes)) is not None:
            parts.append(timers)
        await write_all(self.connection, parts)
        if outbox is None:  # none, or enough to go by COPY
            await insert_outbox_rows(self.connection, rows)


@contextlib.asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, *, source: str, topic_prefix: str = "",
                       publishes: Iterable[str] | None = None, max_message_bytes: int = 1_000_000,
                       clock: Clock = WALL_CLOCK, sealer: Sealer | None = None) -> AsyncIterator[UnitOfWork]:
    """A transaction for code outside consumers (HTTP, operator commands, background loops):
    state and follow-ups commit together when the block ends without an error."""
    async with pool.acquire() as connection, connection.transaction():
        unit = UnitOfWork(connection, source=source, topic_prefix=topic_prefix,
                          publishes=frozenset(publishes) if publishes is not None else None,
                          max_message_bytes=max_message_bytes, clock=clock, sealer=sealer)
        yield unit
        await unit.flush()
