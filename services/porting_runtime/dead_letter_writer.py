"""How the pipeline hands records that can never succeed to the dead-letter store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from .dead_letters import record_dead_letter


@dataclass(frozen=True)
class DeadLetterWriter:
    consumer: str
    topic: str

    async def write(self, connection: asyncpg.Connection, failures: Sequence[tuple[Any, str]]) -> None:
        for record, reason in failures:
            await record_dead_letter(connection, consumer=self.consumer, dead_letter_topic=self.topic,
                                     record=record, error=reason)
