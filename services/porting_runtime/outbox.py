"""Writing follow-up records to the outbox, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from schemas import KafkaRecord

from .statement import Writes, write_all

NOTIFY_CHANNEL = "outbox_written"

# Writers of the same key take that key's transaction-scoped advisory lock first (in sorted order,
# so two writers cannot deadlock on each other's keys), before their rows get ids: a later writer
# of the key gets its ids only after the earlier one committed. Id order is commit order per key,
# the order the relay publishes in.
#
# Two ways in, the same rows. A small batch goes in one statement (a unit of work's other writes
# join it: statement.py), one round trip: the lock
# subquery in WHERE runs once, before the first row is made, and each row's headers are a slice
# of two flat arrays (a row's own header arrays cannot be unnested: SQL arrays are rectangular).
# But PostgreSQL walks a variable-length array from its start to reach a slice, so that cost
# grows with the batch's square; from COPY_FROM_ROWS rows on, one statement takes the locks and
# COPY writes the rows (ids follow its order): 400 rows of 1.3 KB took 25 instead of 45 µs a row,
# while 5 rows took 100 instead of 80 (two more round trips).
COPY_FROM_ROWS = 100
_WRITTEN = """
written AS (
    INSERT INTO outbox (topic, key, value, header_names, header_values, sealed)
    SELECT r.topic, r.key, r.value, ($4::text[])[r.first:r.last], ($5::bytea[])[r.first:r.last], r.sealed
    FROM unnest($1::text[], $2::bytea[], $3::bytea[], $6::int[], $7::int[], $8::boolean[])
         WITH ORDINALITY AS r(topic, key, value, first, last, sealed, n)
    WHERE (SELECT count(pg_advisory_xact_lock(hashtextextended(k, 42)))
           FROM (SELECT DISTINCT k FROM unnest($9::text[]) AS k ORDER BY k) AS keys) >= 0
    ORDER BY r.n
    RETURNING 1)
"""
# The relay's wake-up is sent by PostgreSQL when the transaction commits.
_LOCK_KEYS = """
SELECT pg_notify($2, '') FROM (
    SELECT count(pg_advisory_xact_lock(hashtextextended(k, 42)))
      FROM (SELECT DISTINCT k FROM unnest($1::text[]) AS k ORDER BY k) AS keys) AS locked
"""
_COLUMNS = ("topic", "key", "value", "header_names", "header_values", "sealed")


@dataclass(frozen=True)
class OutboxRow:
    topic: str
    key: bytes | None
    value: bytes | None
    header_names: Sequence[str]
    header_values: Sequence[bytes | None]
    sealed: bool = False


def ordering_key(key: bytes | None) -> str:
    """The text a key's ordering lock is taken on; the same for every writer of the outbox
    (NUL, which a text parameter cannot hold, is replaced)."""
    return (key or b"").decode("utf-8", "replace").replace("\x00", "\ufffd")


async def insert_outbox_rows(connection: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None:
    """Append rows to the outbox in order, and wake the relay when the transaction commits."""
    if (part := outbox_part(rows)) is not None:
        await write_all(connection, [part])
        return
    if not rows:
        return
    await connection.execute(_LOCK_KEYS, [ordering_key(r.key) for r in rows], NOTIFY_CHANNEL)
    try:
        await connection.copy_records_to_table(
            "outbox", columns=_COLUMNS,
            records=[(r.topic, r.key, r.value, list(r.header_names), list(r.header_values), r.sealed)
                     for r in rows],
        )
    except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError):
        raise  # the connection's or the database's: classified as such, not blamed on the rows
    except Exception as error:
        # A value asyncpg cannot encode: the statement path says DataError for it (the rows'
        # fault), COPY lets the encoder's own error through; the same verdict either way.
        raise asyncpg.DataError(f"invalid input for the outbox's COPY: {error!r}") from error


def outbox_part(rows: Sequence[OutboxRow]) -> Writes | None:
    """The rows as one part of a statement (`outbox_writes`); None when there are none, or
    COPY_FROM_ROWS or more, which `insert_outbox_rows` sends by COPY."""
    return outbox_writes(rows) if 0 < len(rows) < COPY_FROM_ROWS else None


def outbox_writes(rows: Sequence[OutboxRow]) -> Writes:
    """Fewer than COPY_FROM_ROWS rows as one part of a statement (`statement.one_statement`),
    with the relay's wake-up."""
    names: list[str] = []
    values: list[bytes | None] = []
    firsts, lasts = [], []
    for row in rows:
        firsts.append(len(names) + 1)  # SQL arrays count from 1; an empty slice when last < first
        names.extend(row.header_names)
        values.extend(row.header_values)
        lasts.append(len(names))
    return Writes(_WRITTEN, [
        [r.topic for r in rows], [r.key for r in rows], [r.value for r in rows], names, values,
        firsts, lasts, [r.sealed for r in rows], [ordering_key(r.key) for r in rows], NOTIFY_CHANNEL,
    ], result="pg_notify($10, '')")


async def write_outbox(connection: asyncpg.Connection, records: Sequence[KafkaRecord]) -> None:
    """Append follow-up records to the outbox in order (see insert_outbox_rows)."""
    await insert_outbox_rows(connection, [outbox_row(r) for r in records])


def outbox_row(record: KafkaRecord) -> OutboxRow:
    """The outbox row of a follow-up record as it is (see sealed_outbox.sealed_row for one sealed at rest)."""
    return OutboxRow(record.topic, record.key, record.value, [n for n, _ in record.headers],
                     [v for _, v in record.headers])
