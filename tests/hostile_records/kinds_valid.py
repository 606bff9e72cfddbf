"""Kinds, part 5 (the last) of the catalogue: valid events, however odd, each answered once."""

from __future__ import annotations

import json
from dataclasses import replace

from .core import Parts, Seeded, carrier, document_of, event, kind, without
from .kinds_data import revision_written_as


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
