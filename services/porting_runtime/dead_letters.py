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
