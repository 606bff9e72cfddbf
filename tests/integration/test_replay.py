"""`porting replay SERVICE TOPIC`: a topic, or a range of it, re-delivered into one service only,
on the real broker and PostgreSQL, through the typer app as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from porting_cli.main import app
from porting_runtime import MovableClock, ServiceSettings
from porting_runtime.kafka import connection_options, ensure_topics
from typer.testing import CliRunner
from workflow.service import WORKFLOW

from schemas import (
    KafkaRecord,
    PortabilityChecked,
    PortRequested,
    PortStatusChanged,
    PortSubmitted,
    dead_letter_topic,
)

from ..conftest import TEST_DATA_ENCRYPTION_KEY
from ..hostile_records import RawHeaderName, send_raw_batch, send_raw_records
from ..kafka_support import committed_offsets, fetchval, outbox_at_rest, publish, wait_until
from .portability_support import (
    PORTABLE,
    TARGET,
    checked,
    portability_service,
    request_for,
    status_change,
)
from .test_workflow_support import US_NUMBER, port_requested, record, running_workflow
from .test_workflow_support import checked as portability_answer

REQUESTED = PortRequested.event_type
STATUS_CHANGED = PortStatusChanged.event_type
PLUS_TWO = timezone(timedelta(hours=2))


async def porting_replay(settings: ServiceSettings, *args: str, **environment: str) -> Any:
    """`porting replay ...` against this test's broker, topics and database, with nothing of a local stack."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "TOPIC_PREFIX": settings.topic_prefix,
           "DATA_ENCRYPTION_KEYS": TEST_DATA_ENCRYPTION_KEY, "PORTING_DATA_DIR": "/nonexistent", "COLUMNS": "200",
           **environment}
    return await asyncio.to_thread(CliRunner().invoke, app, ["replay", *args, "--database-url", settings.database_url],
                                   env=env)


async def replayed(settings: ServiceSettings, *args: str, **environment: str) -> dict[str, Any]:
    result = await porting_replay(settings, *args, "--json", **environment)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def counts(report: dict[str, Any]) -> dict[str, int]:
    return {key: report[key] for key in ("read", "replayed", "applied", "already_seen", "dead_lettered")}


async def rows(settings: ServiceSettings, query: str, *args: Any) -> list[tuple[Any, ...]]:
    connection = await asyncpg.connect(settings.database_url)
    try:
        return [tuple(row) for row in await connection.fetch(query, *args)]
    finally:
        await connection.close()


async def execute(settings: ServiceSettings, statement: str) -> None:
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def portability_state(settings: ServiceSettings) -> dict[str, Any]:
    """Everything the portability service keeps, its outbox (what waits or was set aside) and dead letters."""
    return {
        "checks": await rows(settings, "SELECT requested_by, port_in_request_sid, phone_number, portable, reason_code, "
                                       "result FROM portability_checks ORDER BY requested_by, phone_number"),
        "inventory": await rows(settings, "SELECT phone_number, account_sid, port_in_request_sid FROM inventory "
                                          "ORDER BY phone_number"),
        "inbox": await rows(settings, "SELECT event_source, event_id, topic, partition, \"offset\" FROM inbox "
                                      "ORDER BY event_id"),
        "outbox": await rows(settings, "SELECT id, topic, key FROM outbox ORDER BY id"),
        "dead_letters": await rows(settings, "SELECT id, source_topic, source_partition, source_offset "
                                             "FROM dead_letters ORDER BY id"),
    }


async def records_on(settings: ServiceSettings, *topics: str) -> list[tuple[str, int, int, bytes | None]]:
    """(topic, partition, offset, key) of every record on the topics now, read up to each partition's high
    watermark (the embedded broker's ListOffsets answer falls short after a batch of several records)."""
    await ensure_topics(settings, topics)
    consumer = AIOKafkaConsumer(**connection_options(settings), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    found: list[tuple[str, int, int, bytes | None]] = []
    try:
        await consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)

        async def read_to_the_end() -> bool:
            for batch in (await consumer.getmany(*partitions, timeout_ms=200)).values():
                found.extend((r.topic, r.partition, r.offset, r.key) for r in batch)
            ends = {tp: consumer.highwater(tp) for tp in partitions}
            return None not in ends.values() and all([await consumer.position(tp) >= end for tp, end in ends.items()])

        await wait_until(read_to_the_end, what="the topics read to their end")
    finally:
        await consumer.stop()
    return sorted(found)


async def publish_placed(settings: ServiceSettings,
                         placed: Sequence[tuple[KafkaRecord, int | None, int | None]]) -> None:
    """Publish each record on the partition given (None: by its key) with the timestamp given (ms; None: now)."""
    await ensure_topics(settings, {r.topic for r, _, _ in placed})
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for record, partition, timestamp_ms in placed:
            await producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers,
                                         partition=partition, timestamp_ms=timestamp_ms)
    finally:
        await producer.stop()


async def all_committed(settings: ServiceSettings, service: str, topic: str, expected: int) -> bool:
    offsets = await committed_offsets(settings, service, topic)
    return sum(o or 0 for o in offsets.values()) == expected


def checks_of(state: dict[str, Any]) -> set[str]:
    return {sid for _, sid, *_ in state["checks"]}


# --- the portability service, running -----------------------------------------------------------------

async def test_replaying_an_input_topic_from_the_beginning_into_the_running_service_changes_nothing_and_sends_nothing(
        settings):
    requests = [request_for(settings, [PORTABLE, "+18002752273"]) for _ in range(8)]
    sids = [sid for sid, _ in requests]
    good = requests[0][1]
    bad_json = KafkaRecord(good.topic, b"bad", b'{"port_in_request_sid": ', good.headers)
    topic = settings.topic(REQUESTED)
    async with portability_service(settings):
        await publish(settings, [*(r for _, r in requests), bad_json])
        await checked(settings, sids)
        await wait_until(lambda: all_committed(settings, "portability", topic, 9), what="every record committed")
        await wait_until(lambda: outbox_at_rest(settings), what="every follow-up and dead letter sent")
        before = await portability_state(settings)
        offsets_before = await committed_offsets(settings, "portability", topic)
        sent_before = await records_on(settings, settings.topic(PortabilityChecked.event_type),
                                       settings.topic(dead_letter_topic("portability")))

        report = await replayed(settings, "portability", REQUESTED)
        as_a_table = await porting_replay(settings, "portability", REQUESTED)

        after = await portability_state(settings)
        offsets_after = await committed_offsets(settings, "portability", topic)
        sent_after = await records_on(settings, settings.topic(PortabilityChecked.event_type),
                                      settings.topic(dead_letter_topic("portability")))
    # The dead letter kept before counts as already seen too: it is neither kept nor sent again.
    assert counts(report) == {"read": 9, "replayed": 9, "applied": 0, "already_seen": 9, "dead_lettered": 0}
    assert report["complete"] and report["topic"] == topic
    assert sum(p["read"] for p in report["partitions"]) == 9
    assert as_a_table.exit_code == 0 and "already seen" in as_a_table.stdout and "dead-lettered" in as_a_table.stdout
    assert re.search(r"\ball\W+9\W+9\W+0\W+9\W+0\W*$", as_a_table.stdout, re.MULTILINE), as_a_table.stdout
    assert len(before["checks"]) == 16 and len(before["dead_letters"]) == 1
    assert after == before, "no state, inbox, outbox or dead-letter row changed"
    assert len(sent_before) == 9 and sent_after == sent_before, "nothing was published"
    assert offsets_after == offsets_before, "the service's consumer group was not touched"


async def test_after_a_restore_a_replay_of_each_input_topic_rebuilds_the_state_and_requeues_the_follow_ups(settings):
    requests = [request_for(settings, [PORTABLE, "+18002752273"]) for _ in range(5)]
    sids = [sid for sid, _ in requests]
    completed = status_change(settings, sids[0], PORTABLE, "completed", "completed")
    async with portability_service(settings):
        await publish(settings, [r for _, r in requests])
        await checked(settings, sids)
        await publish(settings, [completed])
        await wait_until(lambda: fetchval(settings.database_url, "SELECT account_sid FROM inventory "
                                                                 "WHERE phone_number = $1", PORTABLE),
                         what="the completed number held")
        await wait_until(lambda: outbox_at_rest(settings), what="every follow-up sent")
        before = await portability_state(settings)
        # A backup from before these events: none of their checks, inbox rows or holdings.
        await execute(settings, "TRUNCATE portability_checks, inbox; "
                                f"DELETE FROM inventory WHERE phone_number = '{PORTABLE}'")

        requested = await replayed(settings, "portability", REQUESTED)
        status = await replayed(settings, "portability", STATUS_CHANGED)

        after = await portability_state(settings)
        await wait_until(lambda: outbox_at_rest(settings), what="the re-queued follow-ups sent by the running service")
        published = await records_on(settings, settings.topic(PortabilityChecked.event_type))
    assert counts(requested) == {"read": 5, "replayed": 5, "applied": 5, "already_seen": 0, "dead_lettered": 0}
    assert counts(status) == {"read": 1, "replayed": 1, "applied": 1, "already_seen": 0, "dead_lettered": 0}
    assert after["checks"] == before["checks"], "every check made again, for the same events, with the same answers"
    assert after["inventory"] == before["inventory"] and (PORTABLE, TARGET, None) in after["inventory"]
    assert sorted(after["inbox"]) == sorted(before["inbox"])
    assert sorted(key.decode() for *_, key in published) == sorted(sids * 2), \
        "the first answers, then the re-queued ones, sent by the service's relay"


async def test_after_a_fix_for_a_bug_that_dead_lettered_events_a_replay_applies_those_events_and_nothing_else_twice(
        settings, monkeypatch):
    from portability.service_layer import handlers

    toll_free = "+18002752273"
    fine = [request_for(settings, [PORTABLE]) for _ in range(4)]
    hit = [request_for(settings, [toll_free]) for _ in range(2)]
    real_check_requests = handlers.check_requests

    async def buggy_check_requests(repository, coverage_file, requests):
        if any(number == toll_free for request in requests for number, _ in request.numbers):
            raise RuntimeError("a bug in the checks of toll-free numbers")
        return await real_check_requests(repository, coverage_file, requests)

    monkeypatch.setattr(handlers, "check_requests", buggy_check_requests)
    async with portability_service(settings):
        await publish(settings, [r for _, r in (*fine, *hit)])
        await wait_until(lambda: fetchval(settings.database_url, "SELECT count(*) = 2 FROM dead_letters"),
                         what="the requests the bug hits dead-lettered")
        await wait_until(lambda: all_committed(settings, "portability", settings.topic(REQUESTED), 6),
                         what="the service through the topic")
        before = await portability_state(settings)
        monkeypatch.undo()  # the fix is deployed

        report = await replayed(settings, "portability", REQUESTED)
        after = await portability_state(settings)
        again = await replayed(settings, "portability", REQUESTED)
        await wait_until(lambda: outbox_at_rest(settings), what="the new answers sent by the running service")
        answers = await records_on(settings, settings.topic(PortabilityChecked.event_type))
    assert checks_of(before) == {sid for sid, _ in fine}
    assert counts(report) == {"read": 6, "replayed": 6, "applied": 2, "already_seen": 4, "dead_lettered": 0}
    assert checks_of(after) == {sid for sid, _ in (*fine, *hit)}
    assert after["dead_letters"] == before["dead_letters"], "the dead letters stay, as history"
    assert (again["applied"], again["already_seen"]) == (0, 6)
    assert sorted(key.decode() for *_, key in answers) == sorted(sid for sid, _ in (*fine, *hit)), \
        "one answer per request: the four from before, the two the fix made possible"


async def test_a_replay_while_the_service_consumes_the_same_records_applies_each_event_once(settings):
    requests = [request_for(settings, [PORTABLE]) for _ in range(150)]
    sids = [sid for sid, _ in requests]
    async with portability_service(settings):  # its database migrated and seeded, its topics made
        pass
    await publish(settings, [r for _, r in requests])
    slow = settings.model_copy(update={"consumer_batch_size": 5})
    async with portability_service(slow):
        await wait_until(lambda: fetchval(settings.database_url, "SELECT count(*) > 0 FROM inbox"),
                         what="the service consuming")
        report = await replayed(settings, "portability", REQUESTED, CONSUMER_BATCH_SIZE="5")
        await wait_until(lambda: all_committed(settings, "portability", settings.topic(REQUESTED), len(requests)),
                         what="the service through the topic")
        state = await portability_state(settings)
        await wait_until(lambda: outbox_at_rest(settings), what="every answer sent by the running service")
        answers = await records_on(settings, settings.topic(PortabilityChecked.event_type))
    assert report["read"] == 150 and report["applied"] + report["already_seen"] == 150
    assert sorted(sid for _, sid, *_ in state["checks"]) == sorted(sids), "each request checked once"
    assert sorted(key.decode() for *_, key in answers) == sorted(sids), \
        "one PortabilityChecked per request, whoever applied it"


# --- which records --------------------------------------------------------------------------------------

async def test_from_offset_and_partition_replay_only_the_records_from_that_offset_of_those_partitions(settings):
    requests = [request_for(settings, [PORTABLE]) for _ in range(7)]
    sids = [sid for sid, _ in requests]
    # Offsets 0 to 4 of partition 0 and 0 to 1 of partition 1.
    placed = [(r, 0 if i < 5 else 1, None) for i, (_, r) in enumerate(requests)]
    async with portability_service(settings):
        await publish_placed(settings, placed)
        await checked(settings, sids)
        await execute(settings, "TRUNCATE portability_checks, inbox")

        # One record per fetch: the range is read over many batches.
        one_partition = await replayed(settings, "portability", REQUESTED, "--partition", "0", "--from-offset", "3",
                                       CONSUMER_BATCH_SIZE="1")
        after_one = await portability_state(settings)
        every_partition = await replayed(settings, "portability", REQUESTED, "--from-offset", "1")
        after_every = await portability_state(settings)
    assert [(p["partition"], p["start_offset"], p["end_offset"]) for p in one_partition["partitions"]] == [(0, 3, 5)]
    assert counts(one_partition) == {"read": 2, "replayed": 2, "applied": 2, "already_seen": 0, "dead_lettered": 0}
    assert checks_of(after_one) == {sids[3], sids[4]}
    by_partition = {p["partition"]: p for p in every_partition["partitions"]}
    assert (by_partition[0]["start_offset"], by_partition[0]["applied"], by_partition[0]["already_seen"]) == (1, 2, 2)
    assert (by_partition[1]["start_offset"], by_partition[1]["applied"], by_partition[1]["already_seen"]) == (1, 1, 0)
    assert all(p["read"] == 0 for n, p in by_partition.items() if n > 1)
    assert checks_of(after_every) == {sids[1], sids[2], sids[3], sids[4], sids[6]}


async def test_from_time_and_to_time_replay_only_the_records_stamped_within_by_the_records_own_timestamps(settings):
    requests = [request_for(settings, [PORTABLE]) for _ in range(4)]
    sids = [sid for sid, _ in requests]
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    stamped = [first + timedelta(hours=i) for i in range(4)]  # first, +1 h, +2 h, +3 h
    # Stamped out of order across the log (a producer's clock is its own): a scan, not a lookup, finds them.
    order = [2, 0, 3, 1]
    async with portability_service(settings):
        await publish_placed(settings, [(requests[i][1], 0, int(stamped[i].timestamp() * 1000)) for i in order])
        await checked(settings, sids)
        await execute(settings, "TRUNCATE portability_checks, inbox")

        within = await replayed(settings, "portability", REQUESTED,  # UTC when the time names no zone
                                "--from-time", (stamped[1] - timedelta(minutes=30)).replace(tzinfo=None).isoformat(),
                                "--to-time", (stamped[2] + timedelta(minutes=30)).astimezone(PLUS_TWO).isoformat())
        after_within = await portability_state(settings)
        before_first = await replayed(settings, "portability", REQUESTED, "--to-time", stamped[1].isoformat())
        after_before = await portability_state(settings)
        from_last = await replayed(settings, "portability", REQUESTED,
                                   "--from-time", stamped[3].strftime("%Y-%m-%dT%H:%M:%SZ"))
        after_last = await portability_state(settings)
    assert counts(within) == {"read": 4, "replayed": 2, "applied": 2, "already_seen": 0, "dead_lettered": 0}
    assert checks_of(after_within) == {sids[1], sids[2]}
    assert (before_first["replayed"], before_first["applied"]) == (1, 1), "to-time is exclusive"
    assert checks_of(after_before) == {sids[0], sids[1], sids[2]}
    assert (from_last["replayed"], from_last["applied"]) == (1, 1), "from-time is inclusive"
    assert checks_of(after_last) == set(sids)


async def test_a_replay_reads_to_the_end_even_when_the_last_batch_on_the_broker_holds_several_records(settings):
    requests = [request_for(settings, [PORTABLE]) for _ in range(4)]
    sids = [sid for sid, _ in requests]
    await ensure_topics(settings, [settings.topic(REQUESTED)])
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False, linger_ms=200)
    await producer.start()
    try:  # sent together: one batch of four records on partition 0
        sent = await asyncio.gather(*[await producer.send(r.topic, r.value, key=r.key, headers=r.headers, partition=0)
                                      for _, r in requests])
    finally:
        await producer.stop()
    async with portability_service(settings):
        await checked(settings, sids)
        await execute(settings, "TRUNCATE portability_checks, inbox")
        report = await replayed(settings, "portability", REQUESTED, "--partition", "0")
        after = await portability_state(settings)
    assert [m.offset for m in sent] == [0, 1, 2, 3]
    assert report["partitions"][0]["end_offset"] == 4
    assert counts(report) == {"read": 4, "replayed": 4, "applied": 4, "already_seen": 0, "dead_lettered": 0}
    assert checks_of(after) == set(sids)


async def publish_unreadable(settings: ServiceSettings, like: KafkaRecord, partition: int) -> None:
    """`like`, with a header name that is not UTF-8: the Kafka client cannot decode it."""
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await (await send_raw_batch(producer, like.topic, partition, like.key, like.value,
                                    [*like.headers, (RawHeaderName(b"\xff\xfe"), b"x")]))
    finally:
        await producer.stop()


async def test_a_record_the_kafka_client_cannot_decode_is_dead_lettered_by_its_place_once_and_the_replay_goes_on(
        settings):
    (first_sid, first), (unreadable_sid, unreadable), (last_sid, last) = (
        request_for(settings, [PORTABLE]) for _ in range(3))
    async with portability_service(settings):
        await publish_placed(settings, [(first, 0, None)])
        await publish_unreadable(settings, unreadable, partition=0)
        await publish_placed(settings, [(last, 0, None)])
        # Read in the database: whether the relay sends a dead letter without key or value bytes is not this test's.
        await wait_until(lambda: fetchval(settings.database_url, "SELECT count(DISTINCT port_in_request_sid) = 2 "
                                                                 "FROM portability_checks"),
                         what="the readable requests checked by the service")
        await wait_until(lambda: fetchval(settings.database_url, "SELECT count(*) = 1 FROM dead_letters"),
                         what="the unreadable record dead-lettered by the service")
        await wait_until(lambda: outbox_at_rest(settings), what="the follow-ups sent: the outbox at rest")
        before = await portability_state(settings)

        again = await replayed(settings, "portability", REQUESTED, "--partition", "0")
        unchanged = await portability_state(settings)
        await execute(settings, "TRUNCATE portability_checks, inbox, dead_letters")
        rebuilt = await replayed(settings, "portability", REQUESTED, "--partition", "0")
        after = await portability_state(settings)
    assert [tuple(d[1:]) for d in before["dead_letters"]] == [(settings.topic(REQUESTED), 0, 1)]
    assert counts(again) == {"read": 3, "replayed": 3, "applied": 0, "already_seen": 3, "dead_lettered": 0}
    assert unchanged == before
    assert counts(rebuilt) == {"read": 3, "replayed": 3, "applied": 2, "already_seen": 0, "dead_lettered": 1}
    assert checks_of(after) == {first_sid, last_sid} and unreadable_sid not in checks_of(after)
    assert [tuple(d[1:]) for d in after["dead_letters"]] == [(settings.topic(REQUESTED), 0, 1)]


async def test_the_records_behind_an_undecodable_one_in_its_own_batch_are_replayed_not_dead_lettered(settings):
    """aiokafka decodes a whole record batch before it skips to the position: a replay reads the
    rest of the culprit's batch from its raw bytes, as the consume loop does."""
    requests = [request_for(settings, [PORTABLE]) for _ in range(5)]
    (unreadable_sid, unreadable) = requests[1]
    batch = [(r.key, r.value, list(r.headers)) for _, r in requests]
    batch[1] = (unreadable.key, unreadable.value, [*unreadable.headers, (RawHeaderName(b"\xff\xfe"), b"x")])
    await ensure_topics(settings, [settings.topic(REQUESTED)])
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await (await send_raw_records(producer, settings.topic(REQUESTED), 0, batch))
    finally:
        await producer.stop()
    readable = {sid for sid, _ in requests} - {unreadable_sid}
    async with portability_service(settings):
        await checked(settings, sorted(readable))
        await execute(settings, "TRUNCATE portability_checks, inbox, dead_letters")
        rebuilt = await replayed(settings, "portability", REQUESTED, "--partition", "0")
        after = await portability_state(settings)
    assert counts(rebuilt) == {"read": 5, "replayed": 5, "applied": 4, "already_seen": 0, "dead_lettered": 1}
    assert checks_of(after) == readable
    assert [tuple(d[1:]) for d in after["dead_letters"]] == [(settings.topic(REQUESTED), 0, 1)]


# --- refusals ---------------------------------------------------------------------------------------------

async def test_an_unknown_service_is_refused_in_one_line_naming_the_services(settings):
    for name in ("billing", "porting_runtime", "Portability; rm -rf"):
        result = await porting_replay(settings, name, REQUESTED)
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1 and "no service" in result.stderr
        assert "portability, workflow, notifier" in result.stderr
        assert "Traceback" not in result.output


@pytest.mark.parametrize("service, foreign, consumed", [
    ("portability", "porting.carrier-responded.v1", "porting.port-requested.v1, porting.port-status-changed.v1"),
    ("workflow", "porting.port-status-changed.v1", "porting.port-requested.v1, porting.portability-checked.v1"),
    ("notifier", "porting.port-requested.v1", "porting.port-status-changed.v1, porting.cancellation-denied.v1"),
])
async def test_a_topic_the_service_does_not_consume_is_refused_in_one_line_before_anything_is_written(
        settings, service, foreign, consumed):
    result = await porting_replay(settings, service, foreign)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert f"{service} does not consume '{foreign}'" in result.stderr and consumed in result.stderr
    assert await fetchval(settings.database_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0


async def test_options_that_contradict_each_other_or_a_partition_the_topic_lacks_are_refused(settings):
    await ensure_topics(settings, [settings.topic(REQUESTED)])
    both = await porting_replay(settings, "portability", REQUESTED, "--from-offset", "1", "--from-time", "2027-01-01")
    backwards = await porting_replay(settings, "portability", REQUESTED, "--from-time", "2027-01-02",
                                     "--to-time", "2027-01-01")
    not_a_time = await porting_replay(settings, "portability", REQUESTED, "--from-time", "yesterday")
    no_partition = await porting_replay(settings, "portability", REQUESTED, "--partition", "99")
    assert [r.exit_code for r in (both, backwards, not_a_time, no_partition)] == [1, 1, 1, 1]
    assert "give one" in both.stderr and "is not before" in backwards.stderr
    assert "not an ISO 8601 time" in not_a_time.stderr
    assert "has no partition 99" in no_partition.stderr
    assert all(r.stderr.count("\n") == 1 for r in (both, backwards, not_a_time, no_partition))


# --- the workflow, running --------------------------------------------------------------------------------

async def workflow_state(settings: ServiceSettings) -> dict[str, Any]:
    return {
        "requests": await rows(settings, "SELECT port_in_request_sid, status, revision FROM port_in_requests "
                                         "ORDER BY 1"),
        "numbers": await rows(settings, "SELECT port_in_request_sid, phone_number, status FROM port_in_numbers "
                                        "ORDER BY 1, 2"),
        "transitions": await rows(settings, "SELECT port_in_request_sid, cause_event_id, phone_number, status_from, "
                                            "status_to, kind FROM transitions ORDER BY id"),
        "inbox": await rows(settings, "SELECT event_source, event_id FROM inbox ORDER BY 1, 2"),
        "outbox": await rows(settings, "SELECT id, topic FROM outbox ORDER BY id"),
        "timers": await rows(settings, "SELECT kind, key FROM timers ORDER BY 1, 2"),
    }


async def test_the_running_workflow_sees_a_replay_as_already_seen_and_rebuilds_its_requests_from_one_after_a_restore(
        settings):
    requests = [port_requested(US_NUMBER) for _ in range(3)]
    sids = [r.port_in_request_sid for r in requests]
    topics = (REQUESTED, PortabilityChecked.event_type)
    # On the wall clock, as the replay's handlers are: timers it schedules are due when the service's would be.
    async with running_workflow(settings, MovableClock(datetime.now(UTC))):
        await publish(settings, [record(settings, r) for r in requests])
        await publish(settings, [record(settings, portability_answer(r)) for r in requests])

        async def all_submitted() -> bool:
            found = await rows(settings, "SELECT count(*) FROM port_in_numbers WHERE status = 'port_submitted' "
                                         "AND port_in_request_sid = ANY($1::text[])", sids)
            return found[0][0] == len(sids)

        await wait_until(all_submitted, what="every request submitted")
        await wait_until(lambda: outbox_at_rest(settings), what="every follow-up sent")
        follow_up_topics = [settings.topic(event_type) for event_type in WORKFLOW.publishes]
        first_sent = Counter(topic for topic, *_ in await records_on(settings, *follow_up_topics))
        before = await workflow_state(settings)
        again = [await replayed(settings, "workflow", topic) for topic in topics]
        unchanged = await workflow_state(settings)

        await execute(settings, "TRUNCATE port_in_requests, port_in_numbers, transitions, porting_fees, "
                                "parked_events, timers, inbox")
        rebuilt = [await replayed(settings, "workflow", topic) for topic in topics]  # in the order they came
        after = await workflow_state(settings)
        await wait_until(lambda: outbox_at_rest(settings), what="the re-queued follow-ups sent by the running service")
        sent = Counter(topic for topic, *_ in await records_on(settings, *follow_up_topics))
    assert [counts(r) for r in again] == [
        {"read": 3, "replayed": 3, "applied": 0, "already_seen": 3, "dead_lettered": 0}] * 2
    assert unchanged == before
    assert [counts(r)["applied"] for r in rebuilt] == [3, 3]
    assert after["requests"] == before["requests"] and after["numbers"] == before["numbers"]
    assert sorted(after["transitions"], key=repr) == sorted(before["transitions"], key=repr)
    assert after["timers"] == before["timers"]
    assert sent == first_sent + first_sent, "the same follow-ups queued again and sent by the running service"
    assert first_sent[settings.topic(PortSubmitted.event_type)] == 3
