"""The runtime against the real broker and database: one effect per event, whatever is redelivered."""

from __future__ import annotations

from schemas import PortAlertRaised

from ..factories import port_requested
from .ledger import collect, committed_offsets, fetchval, port_requested_record, publish, rows_are, running, wait_until


async def test_a_duplicated_event_has_one_effect_and_one_follow_up(settings):
    event = port_requested()
    record = port_requested_record(settings, event)
    await publish(settings, [record, record])  # the same ce_id twice

    async with running(settings):
        assert await wait_until(lambda: _inbox_duplicates_seen(settings, record.topic, 2)), "both copies consumed"
        follow_ups = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=1, settle=2.0)

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 1
    assert len(follow_ups) == 1
    assert dict(follow_ups[0].headers)["ce_subject"] == event.port_in_request_sid.encode()


async def test_a_batch_over_several_partitions_commits_each_partitions_offset(settings):
    events = [port_requested() for _ in range(40)]
    records = [port_requested_record(settings, e) for e in events]
    await publish(settings, records)

    async with running(settings):
        await wait_until(lambda: rows_are(settings, "effects", 40))
        async def all_committed():
            offsets = await committed_offsets(settings, "ledger", records[0].topic)
            return offsets if sum(o or 0 for o in offsets.values()) == 40 else None
        offsets = await wait_until(all_committed)

    assert offsets, "every partition's offset is committed up to its end"
    assert len([o for o in offsets.values() if o]) > 1, "the 40 keys spread over several partitions"
    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 40


async def test_replaying_a_topic_from_offset_zero_changes_nothing_and_sends_nothing_twice(settings):
    records = [port_requested_record(settings, port_requested()) for _ in range(10)]
    await publish(settings, records)
    async with running(settings):
        await wait_until(lambda: rows_are(settings, "effects", 10))
    # An operator replays the whole topic into the service: a brand-new consumer group name
    # would be a new consumer, so the replay is the same service reading everything again.
    await publish(settings, records)
    async with running(settings):
        await wait_until(lambda: _inbox_duplicates_seen(settings, records[0].topic, 20))
    follow_ups = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=10, settle=2.0)

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 10
    assert len(follow_ups) == 10


async def _inbox_duplicates_seen(settings, topic, total):
    offsets = await committed_offsets(settings, "ledger", topic)
    return sum(o or 0 for o in offsets.values()) == total
