"""Dead letters are stored whatever a record holds, once per record, and sealed at rest."""

from __future__ import annotations

import pytest

from porting_runtime.dead_letters import get_dead_letter, record_dead_letters, record_undecodable, redrive
from porting_runtime.sealing import Sealer, generate_key
from porting_runtime.secret_fields import topic_copy

from .dead_letters_support import (
    ACCOUNT_NUMBER,
    DLT,
    MAX_MESSAGE_BYTES,
    PIN,
    SOURCE,
    migrated,
    outbox_messages,
    record,
    secret_payload,
)


@pytest.fixture
def sealer() -> Sealer:
    return Sealer([generate_key()])


@pytest.fixture
async def connection(database_url):
    async with migrated(database_url) as connection:
        yield connection


async def keep(connection, sealer, *failures):
    async with connection.transaction():
        return await record_dead_letters(connection, consumer="tests", dead_letter_topic=DLT, failures=list(failures),
                                         sealer=sealer, max_message_bytes=MAX_MESSAGE_BYTES)


async def count(connection, table):
    return await connection.fetchval(f"SELECT count(*) FROM {table}")


async def test_hostile_header_names_null_header_values_huge_ids_and_a_near_mebibyte_value_are_all_stored(
        connection, sealer):
    huge_id = "x\x00" * 4000
    near_mebibyte = b"{" + b"a" * (1_048_000 - 2) + b"}"
    hostile = [
        record(0, headers=[("ce\x00id", b"e0")]),
        record(1, headers=[(b"\xff\xfe-not-utf8", b"v")]),
        record(2, headers=[("ce_id", None), ("traceparent", None)]),
        record(3, headers=[("ce_id", huge_id.encode())]),
        record(4, near_mebibyte, headers=[("ce_id", b"big")]),
        record(5, None, key=None, headers=[]),
    ]
    stored = await keep(connection, sealer, *[(r, "bad \x00 error \x1b[31m" + "e" * 10_000) for r in hostile])

    assert stored == [True] * 6
    for offset, original in enumerate(hostile):
        letter = await get_dead_letter(connection, offset + 1, sealer)
        assert (letter.source_offset, letter.key, letter.value) == (offset, original.key, original.value)
        assert letter.headers == [(n if isinstance(n, bytes) else n.encode(), v) for n, v in original.headers]
        assert "\x00" not in letter.error and "\x1b" not in letter.error and len(letter.error) < 4100
    huge = await get_dead_letter(connection, 4, sealer)
    assert len(huge.event_id) < 300 and "\x00" not in huge.event_id
    assert await count(connection, "outbox") == 6


async def test_the_copies_sent_keep_hostile_headers_and_a_too_large_one_is_cut_with_a_note(connection, sealer):
    near_mebibyte = b'"' + b"a" * 1_048_000 + b'"'  # JSON without secrets: the topic's copy is its bytes
    await keep(connection, sealer, (record(0, headers=[("ce\x00id", b"e0"), ("nul", None)]), "bad"),
               (record(1, near_mebibyte), "too big"))

    small, cut = await outbox_messages(connection, sealer)
    assert small.topic == DLT and small.headers[:2] == [("ce\x00id", b"e0"), ("nul", None)]
    headers = dict(small.headers)
    assert (headers["dlt_error"], headers["dlt_source_topic"], headers["dlt_source_offset"]) == (b"bad", SOURCE.encode(), b"0")
    assert headers["dlt_id"] == b"1" and "dlt_truncated" not in headers
    assert near_mebibyte.startswith(cut.value) and len(cut.value) < MAX_MESSAGE_BYTES - 600
    assert dict(cut.headers)["dlt_truncated"].startswith(b"original ")
    kept = await get_dead_letter(connection, 2, sealer)
    assert kept.value == near_mebibyte and kept.published_truncated


async def test_the_same_record_redelivered_at_the_same_place_is_stored_and_sent_once(connection, sealer):
    bad = record(7, b"not json", headers=[("ce_id", b"e7")])
    assert await keep(connection, sealer, (bad, "not JSON")) == [True]
    assert await keep(connection, sealer, (record(7, b"not json", headers=[("ce_id", b"e7")]), "not JSON")) == [False]
    assert await keep(connection, sealer, (bad, "not JSON"), (bad, "not JSON")) == [False, False]
    assert (await count(connection, "dead_letters"), await count(connection, "outbox")) == (1, 1)


async def test_a_record_twice_in_one_batch_is_stored_once(connection, sealer):
    bad = record(7, b"not json")
    assert await keep(connection, sealer, (bad, "not JSON"), (bad, "not JSON")) == [True, False]
    assert (await count(connection, "dead_letters"), await count(connection, "outbox")) == (1, 1)


async def test_a_different_record_at_an_offset_reused_after_a_broker_restart_is_stored_and_sent(connection, sealer):
    await keep(connection, sealer, (record(0, b"first life", headers=[("ce_id", b"a")]), "bad"))
    # The broker restarted: offsets begin at zero again, Postgres kept its rows.
    stored = await keep(connection, sealer,
                        (record(0, b"second life", headers=[("ce_id", b"b")], timestamp=1_800_000_000_000), "bad"),
                        (record(0, b"first life", headers=[("ce_id", b"a")], timestamp=1_800_000_000_000), "bad"))
    assert stored == [True, True]  # the same bytes published again are a new record too
    assert (await count(connection, "dead_letters"), await count(connection, "outbox")) == (3, 3)
    values = [(await get_dead_letter(connection, i, sealer)).value for i in (1, 2, 3)]
    assert values == [b"first life", b"second life", b"first life"]


async def test_at_rest_no_pin_or_account_number_is_readable_in_the_dead_letter_or_its_outbox_copy(connection, sealer):
    payload = secret_payload()
    await keep(connection, sealer, (record(0, payload, headers=[("ce_id", b"e"), ("x-pin", PIN.encode())]), "bad"))

    stored = await connection.fetchrow("SELECT * FROM dead_letters")
    at_rest = [stored["value"], *stored["header_values"]]
    outbox = await connection.fetchrow("SELECT * FROM outbox")
    at_rest += [outbox["value"], *outbox["header_values"]]
    for blob in at_rest:
        assert PIN.encode() not in blob and ACCOUNT_NUMBER.encode() not in blob
    assert stored["sealed"] and outbox["sealed"]
    assert (await get_dead_letter(connection, 1, sealer)).value == payload
    [copy] = await outbox_messages(connection, sealer)
    # The topic's copy goes without them at all (DESIGN 9); the kept original has them, for redrive.
    assert PIN.encode() not in copy.value and ACCOUNT_NUMBER.encode() not in copy.value
    assert copy.value == topic_copy(payload)[0] != payload
    assert "dlt_redacted" in dict(copy.headers)


async def test_a_record_the_client_could_not_decode_is_kept_without_bytes_once_and_is_never_redriven(
        connection, sealer):
    async def undecodable():
        async with connection.transaction():
            return await record_undecodable(
                connection, consumer="tests", dead_letter_topic=DLT, topic=SOURCE, partition=2, offset=9,
                error="header key is not UTF-8", sealer=sealer, max_message_bytes=MAX_MESSAGE_BYTES)

    assert await undecodable() is True
    assert await undecodable() is False
    letter = await get_dead_letter(connection, 1, sealer)
    assert not letter.original_kept and letter.value is None and letter.headers == []
    [sent] = await outbox_messages(connection, sealer)
    assert dict(sent.headers)[b"dlt_original_unavailable".decode()]
    result = await redrive(connection, None, sealer)
    assert (result.ids, result.without_bytes) == ([], [1])
    assert await count(connection, "outbox") == 1


async def test_a_redrive_sends_the_original_bytes_and_headers_back_to_the_source_topic_sealed_in_the_outbox(
        connection, sealer):
    payload = secret_payload()
    original = record(3, payload, headers=[("ce_id", b"e3"), ("ce\x00odd", None)])
    await keep(connection, sealer, (original, "a rule"))

    assert (await redrive(connection, None, sealer)).ids == [1]
    assert (await redrive(connection, None, sealer)).ids == []
    resent = (await outbox_messages(connection, sealer))[-1]
    assert (resent.topic, resent.key, resent.value) == (SOURCE, b"KW1", payload)
    assert resent.headers == [("ce_id", b"e3"), ("ce\x00odd", None)]
    row = await connection.fetchrow("SELECT value, sealed FROM outbox ORDER BY id DESC LIMIT 1")
    assert row["sealed"] and PIN.encode() not in row["value"]


async def test_a_dead_letter_larger_than_the_broker_takes_stays_pending_instead_of_being_marked_redriven(
        connection, sealer):
    await keep(connection, sealer, (record(4, b'{"x": "' + b"y" * 30_000 + b'"}'), "too large for the broker"))

    refused = await redrive(connection, [1], sealer, max_message_bytes=20_000)
    still = await connection.fetchval("SELECT redriven_at IS NULL FROM dead_letters WHERE id = 1")
    taken = await redrive(connection, [1], sealer, max_message_bytes=100_000)
    assert (refused.ids, [i for i, _ in refused.too_large], still) == ([], [1], True)
    assert refused.too_large[0][1] > 30_000
    assert (taken.ids, taken.too_large) == ([1], [])
