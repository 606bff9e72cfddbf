"""CloudEvents 1.0 in Kafka binary mode: attributes as `ce_` headers, the JSON data as the value."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import ValidationError

from .base import PortingEvent
from .topics import event_for_type
from .tracing import child_traceparent, is_valid_traceparent, new_traceparent
from .types import CONTROL_CHARACTER, FIRST_DAY, LAST_DAY, within_porting_calendar

E = TypeVar("E", bound=PortingEvent)
Headers = Sequence[tuple[str, bytes]]

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
_SPEC_VERSION_BYTES = SPEC_VERSION.encode()
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()


class ContractViolation(ValueError):
    """A message that can never be accepted as an event of the contract: it is dead-lettered."""


@dataclass(frozen=True)
class EventAttributes:
    id: str
    source: str
    type: str
    subject: str | None
    time: datetime | None
    traceparent: str


@dataclass(frozen=True)
class RecordOrigin:
    """The bytes an event was decoded from, as they came: what a dead letter of it must carry
    when it is found invalid only later (a parked event), after its record is long committed."""

    headers: Sequence[tuple[str | bytes, bytes | None]]
    value: bytes


@dataclass(frozen=True)
class CloudEvent(Generic[E]):
    attributes: EventAttributes
    data: E
    # Set by `decode`; None for an event built in code.
    origin: RecordOrigin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def encode(
    event: PortingEvent,
    *,
    source: str,
    topic: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
    caused_by: EventAttributes | None = None,
) -> KafkaRecord:
    """Wrap an event for Kafka. A follow-up names its cause so it continues the cause's trace."""
    if traceparent is None:
        traceparent = child_traceparent(caused_by.traceparent) if caused_by else new_traceparent()
    return KafkaRecord(
        topic=topic or event.event_type,
        key=event.subject.encode(),
        # The bytes model_dump_json().encode() gives (same serializer, same defaults), without the
        # round trip through a str.
        value=event.__pydantic_serializer__.to_json(event),
        headers=envelope_headers(event.event_type, event.subject, source=source, event_id=event_id,
                                 time=time, traceparent=traceparent),
    )


def envelope_headers(
    event_type: str,
    subject: str,
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
) -> list[tuple[str, bytes]]:
    # Built as bytes in one go, the constant ones encoded once: this runs for every follow-up.
    return [
        ("ce_specversion", _SPEC_VERSION_BYTES),
        ("ce_id", (event_id or str(uuid.uuid4())).encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", (time or datetime.now(UTC)).isoformat().encode()),
        ("ce_subject", subject.encode()),
        ("content-type", _CONTENT_TYPE_BYTES),
        ("traceparent", (traceparent or new_traceparent()).encode()),
    ]


# CloudEvents attributes are short strings; bounding them keeps any id usable as a database key.
ATTRIBUTE_MAX_LENGTH = {"ce_id": 256, "ce_source": 512, "ce_type": 256, "ce_subject": 256,
                        "ce_specversion": 16, "ce_time": 64, "content-type": 128}


# RFC 3339 date-time: full date, full time with optional fraction, and an offset (Z or ±hh:mm).
_RFC_3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def decode_headers(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    """The envelope's headers as text. Only the headers of the envelope are read: any other
    header may carry any bytes. A repeated, null, non-UTF-8, overlong or control-character
    envelope header is a contract violation of this record."""
    decoded: dict[str, str] = {}
    for name, raw in headers:
        limit = ATTRIBUTE_MAX_LENGTH.get(name)
        if limit is None:
            continue
        if name in decoded:
            raise ContractViolation(f"header {name!r} appears more than once")
        if raw is None:
            raise ContractViolation(f"header {name!r} has no value")
        if len(raw) > limit:
            raise ContractViolation(f"header {name!r} is longer than {limit} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ContractViolation(f"header {name!r} is not UTF-8") from None
        # Control characters are not printable: the usual, printable header skips the regex.
        if not text.isprintable() and CONTROL_CHARACTER.search(text):
            raise ContractViolation(f"header {name!r} holds control characters")
        decoded[name] = text
    return decoded


def decode_attributes(headers: Iterable[tuple[str, bytes | None]]) -> EventAttributes:
    if not isinstance(headers, (tuple, list)):  # read twice below; Kafka's tuple needs no copy
        headers = list(headers)
    values = decode_headers(headers)
    missing = [h for h in ("ce_specversion", "ce_id", "ce_source", "ce_type") if not values.get(h)]
    if missing:
        raise ContractViolation(f"not a CloudEvent: missing header(s) {', '.join(missing)}")
    if values["ce_specversion"] != SPEC_VERSION:
        raise ContractViolation(f"unsupported CloudEvents specversion {values['ce_specversion']!r}")
    content_type = values.get("content-type", CONTENT_TYPE)
    if not content_type.startswith(CONTENT_TYPE):
        raise ContractViolation(f"unsupported content-type {content_type!r}; expected {CONTENT_TYPE}")
    time = None
    if values.get("ce_time"):
        try:
            if not _RFC_3339.fullmatch(values["ce_time"]):
                raise ValueError("not RFC 3339")  # fromisoformat takes far more (no offset, week dates, ...)
            time = datetime.fromisoformat(values["ce_time"].upper())
        except ValueError:
            raise ContractViolation(f"ce_time {values['ce_time']!r} is not an RFC 3339 time") from None
        if not within_porting_calendar(time):
            raise ContractViolation(f"ce_time {values['ce_time']!r} must lie in years {FIRST_DAY.year}-{LAST_DAY.year}")
    traceparent = _lenient_traceparent(headers)
    return EventAttributes(
        id=values["ce_id"],
        source=values["ce_source"],
        type=values["ce_type"],
        subject=values.get("ce_subject"),
        time=time,
        # A broken trace header must not lose the event: it starts a new trace.
        traceparent=traceparent if is_valid_traceparent(traceparent) else new_traceparent(),
    )


def _lenient_traceparent(headers: Iterable[tuple[str, bytes | None]]) -> str | None:
    for name, raw in headers:
        if name == "traceparent" and raw is not None and len(raw) <= 64:
            return raw.decode("ascii", "replace")
    return None


def decode(
    headers: Iterable[tuple[str, bytes | None]],
    value: bytes | None,
    *,
    expected_type: str | None = None,
) -> CloudEvent[PortingEvent]:
    """Validate a Kafka record as an event of the contract, or raise ContractViolation."""
    # A tuple (what aiokafka gives) or a list answers before the slower abstract Sequence check.
    if not isinstance(headers, (tuple, list)) and not isinstance(headers, Sequence):
        headers = list(headers)
    attributes = decode_attributes(headers)
    try:
        model = event_for_type(attributes.type)
    except KeyError as error:
        raise ContractViolation(f"unknown event type or version {attributes.type!r}") from error
    if expected_type is not None and attributes.type != expected_type:
        raise ContractViolation(f"ce_type {attributes.type!r} does not belong on {expected_type!r}")
    if not value:
        raise ContractViolation("the event has no data")
    try:
        # model_validate_json(value, strict=True) is this call, behind a Python frame of its own.
        data = model.__pydantic_validator__.validate_json(value, strict=True)
    except ValidationError as error:
        raise ContractViolation(_describe(error)) from None
    except Exception as error:  # a validator's own failure on these bytes is still the record's fault
        raise ContractViolation(f"the data could not be validated: {type(error).__name__}: {error}"[:500]) from None
    if attributes.subject is not None and attributes.subject != data.subject:
        raise ContractViolation(
            f"ce_subject {attributes.subject!r} differs from the data's request sid {data.subject!r}"
        )
    return CloudEvent(attributes=attributes, data=data, origin=RecordOrigin(headers, value))


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:10]:
        if item["type"] == "json_invalid":
            return f"not valid JSON: {item['msg'].removeprefix('Invalid JSON: ')}"
        where = ".".join(str(part) for part in item["loc"]) or "data"
        problems.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(problems)
    return "schema violation: " + "; ".join(problems) + (f" (+{more} more)" if more > 0 else "")
