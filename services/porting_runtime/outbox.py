"""Writing follow-up records to the outbox, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from schemas import KafkaRecord

NOTIFY_CHANNEL = "outbox_written"
_COLUMNS = ["topic", "key", "value", "header_names", "header_values"]


async def write_outbox(connection: asyncpg.Connection, records: Sequence[KafkaRecord]) -> None:
    """Append records to the outbox in order, and wake the relay when the transaction commits.

    Writers of the same key take that key's transaction-scoped advisory lock first (in
    sorted order, so two writers cannot deadlock on each other's keys). A later writer of
    the key therefore gets its ids only after the earlier one committed: id order is
    commit order per key, which is the order the relay publishes in.
    """
    if not records:
        return
    keys = sorted({(r.key or b"").decode("utf-8", "replace") for r in records})
    await connection.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 42)) FROM unnest($1::text[]) AS k ORDER BY k",
        keys,
    )
    await connection.copy_records_to_table(
        "outbox",
        records=[
            (r.topic, r.key, r.value, [n for n, _ in r.headers], [v for _, v in r.headers])
            for r in records
        ],
        columns=_COLUMNS,
    )
    await connection.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
