"""A hostile upstream against the ledger (a small service on the shared runtime), on the real
broker and PostgreSQL: over a thousand records that can never be events, of every kind in
tests/hostile_records/, published among valid events (some odd) on every partition.

Every valid event is answered exactly once (one effect, one PortAlertRaised); every bad record
is dead-lettered exactly once with its original bytes (sealed at rest, opened with the test
key) and published once to the dead-letter topic; nothing stays stuck; a good event published
afterwards is answered within seconds. Then the same again after the broker restarts from
offset zero under the same database: the same bytes in the same places are new records, and
none of their dead letters is dropped.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from porting_cli.embedded import EmbeddedKafka, free_port
from porting_runtime import RunningService, ServiceSettings
from porting_runtime.secret_fields import topic_copy
from schemas import ContractViolation, PortAlertRaised, decode, dead_letter_topic
from schemas.tracing import is_valid_traceparent

from ..hostile_records import (
    KINDS,
    REJECTED_CUSTOMER,
    Hostile,
    Placed,
    consumed,
    fresh_good,
    kept_dead_letters,
    make,
    mix,
    loop_restarts,
    name_bytes,
    outbox_drained,
    publish_hostile,
)
from .ledger import collect, fetchval, running, wait_until

TOPIC = "porting.port-requested.v1"
BAD, GOOD = 1000, 150
SEED = 20261123


# --- the generator is what it says ----------------------------------------------------------------

def test_the_mix_holds_over_a_thousand_bad_records_of_over_forty_kinds_between_good_events():
    records = mix(bad=BAD, good=GOOD, seed=SEED)
    bad = [r for r in records if not r.answered]
    assert len(bad) >= 1000
    assert len({r.kind for r in bad}) >= 40
    assert {r.category for r in bad} >= {"encoding", "json", "size", "nesting", "number", "date", "id", "header", "rule"}
    assert len({r.subject for r in records if r.answered}) >= GOOD
    first_bad, last_bad = records.index(bad[0]), records.index(bad[-1])
    assert any(r.answered for r in records[first_bad:last_bad]), "good events sit between the bad ones"


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kinds_expected_outcome_is_the_contracts_own_verdict(name):
    """A bad kind fails the contract's decoder (or the ledger's one rule); an answered kind passes."""
    for seed in range(8):  # some kinds pick among variants
        for record in make(name, seed=seed):
            assert _verdict(record) == record.answered, _why(record)


def _verdict(record: Hostile) -> bool:
    if record.unreadable:
        return False  # the client library cannot even read it
    try:
        event = decode(list(record.headers), record.value, expected_type=TOPIC)
    except ContractViolation:
        return False
    return event.data.losing_carrier_information.customer_name != REJECTED_CUSTOMER


def _why(record: Hostile) -> str:
    try:
        decode(list(record.headers), record.value, expected_type=TOPIC)
    except ContractViolation as violation:
        return f"{record.kind}: {violation}"
    return f"{record.kind}: decodes"


@pytest.mark.parametrize("time", [
    "2026-11-02T09:30:00",  # no offset: RFC 3339 requires one
    "20261102T093000Z",  # ISO 8601 basic format
    "2026-W45-1T09:30:00Z",  # ISO week date
    "2026-306T09:30:00Z",  # ISO ordinal date
    "2026-11-02T09:30:00+05:00:00:00",  # an offset with seconds, and more
])
def test_a_ce_time_that_is_iso_8601_but_not_rfc_3339_is_a_contract_violation(time):
    [record] = make("plain_good_event")
    headers = [(n, time.encode() if n == "ce_time" else v) for n, v in record.headers]
    with pytest.raises(ContractViolation, match="RFC 3339"):
        decode(headers, record.value, expected_type=TOPIC)


# --- one storm, read by the tests below -------------------------------------------------------------

@dataclass
class Storm:
    settings: ServiceSettings
    service: RunningService
    placed: list[Placed]
    restarts_before: dict[str, float]

    @property
    def bad(self) -> list[Placed]:
        return [p for p in self.placed if not p.record.answered]

    @property
    def subjects(self) -> set[str]:
        return {p.record.subject for p in self.placed if p.record.answered}  # type: ignore[misc]


@pytest.fixture(scope="module")
async def storm(module_settings):
    settings = module_settings
    records = mix(bad=BAD, good=GOOD, seed=SEED)
    restarts = {loop: loop_restarts(loop) for loop in LOOPS}
    async with running(settings) as service:
        placed = await publish_hostile(settings, settings.topic(TOPIC), records)
        await _all_consumed(settings, placed, timeout=150)
        with contextlib.suppress(TimeoutError):  # the tests that need it then wait briefly
            await wait_until(lambda: outbox_drained(settings), timeout=30)
        yield Storm(settings, service, placed, restarts)


LOOPS = ("consumer", "outbox-relay")


async def _all_consumed(settings: ServiceSettings, placed: Sequence[Placed], *, timeout: float) -> None:
    """Every record consumed and committed: the counts read afterwards are final."""
    assert await wait_until(lambda: consumed(settings, placed), timeout=timeout, interval=0.5,
                            what="every record committed")


async def test_every_good_event_has_exactly_one_effect(storm):
    effects = await _effects(storm.settings)
    assert effects == {subject: 1 for subject in storm.subjects}


async def test_every_good_event_is_followed_up_exactly_once_and_a_broken_trace_starts_a_new_one(storm):
    assert await wait_until(lambda: outbox_drained(storm.settings), timeout=5, what="outbox drained")
    follow_ups = await collect(storm.settings, storm.settings.topic(PortAlertRaised.event_type),
                               expect=len(storm.subjects), settle=1.0)
    per_subject = Counter(dict(f.headers)["ce_subject"].decode() for f in follow_ups)
    assert per_subject == Counter({subject: 1 for subject in storm.subjects})
    assert all(is_valid_traceparent(dict(f.headers)["traceparent"].decode()) for f in follow_ups)


async def test_every_bad_record_is_dead_lettered_exactly_once_with_its_original_bytes(storm):
    kept = await kept_dead_letters(storm.settings)
    _assert_kept_exactly(kept, storm.bad)


async def test_no_dead_letter_holds_the_events_content_in_clear(storm):
    kept = await kept_dead_letters(storm.settings)
    for row in kept:
        for stored in (row.raw_value, *row.raw_header_values):
            assert stored is None or b"Ada Lovelace" not in stored, f"dead letter {row.id} is not sealed"


async def test_every_dead_letter_is_published_once_and_one_too_large_for_the_broker_is_published_cut(storm):
    settings = storm.settings
    assert await wait_until(lambda: outbox_drained(settings), timeout=5, what="outbox drained")
    published = await collect(settings, settings.topic(dead_letter_topic("ledger")), expect=len(storm.bad),
                              settle=1.0, timeout=60)
    _assert_published_exactly(published, storm.bad)


async def test_no_outbox_row_is_set_aside_or_left_unsent(storm):
    assert await wait_until(lambda: outbox_drained(storm.settings), timeout=5, what="outbox drained")
    assert await fetchval(storm.settings.database_url, "SELECT count(*) FROM outbox WHERE set_aside_at IS NOT NULL") == 0


async def test_no_loop_of_the_service_failed_or_restarted_during_the_storm(storm):
    assert await wait_until(lambda: outbox_drained(storm.settings), timeout=5, what="outbox drained")
    assert {loop: loop_restarts(loop) for loop in LOOPS} == storm.restarts_before


async def test_a_good_event_published_after_the_storm_is_answered_within_seconds(storm):
    settings = storm.settings
    # Behind the records the client library could not read, on their very partition.
    behind = next(p for p in storm.placed if p.record.kind == "header_name_that_is_not_utf8")
    [final] = fresh_good(SEED + 1, 1, key=behind.record.key)
    [placed] = await publish_hostile(settings, settings.topic(TOPIC), [final])
    assert placed.partition == behind.partition
    assert await wait_until(lambda: _answered(settings, final.subject), timeout=10, what="final event answered")


# --- the same after the broker restarts from offset zero -------------------------------------------

async def test_after_a_broker_restart_under_the_same_database_no_dead_letter_is_dropped_and_each_event_answered_once(settings, tmp_path):
    # The broker of this test alone, so it can be restarted: the new one starts every offset at
    # zero again while PostgreSQL keeps its rows.
    port = free_port()
    broker = EmbeddedKafka(port=port, log_file=tmp_path / "kafka-1.log").start()
    settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
    topic = settings.topic(TOPIC)
    # Keys by position: publishing the same mix again puts the same bytes in the same places.
    keys = [f"key-{i}".encode() for i in range(12)]
    try:
        before = mix(bad=300, good=50, seed=SEED + 2, keys=keys)
        async with running(settings):
            first = await publish_hostile(settings, topic, before)
            await _all_consumed(settings, first, timeout=90)
        first_bad = [p for p in first if not p.record.answered]
        assert await fetchval(settings.database_url, "SELECT count(*) FROM dead_letters") == len(first_bad)
        watermark = await fetchval(settings.database_url, "SELECT max(id) FROM dead_letters")

        broker.stop()
        broker = EmbeddedKafka(port=port, log_file=tmp_path / "kafka-2.log").start()
        # The same bytes again (new records in the new broker, in the same places), then fresh
        # events behind them on every partition.
        again = [*mix(bad=300, good=50, seed=SEED + 2, keys=keys),
                 *[r.with_key(keys[i % len(keys)]) for i, r in enumerate(fresh_good(SEED + 3, 24))]]
        async with running(settings):
            second = await publish_hostile(settings, topic, again)
            await _all_consumed(settings, second, timeout=90)
            second_bad = [p for p in second if not p.record.answered]
            assert [p.place for p in second_bad] == [p.place for p in first_bad], "the same places again"

            _assert_kept_exactly(await kept_dead_letters(settings, after_id=watermark), second_bad)
            assert await fetchval(settings.database_url, "SELECT count(*) FROM dead_letters") == len(first_bad) + len(second_bad)
            # The replayed events were answered before the restart: not again. The fresh ones once.
            subjects = {p.record.subject for p in (*first, *second) if p.record.answered}
            assert await _effects(settings) == {subject: 1 for subject in subjects}

            assert await wait_until(lambda: outbox_drained(settings), what="outbox drained")
            published = await collect(settings, settings.topic(dead_letter_topic("ledger")),
                                      expect=len(second_bad), settle=1.0)
            _assert_published_exactly(published, second_bad)
            fresh = {r.subject for r in again[len(again) - 24:]}
            follow_ups = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=len(fresh), settle=1.0)
            assert Counter(dict(f.headers)["ce_subject"].decode() for f in follow_ups) == Counter(dict.fromkeys(fresh, 1))
    finally:
        broker.stop()


# --- checks -------------------------------------------------------------------------------------

def _assert_kept_exactly(kept: Sequence[Any], bad: Sequence[Placed]) -> None:
    by_place: dict[tuple[str, int, int], list[Any]] = {}
    for row in kept:
        by_place.setdefault(row.place, []).append(row)
    assert {place for place, rows in by_place.items() if len(rows) > 1} == set(), "dead-lettered twice"
    missing = [(p.record.kind, p.place) for p in bad if p.place not in by_place]
    assert missing == [], "bad records not dead-lettered"
    extra = set(by_place) - {p.place for p in bad}
    assert extra == set(), "records dead-lettered that are valid events"
    for item in bad:
        [row] = by_place[item.place]
        record = item.record
        if record.unreadable:  # the client library could not read it: its bytes if they could be had
            assert "could not decode" in row.error, record.kind
            if not row.original_kept:
                assert (row.key, row.value, row.headers) == (None, None, []), record.kind
                continue
        assert row.original_kept, record.kind
        assert row.key == record.key, record.kind
        assert row.value == record.value, record.kind
        assert row.headers == record.header_bytes, record.kind


def _assert_published_exactly(published: Sequence[Any], bad: Sequence[Placed]) -> None:
    def place(message: Any) -> tuple[str, int, int]:
        headers = dict(message.headers)
        return (headers["dlt_source_topic"].decode(), int(headers["dlt_source_partition"]),
                int(headers["dlt_source_offset"]))

    copies = Counter(place(m) for m in published)
    assert {p for p, n in copies.items() if n > 1} == set(), "a dead letter published twice"
    assert set(copies) == {p.place for p in bad}
    originals = {p.place: p.record for p in bad}
    cut = 0
    for message in published:
        record = originals[place(message)]
        headers = dict(message.headers)
        if record.unreadable and "dlt_original_unavailable" in headers:
            continue
        if record.unreadable:  # its header names go out escaped (Kafka header names are strings)
            assert message.value == topic_copy(record.value)[0], record.kind
            continue
        if "dlt_truncated" in headers:
            cut += 1
            assert record.value is not None
            assert message.value == topic_copy(record.value)[0][: len(message.value)]
            continue
        if record.key is None and record.value is None:  # Kafka needs one of them: any empty one will do
            assert not message.key and not message.value
        else:
            assert message.value == topic_copy(record.value)[0], record.kind  # DESIGN 9
        kept = [(name_bytes(n), v) for n, v in message.headers if not n.startswith("dlt_")]
        assert kept == record.header_bytes, record.kind
    too_large = [p for p in bad if p.record.kind == "value_just_under_one_mib"]
    assert cut == len(too_large) > 0, "exactly the dead letters over the broker's limit are cut"


async def _effects(settings: ServiceSettings) -> dict[str, int]:
    import asyncpg

    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch("SELECT request_sid, count(*) AS n FROM effects GROUP BY request_sid")
    finally:
        await connection.close()
    return {row["request_sid"]: row["n"] for row in rows}


async def _answered(settings: ServiceSettings, subject: str | None) -> bool:
    return await fetchval(settings.database_url, "SELECT count(*) FROM effects WHERE request_sid = $1", subject) == 1
