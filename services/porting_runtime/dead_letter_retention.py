"""Stored copies of events are not kept for ever: dead letters for `dead_letter_retention_days`.
(Outbox rows are deleted as soon as the broker acknowledges them.) Run by the service in a
supervised loop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from .sealing import Sealer

# Deleted in batches, each its own short transaction, so a large backlog never holds locks long.
PURGE_BATCH = 5000
SEAL_BATCH = 200


@dataclass(frozen=True)
class Purged:
    dead_letters: int


async def purge_expired(connection: asyncpg.Connection, settings: Any, *, now: datetime | None = None) -> Purged:
    """Delete dead letters older than their retention (as of `now`, the database's clock by default)."""
    now = now or await connection.fetchval("SELECT now()")
    dead_letters = await _delete_in_batches(
        connection,
        """DELETE FROM dead_letters WHERE id IN (
               SELECT id FROM dead_letters WHERE dead_lettered_at < $1 LIMIT $2)""",
        now - timedelta(days=settings.dead_letter_retention_days),
    )
    return Purged(dead_letters)


async def _delete_in_batches(connection: asyncpg.Connection, statement: str, cutoff: datetime) -> int:
    total = 0
    while True:
        status = await connection.execute(statement, cutoff, PURGE_BATCH)
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < PURGE_BATCH:
            return total


async def seal_legacy_dead_letters(connection: asyncpg.Connection, sealer: Sealer) -> int:
    """Seal dead letters kept in clear before sealing existed. Run once at start; idempotent."""
    total = 0
    while True:
        async with connection.transaction():
            rows = await connection.fetch(
                """SELECT id, value, header_values FROM dead_letters WHERE NOT sealed
                   ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                SEAL_BATCH,
            )
            await connection.executemany(
                "UPDATE dead_letters SET value = $2, header_values = $3, sealed = true WHERE id = $1",
                [(r["id"], sealer.seal_optional(r["value"]), [sealer.seal_optional(v) for v in r["header_values"]])
                 for r in rows],
            )
        total += len(rows)
        if len(rows) < SEAL_BATCH:
            return total
