"""What a handler gets: one open transaction, and a way to publish follow-ups through it."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from schemas import EventAttributes, KafkaRecord, PortingEvent, encode

from .outbox import write_outbox


@dataclass
class UnitOfWork:
    """Everything a handler records commits together: its state, its inbox row, its follow-ups."""

    connection: asyncpg.Connection
    source: str
    topic_prefix: str = ""
    cause: EventAttributes | None = None
    _pending: list[KafkaRecord] = field(default_factory=list)

    def publish(self, event: PortingEvent) -> None:
        """Queue a follow-up; it reaches Kafka only if the transaction commits."""
        self._pending.append(
            encode(
                event,
                source=self.source,
                topic=f"{self.topic_prefix}{event.event_type}",
                caused_by=self.cause,
            )
        )

    @property
    def pending(self) -> list[KafkaRecord]:
        return list(self._pending)

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        await write_outbox(self.connection, pending)
