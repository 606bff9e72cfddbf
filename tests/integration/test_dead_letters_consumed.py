"""A handler dead-letters an event consumed in an earlier transaction (a parked one found invalid
later) through its unit of work: kept like any dead letter, listed, and redriven to its topic."""

from __future__ import annotations

from porting_runtime.dead_letters import get_dead_letter, list_dead_letters, redrive
from porting_runtime.sealing import Sealer, generate_key
from porting_runtime.unit_of_work import UnitOfWork

from .dead_letters_support import migrated, outbox_messages, record, secret_payload

TOPIC = "porting.carrier-responded.v1"
HEADERS = [("ce_specversion", b"1.0"), ("ce_id", b"answer-1"), ("ce_source", b"carrier"),
           ("ce_type", TOPIC.encode()), ("x-vendor", b"\xff\x00raw")]


async def test_an_event_consumed_earlier_is_dead_lettered_in_the_units_transaction_and_redrives_like_any(
        database_url):
    sealer = Sealer([generate_key()])
    original = record(41, secret_payload(), headers=HEADERS, partition=2, topic=TOPIC)
    async with migrated(database_url) as connection:
        await connection.execute(
            """INSERT INTO inbox (consumer, event_source, event_id, event_type, topic, partition, "offset")
               VALUES ('tests', 'carrier', 'answer-1', $1, $1, 2, 41)""", TOPIC)
        unit = UnitOfWork(connection, source="tests", sealer=sealer)
        async with connection.transaction():
            kept = await unit.dead_letter(original, "names a number not in the request")
        async with connection.transaction():
            kept_again = await unit.dead_letter(original, "names a number not in the request")
        claimed = await connection.fetchval("SELECT count(*) FROM inbox")
        [listed] = await list_dead_letters(connection)
        stored = await get_dead_letter(connection, listed["id"], sealer)
        published = await outbox_messages(connection, sealer)
        redriven = await redrive(connection, None, sealer)
        resent = (await outbox_messages(connection, sealer))[-1]

    assert (kept, kept_again) == (True, False), "kept once, sent once"
    assert (listed["consumer"], listed["source_topic"], listed["source_partition"], listed["source_offset"],
            listed["event_id"], listed["error"]) == ("tests", TOPIC, 2, 41, "answer-1",
                                                     "names a number not in the request")
    assert stored is not None
    assert (stored.value, stored.headers) == (original.value, [(n.encode(), v) for n, v in HEADERS])
    assert claimed == 0, "no inbox row left: the redriven event is handled, not skipped as a duplicate"
    [dead_letter] = published
    assert dead_letter.topic == "porting.dead-letter.tests.v1"
    assert ("dlt_error", b"names a number not in the request") in dead_letter.headers
    assert redriven.ids == [listed["id"]]
    assert (resent.topic, resent.value) == (TOPIC, original.value)
