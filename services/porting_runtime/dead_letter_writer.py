"""How the pipeline hands records that can never succeed to the dead-letter store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from .dead_letters import record_dead_letters
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
