"""Kinds, part 4 of the catalogue: envelope headers (and, at its end, control characters in text)."""

from __future__ import annotations

from dataclasses import replace

from .core import SOURCE, Parts, RawHeaderName, Seeded, carrier, document_of, event, kind, without
from .kinds_value import value_that_is_json_null


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
