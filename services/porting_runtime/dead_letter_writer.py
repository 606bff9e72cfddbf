"""How the pipeline hands records that can never succeed to the dead-letter store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from .dead_letters import RawRecord, record_dead_letters
from .record_text import name_bytes
from .sealing import Sealer


@dataclass(frozen=True)
class DeadLetterWriter:
    consumer: str
    topic: str
    sealer: Sealer | None = None
    max_message_bytes: int = 1_000_000

    def _sealer(self) -> Sealer:
        if self.sealer is not None:
            return self.sealer
        from .settings import ServiceSettings

        return Sealer.from_settings(ServiceSettings())

    async def write(self, connection: asyncpg.Connection, failures: Sequence[tuple[Any, str]]) -> list[bool]:
        """Keep each (record, reason) in the caller's transaction; a record may be an UndecodableRecord.
        Per failure: True when kept now, False for a redelivery of a dead letter already kept."""
        return await record_dead_letters(connection, consumer=self.consumer, dead_letter_topic=self.topic,
                                  failures=failures, sealer=self._sealer(), max_message_bytes=self.max_message_bytes)

    async def write_consumed(self, connection: asyncpg.Connection, record: RawRecord, reason: str) -> bool:
        """A record consumed in an earlier transaction (kept aside, say) turns out never to succeed:
        kept like any dead letter, and its inbox row goes, so a redrive after a fix is handled
        rather than skipped as a duplicate. False for one dead-lettered before."""
        [kept] = await self.write(connection, [(record, reason)])
        found = {name_bytes(name): value for name, value in record.headers}
        source, event_id = found.get(b"ce_source"), found.get(b"ce_id")
        if source is not None and event_id is not None:
            await connection.execute(
                "DELETE FROM inbox WHERE consumer = $1 AND event_source = $2 AND event_id = $3",
                self.consumer, source.decode("utf-8", "replace"), event_id.decode("utf-8", "replace"))
        return kept
