"""Kinds, part 2 of the catalogue: sizes (empty to just under 1 MiB) and nesting."""

from __future__ import annotations

from dataclasses import replace

from .core import JUST_UNDER_ONE_MIB, Parts, Seeded, carrier, document_of, event, kind, value_of
from .kinds_value import value_that_is_json_null


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
