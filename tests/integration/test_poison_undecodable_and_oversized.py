"""Findings 9 and 2 of issue 6, each on a ledger of its own (they watch its loops and its relay):
a record the Kafka client cannot decode, and dead letters the broker could not take as they
are. Good events behind each on its very partition are answered, their follow-ups go out, and
no loop restarts.
"""

from __future__ import annotations

import pytest

from porting_runtime.secret_fields import topic_copy
from schemas import PortAlertRaised, dead_letter_topic

from ..hostile_records import (
    EVENT_TYPE,
    answered_once,
    assert_kept_once_with_its_bytes,
    effects_of,
    fresh_good,
    kept_dead_letters,
    loop_restarts,
    make,
    outbox_drained,
    poison_then_good,
    publish_hostile,
    send_raw_records,
    undecodable_polls,
)
from .ledger import collect, fetchval, running, wait_until


# --- finding 9: a header name that is not UTF-8 -----------------------------------------------------

async def test_a_record_whose_header_name_is_not_utf8_is_dead_lettered_once_and_its_partition_moves_on(settings):
    consumer_restarts, polls = loop_restarts("consumer"), undecodable_polls()
    # Good events in front of it too: the poll that fails has drained them, and must not lose them.
    in_front = fresh_good(15, 3)
    async with running(settings):
        [*_, unreadable], good = await poison_then_good(settings, [*in_front, *make("header_name_that_is_not_utf8", seed=15)])
        # No loop: one more good event later is answered, and the client stumbled once, not again.
        _, later = await poison_then_good(settings, [], good=1, seed=16)
        kept = await kept_dead_letters(settings)

    [row] = kept
    assert row.place == unreadable.place and "could not decode" in row.error
    if row.original_kept:  # its bytes could be had after all: all of them
        assert (row.key, row.value, row.headers) == (
            unreadable.record.key, unreadable.record.value, unreadable.record.header_bytes)
    else:
        assert (row.key, row.value, row.headers) == (None, None, [])
    subjects = [r.subject for r in (*in_front, *(p.record for p in (*good, *later)))]
    assert await effects_of(settings, subjects) == dict.fromkeys(subjects, 1)
    assert undecodable_polls() - polls == 1
    assert loop_restarts("consumer") == consumer_restarts


async def test_records_behind_an_undecodable_one_in_its_own_batch_are_answered_not_dead_lettered(settings):
    """aiokafka decodes a whole record batch before it skips to the position: the good records
    after the culprit in the batch it came in are read from the raw batch and answered."""
    from aiokafka import AIOKafkaProducer

    from porting_runtime.kafka import connection_options, ensure_topics

    topic = settings.topic(EVENT_TYPE)
    [before] = fresh_good(21, 1)
    [poison] = make("header_name_that_is_not_utf8", seed=21)
    after = fresh_good(22, 3)
    batch = [before, poison, *after]
    await ensure_topics(settings, [topic])
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        delivered = await (await send_raw_records(producer, topic, 0, [(r.key, r.value, list(r.headers))
                                                                        for r in batch]))
    finally:
        await producer.stop()
    async with running(settings):
        subjects = [r.subject for r in (before, *after)]
        assert await wait_until(lambda: answered_once(settings, set(subjects)), timeout=20,
                                what="the good records of the batch answered")
        kept = await kept_dead_letters(settings)
    assert [row.place for row in kept] == [(topic, 0, delivered.offset + 1)]
    assert await effects_of(settings, subjects) == dict.fromkeys(subjects, 1)


# --- finding 2, the consumer's part: dead letters the broker cannot take as they are -----------------

async def test_a_bad_record_just_under_one_mib_is_kept_whole_published_cut_and_later_follow_ups_still_go_out(settings):
    relay_restarts = loop_restarts("outbox-relay")
    async with running(settings):
        [big], good = await poison_then_good(settings, make("value_just_under_one_mib", seed=17))
        assert await wait_until(lambda: outbox_drained(settings), what="outbox drained")
        copies = await collect(settings, settings.topic(dead_letter_topic("ledger")), expect=1, settle=0.5)
        follow_ups = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=len(good), settle=0.5)
        kept = await kept_dead_letters(settings)

    assert_kept_once_with_its_bytes(kept, big)
    [copy] = copies
    assert "dlt_truncated" in dict(copy.headers) and topic_copy(big.record.value)[0].startswith(copy.value)
    assert sorted(dict(f.headers)["ce_subject"].decode() for f in follow_ups) == sorted(g.record.subject for g in good)
    assert await fetchval(settings.database_url, "SELECT count(*) FROM outbox WHERE set_aside_at IS NOT NULL") == 0
    assert loop_restarts("outbox-relay") == relay_restarts


@pytest.mark.parametrize("kind", ["header_name_that_is_not_utf8", "neither_key_nor_value"])
async def test_a_dead_letter_whose_copy_has_no_key_and_no_value_is_published_and_later_follow_ups_too(settings, kind):
    """Such a copy (of an unreadable record, or of a record with neither) is one aiokafka's
    producer refuses to send: the relay must not stall on it."""
    relay_restarts = loop_restarts("outbox-relay")
    poison = make(kind, seed=18)
    async with running(settings):
        if kind == "neither_key_nor_value":  # without a key it cannot share the good events' partition
            await publish_hostile(settings, settings.topic(EVENT_TYPE), poison)
            poison = []
        _, good = await poison_then_good(settings, poison)
        assert await wait_until(lambda: _dead_letters_are(settings, 1), what="its dead letter kept")
        assert await wait_until(lambda: outbox_drained(settings), timeout=15, what="outbox drained")
        copies = await collect(settings, settings.topic(dead_letter_topic("ledger")), expect=1, settle=0.5)
        follow_ups = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=len(good), settle=0.5)

    assert len(copies) == 1
    assert sorted(dict(f.headers)["ce_subject"].decode() for f in follow_ups) == sorted(g.record.subject for g in good)
    assert loop_restarts("outbox-relay") == relay_restarts


async def _dead_letters_are(settings, count: int) -> bool:
    return await fetchval(settings.database_url, "SELECT count(*) FROM dead_letters") == count
