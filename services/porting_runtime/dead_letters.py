"""Messages that can never succeed: kept in the database and sent to the dead-letter topic."""

from __future__ import annotations

from typing import Any

import asyncpg

from schemas import KafkaRecord

from .outbox import write_outbox

MAX_ERROR_LENGTH = 4000


async def record_dead_letter(
    connection: asyncpg.Connection,
    *,
    consumer: str,
    dead_letter_topic: str,
    record: Any,
    error: str,
    event_id: str | None = None,
) -> bool:
    """Keep the original bytes and headers with the reason and where it came from.

    Returns False when this exact record (same consumer, topic, partition, offset) was
    dead-lettered before, e.g. redelivered after a crash: it is not sent twice.
    """
    error = error[:MAX_ERROR_LENGTH]
    headers = list(record.headers or ())
    inserted = await connection.fetchval(
        """INSERT INTO dead_letters (consumer, source_topic, source_partition, source_offset,
                                     key, value, header_names, header_values, error, event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (consumer, source_topic, source_partition, source_offset) DO NOTHING
           RETURNING id""",
        consumer, record.topic, record.partition, record.offset, record.key, record.value,
        [n for n, _ in headers], [v for _, v in headers], error, event_id,
    )
    if inserted is None:
        return False
    # Original headers first, then where and why, in the usual dead-letter header names.
    reason_headers = [
        ("dlt_error", error.encode()),
        ("dlt_consumer", consumer.encode()),
        ("dlt_source_topic", record.topic.encode()),
        ("dlt_source_partition", str(record.partition).encode()),
        ("dlt_source_offset", str(record.offset).encode()),
    ]
    await write_outbox(
        connection,
        [KafkaRecord(dead_letter_topic, record.key or b"", record.value or b"", headers + reason_headers)],
    )
    return True


async def list_dead_letters(connection: asyncpg.Connection, *, include_redriven: bool = False,
                            limit: int = 100) -> list[asyncpg.Record]:
    return await connection.fetch(
        """SELECT id, consumer, source_topic, source_partition, source_offset, event_id, error,
                  dead_lettered_at, redriven_at
           FROM dead_letters WHERE $1 OR redriven_at IS NULL ORDER BY id LIMIT $2""",
        include_redriven, limit,
    )


async def get_dead_letter(connection: asyncpg.Connection, dead_letter_id: int) -> asyncpg.Record | None:
    return await connection.fetchrow("SELECT * FROM dead_letters WHERE id = $1", dead_letter_id)


async def redrive(connection: asyncpg.Connection, dead_letter_ids: list[int] | None) -> list[int]:
    """Send dead letters back to their source topic, as they were, through the service's own outbox.

    Marking them redriven and queueing them commit together, so a dead letter is redriven once.
    Meant for after a fix is deployed: a dead-lettered event left no inbox row, so it is handled.
    """
    async with connection.transaction():
        rows = await connection.fetch(
            """UPDATE dead_letters SET redriven_at = now()
               WHERE redriven_at IS NULL AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))
               RETURNING id, source_topic, key, value, header_names, header_values""",
            dead_letter_ids,
        )
        rows = sorted(rows, key=lambda r: r["id"])
        await write_outbox(connection, [
            KafkaRecord(r["source_topic"], r["key"] or b"", r["value"] or b"",
                        list(zip(r["header_names"], r["header_values"], strict=True)))
            for r in rows
        ])
    return [r["id"] for r in rows]
