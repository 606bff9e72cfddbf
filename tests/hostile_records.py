"""Records a hostile upstream would publish on `porting.port-requested.v1`, by kind.

Every kind says what a service must do with its record: `answered` (a valid event, however
odd: it is handled once and followed up) or not (a record that can never be an event: it is
dead-lettered once, with its original bytes). The expectation is written down per kind, not
derived, and tests/integration/test_hostile_input.py checks it against the contract's own
decoder so that a wrong expectation cannot hide a bug.

Everything is deterministic from a seed (ids, times, order), so a run can publish exactly the
same bytes again, e.g. after a broker restart.

A record whose header *name* is not UTF-8 cannot be made with aiokafka's producer API, which
takes header names as `str` and encodes them itself. `RawHeaderName` is a `str` that encodes
to chosen bytes; the pure-Python record builder (`_DefaultRecordBatchBuilderPy`) calls
`.encode("utf-8")` on each name, so a batch built with it carries those bytes on the wire
(`send_raw_batch` below does that).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .factories import port_requested_payload

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


# --- encodings of the value ----------------------------------------------------------------------

@kind("encoding")
def value_with_invalid_utf8_in_a_string(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value.replace(b"Ada Lovelace", b"Ada \xff\xfe Lovelace", 1))


@kind("encoding")
def value_in_latin_1(ids: Seeded) -> Parts:
    parts = document_of(ids, losing_carrier_information=carrier(customer_name="Zoë Ångström"))
    return replace(parts, value=json.dumps(json.loads(parts.value), ensure_ascii=False).encode("latin-1"))


@kind("encoding")
def value_in_utf_16_with_bom(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value.decode().encode("utf-16"))


@kind("encoding")
def value_in_utf_16_le_without_bom(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value.decode().encode("utf-16-le"))


@kind("encoding")
def value_in_utf_32(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value.decode().encode("utf-32"))


@kind("encoding")
def value_behind_a_utf_8_bom(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=b"\xef\xbb\xbf" + parts.value)


@kind("encoding")
def value_with_an_overlong_utf8_encoding(ids: Seeded) -> Parts:
    parts = event(ids)  # "/" as the overlong two-byte form C0 AF
    return replace(parts, value=parts.value.replace(b"1 Market St", b"1 Market St\xc0\xaf", 1))


@kind("encoding")
def value_with_a_utf8_encoded_surrogate(ids: Seeded) -> Parts:
    parts = event(ids)  # U+D800 encoded as if it were a character: not UTF-8
    return replace(parts, value=parts.value.replace(b"Ada Lovelace", b"Ada \xed\xa0\x80", 1))


@kind("encoding")
def value_with_a_lone_surrogate_escape(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value.replace(b"Ada Lovelace", b"Ada \\ud800 Lovelace", 1))


@kind("encoding")
def value_that_is_random_bytes(ids: Seeded) -> Parts:
    return value_of(ids, bytes(ids.random.getrandbits(8) for _ in range(200)))


@kind("encoding")
def value_that_is_gzip_compressed_json(ids: Seeded) -> Parts:
    import gzip

    parts = event(ids)
    return replace(parts, value=gzip.compress(parts.value, mtime=0))


# --- JSON that is not the event's ----------------------------------------------------------------

@kind("json")
def value_with_truncated_json(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value[: len(parts.value) // 2])


@kind("json")
def value_with_trailing_garbage(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value + b" }garbage")


@kind("json")
def value_with_two_json_documents(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value + b"\n" + parts.value)


@kind("json")
def value_that_is_a_json_array(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=b"[" + parts.value + b"]")


@kind("json")
def value_that_is_json_null(ids: Seeded) -> Parts:
    return value_of(ids, b"null")


@kind("json")
def value_that_is_a_json_string(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=json.dumps(parts.value.decode()).encode())


@kind("json")
def value_with_an_unescaped_control_character_in_a_string(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value.replace(b"Ada Lovelace", b"Ada\x01\x1b[31mLovelace", 1))


@kind("json")
def value_with_a_nul_byte_between_tokens(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value.replace(b", ", b",\x00 ", 1))


@kind("json")
def value_with_single_quoted_json(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, value=parts.value.replace(b'"', b"'"))


@kind("json")
def value_with_an_unknown_field(ids: Seeded) -> Parts:
    return document_of(ids, surprise={"x": 1})


@kind("json")
def value_without_a_required_field(ids: Seeded) -> Parts:
    document = payload(ids)
    del document["account_sid"]
    return event(ids, document=document)


# --- sizes ---------------------------------------------------------------------------------------

@kind("size")
def value_that_is_empty(ids: Seeded) -> Parts:
    return value_of(ids, b"")


@kind("size")
def value_that_is_null(ids: Seeded) -> Parts:
    return value_of(ids, None)


@kind("size")
def neither_key_nor_value(ids: Seeded) -> Parts:
    """Legal in Kafka (the Java producer sends it); aiokafka's producer refuses to."""
    return replace(value_of(ids, None), key=None)


@kind("size")
def value_of_only_whitespace(ids: Seeded) -> Parts:
    return value_of(ids, b" \n\t\r " * 20)


@kind("size", weight=0.25)
def value_just_under_one_mib(ids: Seeded) -> Parts:
    """Accepted by the broker; its dead letter with the dlt_* headers would not be."""
    parts = event(ids)
    room = JUST_UNDER_ONE_MIB - len(parts.value) - len('"padding": "", ')
    return replace(parts, value=parts.value.replace(b"{", b'{"padding": "' + b"x" * room + b'", ', 1))


@kind("size")
def value_with_a_100_kb_customer_name(ids: Seeded) -> Parts:
    return document_of(ids, losing_carrier_information=carrier(customer_name="A" * 100_000))


@kind("size")
def value_with_1001_phone_numbers(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": "+14155550100"}] * 1001)


@kind("size")
def value_with_no_phone_numbers(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[])


@kind("size")
def kafka_key_of_100_kb_on_a_bad_event(ids: Seeded) -> Parts:
    return replace(value_that_is_json_null(ids), key=b"k" * 100_000)


# --- nesting -------------------------------------------------------------------------------------

@kind("nesting")
def value_of_ten_thousand_nested_arrays(ids: Seeded) -> Parts:
    return value_of(ids, b"[" * 10_000 + b"]" * 10_000)


@kind("nesting")
def value_of_ten_thousand_nested_objects(ids: Seeded) -> Parts:
    return value_of(ids, b'{"a":' * 10_000 + b"1" + b"}" * 10_000)


@kind("nesting")
def value_with_deep_nesting_inside_a_field(ids: Seeded) -> Parts:
    parts = event(ids)
    deep = b"[" * 3_000 + b"]" * 3_000
    return replace(parts, value=parts.value.replace(b'"documents": []', b'"documents": ' + deep, 1))


@kind("nesting")
def value_with_unclosed_nesting(ids: Seeded) -> Parts:
    return value_of(ids, b'{"phone_numbers": [[[[{' * 500)


# --- numbers -------------------------------------------------------------------------------------

def revision_written_as(ids: Seeded, literal: bytes) -> Parts:
    """A valid request whose revision is this JSON literal, byte for byte."""
    parts = document_of(ids)
    return replace(parts, value=parts.value.replace(b'"revision": 1', b'"revision": ' + literal, 1))


@kind("number")
def revision_that_overflows_a_double(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'1e400')


@kind("number")
def revision_that_is_nan(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'NaN')


@kind("number")
def revision_that_is_infinity(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'-Infinity')


@kind("number")
def revision_that_is_zero(ids: Seeded) -> Parts:
    return document_of(ids, revision=0)


@kind("number")
def revision_that_is_a_fraction(ids: Seeded) -> Parts:
    return document_of(ids, revision=1.5)


@kind("number")
def revision_as_a_string(ids: Seeded) -> Parts:
    return document_of(ids, revision="1")


@kind("number")
def revision_with_a_five_thousand_digit_integer(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'1' + b"0" * 5000)


@kind("number")
def revision_of_a_thousand_digit_integer(ids: Seeded) -> Parts:
    """Beyond the integer the workflow keeps a revision in (2^31 - 1): refused by the contract."""
    return revision_written_as(ids, b'1' + b"0" * 1000)


@kind("number", answered=True)
def revision_at_the_largest_the_workflow_keeps(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'2147483647')


@kind("number")
def revision_one_past_the_largest_the_workflow_keeps(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'2147483648')


@kind("number")
def phone_number_as_a_json_number(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": 14155550100}])


@kind("number")
def phone_number_that_is_empty(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": ""}])


@kind("number")
def phone_number_longer_than_any_number(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": "+1" + "4" * 40}])


# --- dates and times in the data ------------------------------------------------------------------

@kind("date")
def port_date_on_february_30(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_date="2027-02-30")


@kind("date")
def port_date_in_year_zero(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_date="0000-01-01")


@kind("date")
def port_date_with_a_timezone(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_date="2027-03-02+25:00")


@kind("date")
def port_date_in_another_calendar_format(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_date="02/03/2027")


@kind("date")
def document_dated_in_month_13(ids: Seeded) -> Parts:
    return document_of(ids, documents=[{"document_sid": "RD1", "kind": "utility_bill", "dated": "2026-13-01"}])


@kind("date")
def port_window_starting_at_25_oclock(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_time_range_start="25:00:00")


@kind("date")
def port_window_that_ends_before_it_starts(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_time_range_start="17:00:00", target_port_in_time_range_end="09:00:00")


# --- ids and values of the data -------------------------------------------------------------------

@kind("id")
def request_sid_of_the_wrong_shape(ids: Seeded) -> Parts:
    return document_of(ids, port_in_request_sid="KW" + "z" * 32)


@kind("id")
def request_sid_with_a_nul(ids: Seeded) -> Parts:
    return document_of(ids, port_in_request_sid="KW" + ids.hex(16) + "\x00" + ids.hex(15))


@kind("id")
def account_sid_of_8000_characters(ids: Seeded) -> Parts:
    return document_of(ids, account_sid="AC" + "a" * 8000)


@kind("id")
def customer_type_outside_the_enum(ids: Seeded) -> Parts:
    return document_of(ids, losing_carrier_information=carrier(customer_type="Martian"))


@kind("id")
def country_in_lower_case(ids: Seeded) -> Parts:
    return document_of(ids, losing_carrier_information=carrier(
        address={**carrier()["address"], "country": "us"}))


@kind("id")
def email_with_a_newline(ids: Seeded) -> Parts:
    return document_of(ids, notification_emails=["ada@example.com\nBcc: eve@example.com"])


@kind("rule")
def customer_name_the_service_rejects_by_rule(ids: Seeded) -> Parts:
    return document_of(ids, losing_carrier_information=carrier(customer_name=REJECTED_CUSTOMER))


# --- envelope headers ------------------------------------------------------------------------------

@kind("header")
def ce_id_with_a_null_value(ids: Seeded) -> Parts:
    return event(ids, ce_id=None)


@kind("header")
def ce_id_holding_a_nul(ids: Seeded) -> Parts:
    return event(ids, ce_id=b"id\x00" + ids.hex(8).encode())


@kind("header")
def ce_id_of_8000_characters(ids: Seeded) -> Parts:
    return event(ids, ce_id=ids.hex(8).encode() * 1000)


@kind("header")
def ce_id_of_257_characters(ids: Seeded) -> Parts:
    return event(ids, ce_id=ids.hex(1).encode() + b"x" * 256)


@kind("header")
def ce_id_that_is_empty(ids: Seeded) -> Parts:
    return event(ids, ce_id=b"")


@kind("header")
def ce_id_that_is_not_utf8(ids: Seeded) -> Parts:
    return event(ids, ce_id=b"\xff\xfe" + ids.hex(8).encode())


@kind("header")
def ce_id_with_terminal_escape_codes(ids: Seeded) -> Parts:
    return event(ids, ce_id=b"\x1b[2J\x1b[31m" + ids.hex(8).encode())


@kind("header")
def ce_id_with_a_c1_control_character(ids: Seeded) -> Parts:
    return event(ids, ce_id="id\u0085next".encode() + ids.hex(4).encode())


@kind("header")
def ce_id_with_a_newline(ids: Seeded) -> Parts:
    return event(ids, ce_id=ids.hex(8).encode() + b"\r\nce_source: forged")


@kind("header")
def ce_id_header_twice(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=[*parts.headers, ("ce_id", ids.event_id().encode())])


@kind("header")
def ce_source_header_twice_with_the_same_value(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=[*parts.headers, ("ce_source", SOURCE.encode())])


@kind("header")
def ce_id_header_missing(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=without(parts.headers, "ce_id"))


@kind("header")
def ce_source_header_missing(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=without(parts.headers, "ce_source"))


@kind("header")
def ce_specversion_header_missing(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=without(parts.headers, "ce_specversion"))


@kind("header")
def ce_type_header_missing(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=without(parts.headers, "ce_type"))


@kind("header")
def no_headers_at_all(ids: Seeded) -> Parts:
    return replace(event(ids), headers=[])


@kind("header")
def ce_id_under_a_name_holding_a_nul(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=[("ce_\x00id" if n == "ce_id" else n, v) for n, v in parts.headers])


@kind("header")
def header_name_holding_a_nul_on_a_bad_event(ids: Seeded) -> Parts:
    parts = value_that_is_json_null(ids)
    return replace(parts, headers=[*parts.headers, ("x-\x00-evil\x00", b"v")])


@kind("header")
def header_name_of_control_characters_on_a_bad_event(ids: Seeded) -> Parts:
    parts = value_that_is_json_null(ids)
    return replace(parts, headers=[*parts.headers, ("\x1b[2J\x07\x7f\u0085", b"\x00\xff")])


@kind("header", weight=0.25)
def header_name_that_is_not_utf8(ids: Seeded) -> Parts:
    """The client library itself cannot read this record."""
    parts = event(ids)
    return replace(parts, headers=[*parts.headers, (RawHeaderName(b"x-\xff\xfe-" + ids.hex(4).encode()), b"v")])


@kind("header")
def ce_source_with_a_null_value(ids: Seeded) -> Parts:
    return event(ids, ce_source=None)


@kind("header")
def ce_subject_with_a_null_value(ids: Seeded) -> Parts:
    return event(ids, ce_subject=None)


@kind("header")
def ce_source_of_8000_characters(ids: Seeded) -> Parts:
    return event(ids, ce_source=b"s" * 8000)


@kind("header")
def ce_specversion_unknown(ids: Seeded) -> Parts:
    return event(ids, ce_specversion=ids.random.choice([b"0.3", b"2.0", b"1.0 ", b"1"]))


@kind("header")
def ce_specversion_not_utf8(ids: Seeded) -> Parts:
    return event(ids, ce_specversion=b"\xc3\x28")


@kind("header")
def ce_type_of_another_topic(ids: Seeded) -> Parts:
    return event(ids, ce_type=b"porting.carrier-responded.v1")


@kind("header")
def ce_type_of_an_unknown_version(ids: Seeded) -> Parts:
    return event(ids, ce_type=b"porting.port-requested.v9")


@kind("header")
def ce_type_that_is_empty(ids: Seeded) -> Parts:
    return event(ids, ce_type=b"")


@kind("header")
def ce_subject_of_another_request(ids: Seeded) -> Parts:
    return event(ids, ce_subject=ids.sid().encode())


@kind("header")
def ce_time_on_february_30(ids: Seeded) -> Parts:
    return event(ids, ce_time=b"2026-02-30T10:00:00+00:00")


@kind("header")
def ce_time_in_year_zero(ids: Seeded) -> Parts:
    return event(ids, ce_time=b"0000-01-01T00:00:00+00:00")


@kind("header")
def ce_time_with_timezone_junk(ids: Seeded) -> Parts:
    return event(ids, ce_time=ids.random.choice(
        [b"2026-11-02T09:30:00+25:00", b"2026-11-02T09:30:00 Mars/Olympus", b"2026-11-02T09:30:00+0530junk"]))


@kind("header")
def ce_time_that_is_not_a_time(ids: Seeded) -> Parts:
    return event(ids, ce_time=b"yesterday")


@kind("header")
def content_type_that_is_not_json(ids: Seeded) -> Parts:
    return event(ids, **{"content_dash_type": b"application/xml"})


# Control characters in text from outside: refused by the contract (schemas/types.py), since a
# NUL passed the portability check and then failed the workflow's PostgreSQL.
@kind("number")
def phone_number_with_a_trailing_newline(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": "+14155550199\n"}])


@kind("number")
def phone_number_holding_a_nul(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": "+1415\x005550199"}])


@kind("control")
def customer_name_with_escaped_control_characters(ids: Seeded) -> Parts:
    return document_of(ids, losing_carrier_information=carrier(customer_name="Ada\x00\x07\x1b[31m\u202eLovelace"))


# --- valid events, however odd: answered once ---------------------------------------------------

@kind("good", answered=True, weight=3)
def plain_good_event(ids: Seeded) -> Parts:
    return event(ids)


@kind("number", answered=True)
def phone_number_in_full_width_digits(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": "+1４１５５５５０１９９"}])


@kind("number", answered=True)
def phone_number_in_arabic_indic_digits(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": "+١٤١٥٥٥٥٠١٩٩"}])


@kind("trace", answered=True)
def traceparent_that_is_garbage(ids: Seeded) -> Parts:
    return event(ids, traceparent=ids.random.choice([b"not-a-trace", b"00-zz-yy-01", b"\xff\xfe", b"\x00" * 55]))


@kind("trace", answered=True)
def traceparent_of_all_zero_ids(ids: Seeded) -> Parts:
    return event(ids, traceparent=b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01")


@kind("trace", answered=True)
def traceparent_of_8000_characters(ids: Seeded) -> Parts:
    return event(ids, traceparent=b"00-" + b"a" * 8000)


@kind("trace", answered=True)
def traceparent_with_a_null_value(ids: Seeded) -> Parts:
    return event(ids, traceparent=None)


@kind("trace", answered=True)
def traceparent_missing(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=without(parts.headers, "traceparent"))


@kind("header", answered=True)
def optional_ce_time_and_ce_subject_missing(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=without(parts.headers, "ce_time", "ce_subject"))


@kind("header", answered=True)
def ce_time_in_utc_zulu_form(ids: Seeded) -> Parts:
    return event(ids, ce_time=b"2026-11-02T09:30:00.123456Z")


@kind("header", answered=True)
def content_type_with_a_charset(ids: Seeded) -> Parts:
    return event(ids, **{"content_dash_type": b"application/json; charset=utf-8"})


@kind("header", answered=True)
def other_header_name_holding_a_nul(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=[*parts.headers, ("x-\x00", b"v")])


@kind("header", answered=True)
def other_header_with_a_null_value_invalid_utf8_and_twice(ids: Seeded) -> Parts:
    parts = event(ids)
    return replace(parts, headers=[*parts.headers, ("x-null", None), ("x-bytes", b"\xff\x00\xfe"),
                                   ("x-twice", b"1"), ("x-twice", b"2")])


@kind("id", answered=True)
def ce_id_of_exactly_256_characters(ids: Seeded) -> Parts:
    return event(ids, ce_id=(ids.hex(8) + "-" * 248).encode())


@kind("id", answered=True)
def ce_id_of_emoji_and_direction_overrides(ids: Seeded) -> Parts:
    return event(ids, ce_id=f"🐙\u202e{ids.hex(8)}\u202c👾".encode())


@kind("id", answered=True)
def kafka_key_that_is_not_utf8_or_holds_a_nul(ids: Seeded) -> Parts:
    return replace(event(ids), key=ids.random.choice([b"\xff\xfe\x00", b"\x00", b"", b"k\x00ey"]))


@kind("id", answered=True)
def same_ce_id_from_another_source(ids: Seeded) -> Parts:
    """Two events whose ce_id is the same and whose ce_source differs: two events."""
    first = event(ids)
    second = event(ids, ce_source=b"another-upstream")
    shared = dict(first.headers)["ce_id"]
    second = replace(second, headers=[(n, shared if n == "ce_id" else v) for n, v in second.headers])
    return replace(first, extra=(second,))


@kind("id", answered=True)
def exact_duplicate_of_an_event(ids: Seeded) -> Parts:
    """The same event twice: answered once."""
    first = event(ids)
    return replace(first, extra=(first,))


@kind("json", answered=True)
def value_with_a_key_twice(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'7, "revision": 1')


@kind("json", answered=True)
def value_pretty_printed_with_unicode_escapes(ids: Seeded) -> Parts:
    parts = document_of(ids, losing_carrier_information=carrier(customer_name="Zoë Ångström 😀"))
    return replace(parts, value=json.dumps(json.loads(parts.value), indent=4, ensure_ascii=True).encode())


# --- building a mix ----------------------------------------------------------------------------

BAD_KINDS = [k for k in KINDS.values() if not k.answered]
ANSWERED_KINDS = [k for k in KINDS.values() if k.answered]


def records_of(one: Kind, ids: Seeded, key: bytes | None = None) -> list[Hostile]:
    """The record(s) one kind makes; `key` (when given) replaces every record's Kafka key."""
    parts = one.make(ids)
    out = []
    for index, part in enumerate((parts, *parts.extra)):
        if key is not None:
            part_key: bytes | None = key
        elif part.key is not None or one.name == "neither_key_nor_value":
            part_key = part.key
        else:
            part_key = (part.subject or ids.sid()).encode()
        out.append(Hostile(one.name, one.category, one.answered, part_key, part.value, tuple(part.headers),
                           part.subject if one.answered else None,
                           duplicate=index > 0 and (part.value, part.headers) == (parts.value, parts.headers)))
    return out


def make(name: str, seed: int = 0, key: bytes | None = None) -> list[Hostile]:
    """The record(s) of one kind."""
    return records_of(KINDS[name], Seeded(seed), key)


def mix(*, bad: int, good: int, seed: int, keys: Sequence[bytes] | None = None) -> list[Hostile]:
    """At least `bad` records to dead-letter over every bad kind (by weight), at least `good`
    events to answer over every answered kind, shuffled together. With `keys`, record i takes
    key i mod len(keys): the same seed then puts the same bytes in the same places."""
    ids = Seeded(seed)
    groups: list[list[Hostile]] = []  # a kind's extra records stay right behind its first
    for kinds, wanted in ((BAD_KINDS, bad), (ANSWERED_KINDS, good)):
        total = sum(k.weight for k in kinds)
        for one in kinds:
            for _ in range(max(1, round(wanted * one.weight / total + 0.4999))):
                groups.append(records_of(one, ids))
    ids.random.shuffle(groups)
    ordered = [r for group in groups for r in group]
    if keys:  # (a record with neither key nor value keeps none)
        ordered = [r if r.kind == "neither_key_nor_value" else r.with_key(keys[i % len(keys)])
                   for i, r in enumerate(ordered)]
    return ordered


def fresh_good(seed: int, count: int, key: bytes | None = None) -> list[Hostile]:
    ids = Seeded(seed)
    return [r for _ in range(count) for r in records_of(KINDS["plain_good_event"], ids, key)]


# --- publishing them, and reading back what the service kept ------------------------------------

@dataclass(frozen=True)
class Placed:
    """A published record and where the broker put it."""

    record: Hostile
    topic: str
    partition: int
    offset: int

    @property
    def place(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


async def publish_hostile(settings: Any, topic: str, records: Sequence[Hostile]) -> list[Placed]:
    """Publish in order (pipelined; each partition keeps the order), return where each landed."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    from porting_runtime.kafka import connection_options, ensure_topics

    await ensure_topics(settings, [topic])
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False,
                                linger_ms=5, request_timeout_ms=30_000)
    await producer.start()
    try:
        pending = []
        for record in records:
            if record.needs_raw_batch:
                pending.append(await _send_raw(producer, topic, record))
            else:
                pending.append(await producer.send(topic, record.value, key=record.key, headers=list(record.headers)))
        delivered = await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return [Placed(r, topic, m.partition, m.offset) for r, m in zip(records, delivered, strict=True)]


async def _send_raw(producer: Any, topic: str, record: Hostile) -> Any:
    from aiokafka.partitioner import DefaultPartitioner

    partitions = sorted(await producer.partitions_for(topic))
    # Without a key, the first partition rather than a random one: the same records land in the same places.
    partition = partitions[0] if record.key is None else DefaultPartitioner()(record.key, partitions, partitions)
    return await send_raw_batch(producer, topic, partition, record.key, record.value, list(record.headers))


async def send_raw_batch(producer: Any, topic: str, partition: int, key: bytes | None, value: bytes | None,
                         headers: list[Header]) -> Any:
    """A batch of one record (see send_raw_records)."""
    return await send_raw_records(producer, topic, partition, [(key, value, headers)])


async def send_raw_records(producer: Any, topic: str, partition: int,
                           records: Sequence[tuple[bytes | None, bytes | None, list[Header]]]) -> Any:
    """One batch of these records built by aiokafka's pure-Python builder, which writes each header
    name as `name.encode("utf-8")`: a RawHeaderName goes out as its raw bytes. (The compiled
    builder the producer normally uses reads the str itself.) Returns the delivery to await; the
    records get consecutive offsets from its offset on."""
    import time

    from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

    batch = producer.create_batch()
    batch._builder = _DefaultRecordBatchBuilderPy(  # noqa: SLF001
        magic=2, compression_type=0, is_transactional=0, producer_id=-1, producer_epoch=-1,
        base_sequence=0, batch_size=2 * ONE_MIB)
    for relative, (key, value, headers) in enumerate(records):
        appended = batch._builder.append(relative, int(time.time() * 1000), key=key, value=value,  # noqa: SLF001
                                         headers=headers)
        assert appended is not None, "the records fit one batch"
    batch._relative_offset = len(records)  # noqa: SLF001
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)


def end_offsets(placed: Sequence[Placed]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for item in placed:
        ends[item.partition] = max(ends.get(item.partition, 0), item.offset + 1)
    return ends


@dataclass(frozen=True)
class KeptDeadLetter:
    """A dead_letters row, opened with the service's key."""

    id: int
    place: tuple[str, int, int]
    key: bytes | None
    value: bytes | None
    headers: list[tuple[bytes, bytes | None]]
    original_kept: bool
    published_truncated: bool
    error: str
    raw_value: bytes | None = field(repr=False, default=None)  # as stored (sealed)
    raw_header_values: list[bytes | None] = field(repr=False, default_factory=list)


async def kept_dead_letters(settings: Any, *, after_id: int = 0) -> list[KeptDeadLetter]:
    import asyncpg

    from porting_runtime.sealing import Sealer

    sealer = Sealer.from_settings(settings)
    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch("SELECT * FROM dead_letters WHERE id > $1 ORDER BY id", after_id)
    finally:
        await connection.close()
    kept = []
    for row in rows:
        open_ = sealer.unseal_optional if row["sealed"] else (lambda data: data)
        names = [bytes(n) if not isinstance(n, str) else n.encode() for n in row["header_names"]]
        kept.append(KeptDeadLetter(
            id=row["id"], place=(row["source_topic"], row["source_partition"], row["source_offset"]),
            key=row["key"], value=open_(row["value"]),
            headers=[(n, open_(v)) for n, v in zip(names, row["header_values"], strict=True)],
            original_kept=row["original_kept"], published_truncated=row["published_truncated"],
            error=row["error"], raw_value=row["value"], raw_header_values=list(row["header_values"]),
        ))
    return kept


# --- what the poison tests share ----------------------------------------------------------------

ONE_PARTITION = b"one-partition"


async def poison_then_good(settings: Any, poison: Sequence[Hostile], *, good: int = 3, seed: int = 1,
                           key: bytes = ONE_PARTITION, timeout: float = 20) -> tuple[list[Placed], list[Placed]]:
    """Publish the poison, then `good` fresh events, all on one partition, to a running ledger;
    return (poison, good) where they landed once the good ones are answered and every record
    is committed."""
    from tests.kafka_support import wait_until

    records = [*(r.with_key(key) for r in poison), *fresh_good(seed, good, key=key)]
    placed = await publish_hostile(settings, settings.topic(EVENT_TYPE), records)
    assert len({p.partition for p in placed}) == 1
    subjects = {p.record.subject for p in placed[len(poison):]}
    assert await wait_until(lambda: answered_once(settings, subjects), timeout=timeout,
                            what="the good events behind the poison answered")
    assert await wait_until(lambda: consumed(settings, placed), timeout=timeout, what="every record committed")
    return placed[: len(poison)], placed[len(poison):]


async def effects_of(settings: Any, subjects: Sequence[str | None]) -> dict[str, int]:
    """How many effects the ledger recorded for each of these request sids (absent: none)."""
    import asyncpg

    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch(
            "SELECT request_sid, count(*) AS n FROM effects WHERE request_sid = ANY($1::text[]) GROUP BY 1",
            [s for s in subjects if s is not None])
    finally:
        await connection.close()
    return {row["request_sid"]: row["n"] for row in rows}


async def answered_once(settings: Any, subjects: set[str | None]) -> bool:
    return await effects_of(settings, list(subjects)) == dict.fromkeys(subjects, 1)


async def consumed(settings: Any, placed: Sequence[Placed]) -> bool:
    """The ledger's group committed every partition past these records."""
    from tests.kafka_support import committed_offsets

    offsets = await committed_offsets(settings, "ledger", placed[0].topic)
    return all((offsets.get(p) or 0) >= end for p, end in end_offsets(placed).items())


async def outbox_drained(settings: Any) -> bool:
    from tests.kafka_support import fetchval

    return await fetchval(settings.database_url,
                          "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND set_aside_at IS NULL") == 0


def loop_restarts(loop: str) -> float:
    """How often the ledger's `loop` ("consumer", "outbox-relay") was restarted by its supervisor."""
    from porting_runtime import metrics

    return metrics.LOOP_RESTARTS.labels("ledger", loop)._value.get()  # noqa: SLF001


def undecodable_polls() -> float:
    """How often the ledger's Kafka client failed to decode a fetch."""
    from porting_runtime import metrics

    return metrics.PIPELINE_FAILURES.labels("ledger", "undecodable")._value.get()  # noqa: SLF001


def assert_kept_once_with_its_bytes(kept: Sequence[KeptDeadLetter], placed: Placed) -> None:
    rows = [row for row in kept if row.place == placed.place]
    assert len(rows) == 1, f"{placed.record.kind}: {len(rows)} dead letters"
    [row] = rows
    assert (row.key, row.value, row.headers) == (placed.record.key, placed.record.value, placed.record.header_bytes)
