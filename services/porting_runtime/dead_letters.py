"""Messages that can never succeed: kept, sealed, in the database and sent to the dead-letter topic.

- Identity is the place (consumer, topic, partition, offset) plus a hash of the content (and
  broker timestamp when known). The embedded broker starts offsets at zero again after a
  restart while Postgres keeps its rows, so a place alone would drop the new record there.
  Only a true redelivery (same place, same bytes) is recognised and not stored or sent again.
- Nothing a record holds can make the insert fail: header names and values are bytea (a NULL
  value stays NULL), topic, event id and error are escaped and bounded.
- The value and header values are sealed (sealing.py); so is the outbox copy.
- A copy too large for the broker is published cut, with `dlt_truncated`; the row keeps all.
- The published copy carries no PIN or account number (`dlt_redacted` says what changed): JSON
  has those fields' values replaced, a value that is not JSON is withheld, a header named as
  one is replaced. The row keeps the original for `show --reveal` and redrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from .dead_letter_shape import (
    RawHeaders,
    content_hash,
    fit_to_broker,
    original_size,
    undecodable_hash,
)
from .logs import get_logger
from .message_size import DEFAULT_MAX_MESSAGE_BYTES, message_size
from .record_text import name_bytes, safe_bytes_text, safe_text
from .sealed_outbox import SealedMessage, write_sealed_outbox
from .secret_fields import REDACTED_NOTE, topic_copy, topic_copy_headers
from .sealing import Sealer

log = get_logger(__name__)

MAX_ERROR_CHARS = 4000
MAX_EVENT_ID_CHARS = 200
MAX_TOPIC_CHARS = 300  # Kafka allows 249


class RawRecord(Protocol):
    """What the consumer has of a record (aiokafka's ConsumerRecord fits). An optional
    `timestamp` (ms; negative for unknown) joins the identity when present."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str | bytes, bytes | None]]


@dataclass(frozen=True)
class UndecodableRecord:
    """A record the client library could not decode: only its place is known, no bytes."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None = None


@dataclass(frozen=True)
class _Prepared:
    identity: tuple[str, int, int, bytes]
    row: tuple[Any, ...]
    copy: SealedMessage


async def record_dead_letters(
    connection: asyncpg.Connection,
    *,
    consumer: str,
    dead_letter_topic: str,
    failures: Sequence[tuple[RawRecord | UndecodableRecord, str]],
    sealer: Sealer,
    max_message_bytes: int,
) -> list[bool]:
    """Keep each (record, error) and queue its dead-letter copy, in the caller's transaction,
    with one INSERT for the batch. Returns, per failure, True when stored now and False when
    it is a true redelivery of a dead letter already kept (nothing stored or sent again)."""
    if not failures:
        return []
    prepared = [_prepare(consumer, dead_letter_topic, record, error, sealer, max_message_bytes)
                for record, error in failures]
    inserted = await connection.fetch(
        """INSERT INTO dead_letters (consumer, source_topic, source_partition, source_offset, source_timestamp,
                                     content_hash, key, value, header_names, header_values, error, event_id,
                                     original_kept, original_size, published_truncated, sealed)
           SELECT i.consumer, i.source_topic, i.source_partition, i.source_offset, i.source_timestamp,
                  i.content_hash, i.key, i.value, i.header_names, i.header_values, i.error, i.event_id,
                  i.original_kept, i.original_size, i.published_truncated, true
           FROM unnest($1::dead_letter_input[]) AS i
           ON CONFLICT ON CONSTRAINT dead_letters_identity DO NOTHING
           RETURNING id, source_topic, source_partition, source_offset, content_hash""",
        [p.row for p in prepared],
    )
    ids = {(r["source_topic"], r["source_partition"], r["source_offset"], r["content_hash"]): r["id"]
           for r in inserted}
    stored: list[bool] = []
    copies: list[SealedMessage] = []
    for item in prepared:
        # pop: a record twice in one batch is stored (and sent) once, like any redelivery.
        dead_letter_id = ids.pop(item.identity, None)
        stored.append(dead_letter_id is not None)
        if dead_letter_id is None:
            topic, partition, offset, _ = item.identity
            log.info("dead letter already kept; a redelivery", consumer=consumer, topic=topic,
                     partition=partition, offset=offset)
            continue
        copy = item.copy
        copies.append(SealedMessage(copy.topic, copy.key, copy.value,
                                    [*copy.headers, (b"dlt_id", str(dead_letter_id).encode())]))
    await write_sealed_outbox(connection, copies, sealer)
    return stored


async def record_undecodable(
    connection: asyncpg.Connection,
    *,
    consumer: str,
    dead_letter_topic: str,
    topic: str,
    partition: int,
    offset: int,
    error: str,
    sealer: Sealer,
    max_message_bytes: int,
    timestamp: int | None = None,
) -> bool:
    """Keep a record the client library could not decode (its place and the error only) and
    send a dead letter saying so. False when it was kept before (same place and error)."""
    [stored] = await record_dead_letters(
        connection, consumer=consumer, dead_letter_topic=dead_letter_topic,
        failures=[(UndecodableRecord(topic, partition, offset, timestamp), error)],
        sealer=sealer, max_message_bytes=max_message_bytes,
    )
    return stored


def _prepare(consumer: str, dead_letter_topic: str, record: RawRecord | UndecodableRecord, error: str,
             sealer: Sealer, max_message_bytes: int) -> _Prepared:
    topic = safe_text(str(record.topic), MAX_TOPIC_CHARS)
    error = safe_text(str(error), MAX_ERROR_CHARS)
    timestamp = getattr(record, "timestamp", None)
    timestamp = timestamp if isinstance(timestamp, int) and timestamp >= 0 else None
    reasons: RawHeaders = [
        # The header's share of the broker's limit stays small whatever the error's length.
        (b"dlt_error", error.encode()[: max_message_bytes // 8].decode("utf-8", "ignore").encode()),
        (b"dlt_consumer", consumer.encode()),
        (b"dlt_source_topic", topic.encode()),
        (b"dlt_source_partition", str(record.partition).encode()),
        (b"dlt_source_offset", str(record.offset).encode()),
    ]
    if isinstance(record, UndecodableRecord):
        key, value, headers = None, None, []
        digest = undecodable_hash(error, timestamp)
        reasons.append((b"dlt_original_unavailable", b"the client library could not decode the record"))
    else:
        key, value = _optional_bytes(record.key), _optional_bytes(record.value)
        headers = [(name_bytes(n), _optional_bytes(v)) for n, v in (record.headers or ())]
        digest = content_hash(key, value, headers, timestamp)
    # The topic's copy carries no PIN or account number (DESIGN 9: sent on only in PortSubmitted);
    # the row keeps the original, sealed, for redrive.
    published, note = topic_copy(value)
    published_headers, secret_headers = topic_copy_headers(headers)
    if note is not None or secret_headers:
        reasons.append((b"dlt_redacted", note or REDACTED_NOTE))
    copy = fit_to_broker(key, published, published_headers, reasons, max_message_bytes)
    if copy.key is None and copy.value is None:  # a Kafka record needs one of them; the row keeps the NULLs
        copy = replace(copy, value=b"")
    row = (
        consumer, topic, record.partition, record.offset, timestamp, digest, key, sealer.seal_optional(value),
        [n for n, _ in headers], [sealer.seal_optional(v) for _, v in headers], error, _event_id(headers),
        not isinstance(record, UndecodableRecord), original_size(key, value, headers), copy.truncated,
    )
    return _Prepared((topic, record.partition, record.offset, digest), row,
                     SealedMessage(dead_letter_topic, copy.key, copy.value, copy.headers))


def _optional_bytes(data: Any) -> bytes | None:
    if data is None:
        return None
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    return bytes(data)


def _event_id(headers: RawHeaders) -> str | None:
    for name, value in headers:
        if name == b"ce_id" and value is not None:
            return safe_bytes_text(value, MAX_EVENT_ID_CHARS)
    return None


# Reading them back, for operators.

@dataclass(frozen=True)
class DeadLetter:
    id: int
    consumer: str
    source_topic: str
    source_partition: int
    source_offset: int
    event_id: str | None
    error: str
    dead_lettered_at: datetime
    redriven_at: datetime | None
    original_kept: bool
    original_size: int | None
    published_truncated: bool
    key: bytes | None
    value: bytes | None  # unsealed
    headers: RawHeaders  # names as stored, values unsealed


async def list_dead_letters(connection: asyncpg.Connection, *, include_redriven: bool = False,
                            limit: int = 100) -> list[asyncpg.Record]:
    return await connection.fetch(
        """SELECT id, consumer, source_topic, source_partition, source_offset, event_id, error,
                  dead_lettered_at, redriven_at, original_kept, original_size, published_truncated
           FROM dead_letters WHERE $1 OR redriven_at IS NULL ORDER BY id LIMIT $2""",
        include_redriven, limit,
    )


async def get_dead_letter(connection: asyncpg.Connection, dead_letter_id: int, sealer: Sealer) -> DeadLetter | None:
    row = await connection.fetchrow("SELECT * FROM dead_letters WHERE id = $1", dead_letter_id)
    if row is None:
        return None
    value, headers = _opened(row, sealer)
    return DeadLetter(
        id=row["id"], consumer=row["consumer"], source_topic=row["source_topic"],
        source_partition=row["source_partition"], source_offset=row["source_offset"], event_id=row["event_id"],
        error=row["error"], dead_lettered_at=row["dead_lettered_at"], redriven_at=row["redriven_at"],
        original_kept=row["original_kept"], original_size=row["original_size"],
        published_truncated=row["published_truncated"], key=row["key"], value=value, headers=headers,
    )


def _opened(row: Any, sealer: Sealer) -> tuple[bytes | None, RawHeaders]:
    # Rows from before sealing are in clear until seal_legacy_dead_letters reaches them.
    open_ = sealer.unseal_optional if row["sealed"] else (lambda data: data)
    headers = [(n, open_(v)) for n, v in zip(row["header_names"], row["header_values"], strict=True)]
    return open_(row["value"]), headers


@dataclass(frozen=True)
class Redriven:
    ids: list[int]
    # Asked for (or pending) but never redrivable: the client library could not decode them.
    without_bytes: list[int]
    # Left pending: larger than the broker takes, (id, bytes). Redriven, the relay would set the
    # row aside and the letter would be marked redriven with its event never back on its topic.
    too_large: list[tuple[int, int]] = field(default_factory=list)


async def redrive(connection: asyncpg.Connection, dead_letter_ids: list[int] | None, sealer: Sealer,
                  max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Redriven:
    """Send dead letters back to their source topic with their original bytes, through the
    service's own outbox (sealed there too: they may hold PINs).

    Marking them redriven and queueing them commit together, so a dead letter is redriven once
    (a concurrent redrive waits for the rows, then finds them redriven). Meant for after a fix
    is deployed: a dead-lettered event left no inbox row, so it is handled. One larger than
    `max_message_bytes` (the service's MAX_MESSAGE_BYTES) stays pending, named in the result.
    """
    async with connection.transaction():
        rows = await connection.fetch(
            """SELECT id, source_topic, key, value, header_names, header_values, sealed FROM dead_letters
               WHERE redriven_at IS NULL AND original_kept AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))
               ORDER BY id FOR UPDATE""",
            dead_letter_ids,
        )
        messages, redriven, too_large = [], [], []
        for row in rows:
            value, headers = _opened(row, sealer)
            size = message_size(row["key"], value, headers)
            if size > max_message_bytes:
                too_large.append((row["id"], size))
                continue
            messages.append(SealedMessage(row["source_topic"], row["key"], value, headers))
            redriven.append(row["id"])
        await connection.execute("UPDATE dead_letters SET redriven_at = now() WHERE id = ANY($1::bigint[])", redriven)
        await write_sealed_outbox(connection, messages, sealer)
        without_bytes = await connection.fetch(
            """SELECT id FROM dead_letters WHERE redriven_at IS NULL AND NOT original_kept
                 AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) ORDER BY id""",
            dead_letter_ids,
        )
    return Redriven(redriven, [r["id"] for r in without_bytes], too_large)

