"""Stored copies of events are not kept for ever: dead letters for `dead_letter_retention_days`,
and sent outbox rows an earlier version kept (the relay now deletes a row once the broker
acknowledged it). Run by the service in a supervised loop."""

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
    sent_outbox_rows: int


async def purge_expired(connection: asyncpg.Connection, settings: Any, *, now: datetime | None = None) -> Purged:
    """Delete dead letters older than their retention (as of `now`, the database's clock by
    default), and every sent outbox row (the broker has it; also one set aside after it was
    sent). An outbox row not sent is never deleted."""
    now = now or await connection.fetchval("SELECT now()")
    dead_letters = await _delete_in_batches(
        connection,
        """DELETE FROM dead_letters WHERE id IN (
               SELECT id FROM dead_letters WHERE dead_lettered_at < $1 LIMIT $2)""",
        now - timedelta(days=settings.dead_letter_retention_days),
    )
    # Up to one release ago a sent row was marked and kept a day, and during a rolling upgrade
    # the old relays still mark them: deleted here in batches, not in one migration's transaction
    # (a day of sent rows at the target rate is ~100 million).
    sent_outbox_rows = await _delete_in_batches(
        connection,
        """DELETE FROM outbox WHERE id IN (
               SELECT id FROM outbox WHERE sent_at IS NOT NULL LIMIT $1)""",
    )
    return Purged(dead_letters, sent_outbox_rows)


async def _delete_in_batches(connection: asyncpg.Connection, statement: str, *arguments: object) -> int:
    """`statement` deletes at most its last parameter's rows at a time: run until it deletes fewer."""
    total = 0
    while True:
        status = await connection.execute(statement, *arguments, PURGE_BATCH)
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
