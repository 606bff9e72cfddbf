"""Kinds, part 1 of the catalogue: encodings of the value, and JSON that is not the event's."""

from __future__ import annotations

import json
from dataclasses import replace

from .core import Parts, Seeded, carrier, document_of, event, kind, payload, value_of


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
