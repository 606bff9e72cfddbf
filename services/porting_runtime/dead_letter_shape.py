"""Pure parts of a dead letter: its identity, and the copy that fits the broker."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .message_size import RECORD_OVERHEAD_BYTES

RawHeaders = list[tuple[bytes, bytes | None]]

# Per header, beyond its name and value (two varint lengths).
HEADER_OVERHEAD_BYTES = 10
# Room for the dlt_id header, added once the row has its id.
DLT_ID_RESERVE_BYTES = 40
# Room for the dlt_truncated note itself.
TRUNCATION_NOTE_RESERVE_BYTES = 200


def content_hash(key: bytes | None, value: bytes | None, headers: RawHeaders, timestamp: int | None) -> bytes:
    """sha256 over key, value, header names and values, and the broker timestamp when known.

    Each field is length-framed (NULL distinct from empty), so no two records share a hash by
    shifting bytes between fields. The timestamp tells a record re-published with the same
    bytes after a broker restart (a new record) from a true redelivery (the same record).
    """
    digest = hashlib.sha256(b"porting dead letter v1")
    for field in (key, value):
        _frame(digest, field)
    digest.update(struct.pack(">Q", len(headers)))
    for name, header_value in headers:
        _frame(digest, name)
        _frame(digest, header_value)
    _frame(digest, None if timestamp is None else struct.pack(">q", timestamp))
    return digest.digest()


def undecodable_hash(error: str, timestamp: int | None) -> bytes:
    """A record without bytes is told apart by its error (and timestamp when known)."""
    digest = hashlib.sha256(b"porting undecodable record v1")
    _frame(digest, error.encode("utf-8", "backslashreplace"))
    _frame(digest, None if timestamp is None else struct.pack(">q", timestamp))
    return digest.digest()


def _frame(digest: Any, data: bytes | None) -> None:
    if data is None:
        digest.update(b"\x00")
    else:
        digest.update(b"\x01" + struct.pack(">Q", len(data)) + data)


def original_size(key: bytes | None, value: bytes | None, headers: RawHeaders) -> int:
    return len(key or b"") + len(value or b"") + sum(len(n) + len(v or b"") for n, v in headers)


def headers_size(headers: Sequence[tuple[bytes, bytes | None]]) -> int:
    return sum(len(n) + len(v or b"") + HEADER_OVERHEAD_BYTES for n, v in headers)


@dataclass(frozen=True)
class BrokerCopy:
    key: bytes | None
    value: bytes | None
    headers: RawHeaders  # the original headers kept, then the dlt_* headers
    truncated: bool


def fit_to_broker(key: bytes | None, value: bytes | None, headers: RawHeaders, reasons: RawHeaders,
                  max_message_bytes: int) -> BrokerCopy:
    """The dead-letter record as it is when it fits; otherwise cut (key to a quarter of the room,
    then whole original headers in order, then a prefix of the value) with a `dlt_truncated`
    header saying so. The database keeps every original byte either way."""
    fixed = RECORD_OVERHEAD_BYTES + DLT_ID_RESERVE_BYTES + headers_size(reasons)
    if fixed + len(key or b"") + len(value or b"") + headers_size(headers) <= max_message_bytes:
        return BrokerCopy(key, value, [*headers, *reasons], truncated=False)
    room = max(0, max_message_bytes - fixed - TRUNCATION_NOTE_RESERVE_BYTES)
    kept_key = None if key is None else key[: room // 4]
    room -= len(kept_key or b"")
    kept_headers: RawHeaders = []
    for header in headers:
        size = headers_size([header])
        if size > room:
            break
        kept_headers.append(header)
        room -= size
    kept_value = None if value is None else value[:room]
    note = (f"original {original_size(key, value, headers)} bytes; published {len(kept_key or b'')} of "
            f"{len(key or b'')} key bytes, {len(kept_headers)} of {len(headers)} headers, "
            f"{len(kept_value or b'')} of {len(value or b'')} value bytes")
    return BrokerCopy(kept_key, kept_value, [*kept_headers, *reasons, (b"dlt_truncated", note.encode())],
                      truncated=True)
