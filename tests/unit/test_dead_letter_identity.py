"""A dead letter's identity, the copy that fits the broker, and stored text made safe."""

from __future__ import annotations

from porting_runtime.dead_letter_shape import (
    DLT_ID_RESERVE_BYTES,
    RECORD_OVERHEAD_BYTES,
    content_hash,
    fit_to_broker,
    headers_size,
    undecodable_hash,
)
from porting_runtime.record_text import name_bytes, safe_text

HEADERS = [(b"ce_id", b"e1"), (b"ce_source", b"tests")]
REASONS = [(b"dlt_error", b"bad"), (b"dlt_source_offset", b"7")]


def test_the_same_record_hashes_the_same_every_time():
    assert content_hash(b"k", b"v", HEADERS, 1000) == content_hash(b"k", b"v", list(HEADERS), 1000)


def test_a_change_in_any_part_of_a_record_changes_its_hash():
    base = content_hash(b"k", b"v", HEADERS, 1000)
    variants = [
        content_hash(b"K", b"v", HEADERS, 1000),
        content_hash(b"k", b"V", HEADERS, 1000),
        content_hash(b"k", b"v", [(b"ce_id", b"e2"), HEADERS[1]], 1000),
        content_hash(b"k", b"v", [(b"ce_ID", b"e1"), HEADERS[1]], 1000),
        content_hash(b"k", b"v", HEADERS[:1], 1000),
        content_hash(b"k", b"v", HEADERS, 1001),
        content_hash(b"k", b"v", HEADERS, None),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


def test_null_and_empty_are_different_contents():
    assert content_hash(None, b"v", [], None) != content_hash(b"", b"v", [], None)
    assert content_hash(b"k", None, [], None) != content_hash(b"k", b"", [], None)
    assert content_hash(b"k", b"v", [(b"h", None)], None) != content_hash(b"k", b"v", [(b"h", b"")], None)


def test_bytes_moved_from_one_field_to_the_next_do_not_collide():
    assert content_hash(b"ab", b"c", [], None) != content_hash(b"a", b"bc", [], None)
    assert content_hash(None, None, [(b"ab", b"c")], None) != content_hash(None, None, [(b"a", b"bc")], None)


def test_records_without_bytes_are_told_apart_by_error_and_timestamp():
    assert undecodable_hash("bad key", None) == undecodable_hash("bad key", None)
    assert undecodable_hash("bad key", None) != undecodable_hash("bad value", None)
    assert undecodable_hash("bad key", 5) != undecodable_hash("bad key", 6)
    assert undecodable_hash("bad key", None) != content_hash(None, None, [], None)


def test_a_dead_letter_that_fits_the_broker_is_sent_whole_with_its_reasons_after_the_original_headers():
    copy = fit_to_broker(b"k", b"v" * 100, HEADERS, REASONS, max_message_bytes=10_000)
    assert not copy.truncated
    assert (copy.key, copy.value, copy.headers) == (b"k", b"v" * 100, HEADERS + REASONS)


def test_a_dead_letter_too_large_for_the_broker_is_cut_to_fit_and_says_so():
    value = b"x" * 1_040_000
    copy = fit_to_broker(b"k", value, HEADERS, REASONS, max_message_bytes=1_000_000)
    assert copy.truncated
    assert value.startswith(copy.value) and len(copy.value) < len(value)
    assert copy.key == b"k" and copy.headers[:2] == HEADERS
    note = dict(copy.headers)[b"dlt_truncated"].decode()
    assert note.startswith(f"original {len(value) + 1 + sum(len(n) + len(v) for n, v in HEADERS)} bytes")
    size = len(copy.key) + len(copy.value) + headers_size(copy.headers) + RECORD_OVERHEAD_BYTES
    assert size <= 1_000_000


def test_a_dead_letter_exactly_at_the_limit_is_sent_whole_and_one_byte_more_is_cut():
    fixed = RECORD_OVERHEAD_BYTES + DLT_ID_RESERVE_BYTES + headers_size(HEADERS + REASONS) + 1  # the key
    at_limit = b"v" * (20_000 - fixed)
    assert not fit_to_broker(b"k", at_limit, HEADERS, REASONS, max_message_bytes=20_000).truncated
    assert fit_to_broker(b"k", at_limit + b"v", HEADERS, REASONS, max_message_bytes=20_000).truncated


def test_a_huge_key_and_many_headers_are_cut_too_and_the_reasons_always_survive():
    headers = [(b"h%d" % i, b"y" * 100) for i in range(20_000)]
    copy = fit_to_broker(b"k" * 900_000, b"v" * 10, headers, REASONS, max_message_bytes=1_000_000)
    names = [n for n, _ in copy.headers]
    assert copy.truncated and b"dlt_error" in names and b"dlt_truncated" in names
    assert len(copy.key) < 900_000 and len(copy.headers) < len(headers)
    size = len(copy.key) + len(copy.value) + headers_size(copy.headers) + RECORD_OVERHEAD_BYTES
    assert size <= 1_000_000


def test_stored_text_has_no_nul_or_control_characters_and_is_bounded():
    text = safe_text("a\x00b\x1b[31mc\r\u202ed\udcff" + "z" * 10_000, limit=100)
    assert "\x00" not in text and "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert text.startswith("a\\x00b\\x1b[31mc\\x0d\\u202ed\\udcff")
    assert len(text) < 150 and "more characters" in text
    text.encode("utf-8")  # would raise on a lone surrogate, as Postgres would refuse it


def test_stored_text_keeps_tabs_newlines_and_other_scripts():
    assert safe_text("line one\n\tline two — Ωμέγα", limit=100) == "line one\n\tline two — Ωμέγα"


def test_header_names_given_as_str_or_bytes_become_the_bytes_they_were():
    assert name_bytes("ce_id") == b"ce_id"
    assert name_bytes(b"\xff\x00") == b"\xff\x00"
    assert name_bytes(b"\xffname".decode("utf-8", "surrogateescape")) == b"\xffname"
