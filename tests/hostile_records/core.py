"""The shared machinery of the hostile records: the record (`Hostile`), a valid event to start
from (`Seeded` ids, `payload`, `headers_for`, `event`, ...), and the registry of kinds (`Kind`,
`KINDS` and the `kind` decorator the catalogue modules register with).

A record whose header *name* is not UTF-8 cannot be made with aiokafka's producer API, which
takes header names as `str` and encodes them itself. `RawHeaderName` is a `str` that encodes
to chosen bytes; the pure-Python record builder (`_DefaultRecordBatchBuilderPy`) calls
`.encode("utf-8")` on each name, so a batch built with it carries those bytes on the wire
(`send_raw_batch` in publishing.py does that).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..factories import port_requested_payload


EVENT_TYPE = "porting.port-requested.v1"
SOURCE = "hostile-upstream"
REJECTED_CUSTOMER = "Rule Breaker"  # tests/integration/ledger.py dead-letters it by rule
ONE_MIB = 1024 * 1024
# A value this large still fits the producer's and the broker's 1 MiB limit with its headers,
# but its dead letter, with the dlt_* headers added, would not.
JUST_UNDER_ONE_MIB = ONE_MIB - 4096

Header = tuple[str, bytes | None]


class RawHeaderName(str):
    """A header name that goes on the wire as `raw`, which need not be UTF-8."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawHeaderName:
        name = super().__new__(cls, raw.decode("utf-8", "surrogateescape"))
        name.raw = raw
        return name

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:  # type: ignore[override]
        return self.raw


def name_bytes(name: str) -> bytes:
    """A header name as it is on the wire."""
    return name.raw if isinstance(name, RawHeaderName) else name.encode("utf-8")


@dataclass(frozen=True)
class Hostile:
    kind: str
    category: str
    answered: bool  # a valid event the service handles once, or a record it dead-letters once
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    subject: str | None = None  # the request sid an answered event is followed up for
    # An exact copy of an earlier record (same source and id): answered once between them.
    duplicate: bool = False

    @property
    def needs_raw_batch(self) -> bool:
        """aiokafka's producer refuses it: a header name that is not UTF-8, or neither key nor value."""
        return (self.key is None and self.value is None) or any(isinstance(n, RawHeaderName) for n, _ in self.headers)

    @property
    def unreadable(self) -> bool:
        """aiokafka's consumer cannot decode it: the service has only its place, unless it reads the raw bytes."""
        return any(isinstance(name, RawHeaderName) for name, _ in self.headers)

    @property
    def header_bytes(self) -> list[tuple[bytes, bytes | None]]:
        return [(name_bytes(n), v) for n, v in self.headers]

    def with_key(self, key: bytes | None) -> Hostile:
        return replace(self, key=key)


# --- a valid event to start from -------------------------------------------------------------

class Seeded:
    """Ids and times from a seed."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def hex(self, length: int) -> str:
        return "".join(self.random.choice("0123456789abcdef") for _ in range(length))

    def sid(self) -> str:
        return "KW" + self.hex(32)

    def event_id(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def traceparent(self) -> str:
        return f"00-{self.hex(32)}-{self.hex(16)}-01"


EVENT_TIME = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def payload(ids: Seeded, **overrides: Any) -> dict[str, Any]:
    """tests/factories.py's valid request, with ids drawn from the seed."""
    return port_requested_payload(**{"port_in_request_sid": ids.sid(), "account_sid": "AC" + ids.hex(32), **overrides})


def carrier(**overrides: Any) -> dict[str, Any]:
    return {**payload(Seeded(0))["losing_carrier_information"], **overrides}


def headers_for(subject: str, ids: Seeded, **overrides: bytes | None) -> list[Header]:
    """The envelope as `schemas.encode` writes it; `overrides` replace values (None: a null value)."""
    values: dict[str, bytes | None] = {
        "ce_specversion": b"1.0",
        "ce_id": ids.event_id().encode(),
        "ce_source": SOURCE.encode(),
        "ce_type": EVENT_TYPE.encode(),
        "ce_time": EVENT_TIME.isoformat().encode(),
        "ce_subject": subject.encode(),
        "content-type": b"application/json",
        "traceparent": ids.traceparent().encode(),
    }
    values.update({name.replace("_dash_", "-"): value for name, value in overrides.items()})
    return list(values.items())


def without(headers: list[Header], *names: str) -> list[Header]:
    return [(n, v) for n, v in headers if n not in names]


def as_json(document: Any) -> bytes:
    return json.dumps(document).encode()


@dataclass(frozen=True)
class Parts:
    value: bytes | None
    headers: list[Header]
    key: bytes | None = None  # the request sid unless given
    subject: str | None = None
    extra: tuple[Parts, ...] = ()  # further records of the same kind, published right after


@dataclass(frozen=True)
class Kind:
    name: str
    category: str
    answered: bool
    make: Callable[[Seeded], Parts]
    weight: float = 1.0  # relative number of copies in a mix


KINDS: dict[str, Kind] = {}


def kind(category: str, *, answered: bool = False, weight: float = 1.0) -> Callable[[Callable[[Seeded], Parts]], Callable[[Seeded], Parts]]:
    def register(make: Callable[[Seeded], Parts]) -> Callable[[Seeded], Parts]:
        name = make.__name__.strip("_")
        assert name not in KINDS, name
        KINDS[name] = Kind(name, category, answered, make, weight)
        return make
    return register


def event(ids: Seeded, *, document: dict[str, Any] | None = None, **header_overrides: bytes | None) -> Parts:
    """A valid event (or one broken only where the caller says)."""
    document = document or payload(ids)
    sid = document.get("port_in_request_sid", ids.sid())
    return Parts(as_json(document), headers_for(str(sid), ids, **header_overrides), subject=str(sid))


def value_of(ids: Seeded, value: bytes | None) -> Parts:
    """Good headers, this value."""
    sid = ids.sid()
    return Parts(value, headers_for(sid, ids), subject=sid)


def document_of(ids: Seeded, **overrides: Any) -> Parts:
    return event(ids, document=payload(ids, **overrides))
