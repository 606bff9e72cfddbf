"""Outbox rows that carry a whole stored event (a dead letter, a redrive): sealed at rest.

The value and every header (names as raw bytes, values nullable) are packed into one blob
and sealed into the row's `value`; `sealed` is true and the header columns are empty. So
none of the event's content lies in clear, and header names a text column could not hold
(NUL, invalid UTF-8) survive. The key stays in clear: it is the request sid, a routing id
the logs carry too, and the relay partitions by it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from .outbox import OutboxRow, insert_outbox_rows
from .sealing import SealedDataUnreadable, Sealer

RawHeaders = list[tuple[bytes, bytes | None]]

_FORMAT_VERSION = b"\x01"
_NULL = 0xFFFFFFFF


@dataclass(frozen=True)
class SealedMessage:
    """A record to publish from a sealed outbox row; header names as raw bytes."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: RawHeaders


@dataclass(frozen=True)
class OutboxMessage:
    """What the relay produces for one outbox row."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


async def write_sealed_outbox(connection: asyncpg.Connection, messages: Sequence[SealedMessage],
                              sealer: Sealer) -> None:
    """Like `outbox.write_outbox`, for messages sealed at rest (same per-key ordering lock)."""
    # The same writer as write_outbox (the same ordering locks), so these rows and a service's
    # follow-ups of the same key keep commit order.
    await insert_outbox_rows(connection, [sealed_row(m, sealer) for m in messages])


def sealed_row(message: SealedMessage, sealer: Sealer) -> OutboxRow:
    """The outbox row of a message sealed at rest: value and headers in one sealed blob."""
    return OutboxRow(message.topic, message.key, sealer.seal(pack_message(message.value, message.headers)), [], [],
                     sealed=True)


def open_outbox_row(row: Any, sealer: Sealer) -> OutboxMessage:
    """The message of an outbox row, sealed or not. The relay selects `topic, key, value,
    header_names, header_values, sealed` and produces what this returns."""
    if not row["sealed"]:
        headers = list(zip(row["header_names"], row["header_values"], strict=True))
        return OutboxMessage(row["topic"], row["key"], row["value"], headers)
    value, raw_headers = unpack_message(sealer.unseal(row["value"]))
    # Kafka header names are strings: one that is not UTF-8 goes out escaped (the dead letter
    # in the database keeps its exact bytes).
    headers = [(name.decode("utf-8", "backslashreplace"), header_value) for name, header_value in raw_headers]
    return OutboxMessage(row["topic"], row["key"], value, headers)


def pack_message(value: bytes | None, headers: RawHeaders) -> bytes:
    parts = [_FORMAT_VERSION, _field(value), struct.pack(">I", len(headers))]
    for name, header_value in headers:
        parts += [_field(name), _field(header_value)]
    return b"".join(parts)


def unpack_message(blob: bytes) -> tuple[bytes | None, RawHeaders]:
    if blob[:1] != _FORMAT_VERSION:
        raise SealedDataUnreadable("sealed message in an unknown format")
    view = memoryview(blob)
    value, position = _read_field(view, 1)
    (count,) = struct.unpack_from(">I", view, position)
    position += 4
    headers: RawHeaders = []
    for _ in range(count):
        name, position = _read_field(view, position)
        header_value, position = _read_field(view, position)
        headers.append((name or b"", header_value))
    return value, headers


def _field(data: bytes | None) -> bytes:
    return struct.pack(">I", _NULL) if data is None else struct.pack(">I", len(data)) + data


def _read_field(view: memoryview, position: int) -> tuple[bytes | None, int]:
    (length,) = struct.unpack_from(">I", view, position)
    position += 4
    if length == _NULL:
        return None, position
    return bytes(view[position:position + length]), position + length
