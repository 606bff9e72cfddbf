"""Findings 1 and 8 of issue 6, one poison each, followed by good events on its very partition:
the poison is dead-lettered once with its original bytes, the good events behind it are
answered once, and the consumer never restarts. Dedupe is on (ce_source, ce_id).

One ledger serves the whole module; each test publishes on its own key and reads only its own
records. (Findings 2 and 9: test_poison_undecodable_and_oversized.py; finding 3:
test_poison_broker_restart.py; every kind at once: test_hostile_input.py.)
"""

from __future__ import annotations

import pytest

from schemas import PortAlertRaised

from ..hostile_records import (
    assert_kept_once_with_its_bytes,
    effects_of,
    kept_dead_letters,
    loop_restarts,
    make,
    outbox_drained,
    poison_then_good,
)
from .ledger import collect, fetchval, running, wait_until


@pytest.fixture(scope="module")
async def ledger(module_settings):
    async with running(module_settings):
        yield module_settings


FINDING_ONE = [
    "ce_id_with_a_null_value",
    "ce_id_holding_a_nul",
    "header_name_holding_a_nul_on_a_bad_event",
    "ce_id_under_a_name_holding_a_nul",
    "ce_id_of_8000_characters",
]


@pytest.mark.parametrize("kind", FINDING_ONE)
async def test_the_poison_is_dead_lettered_once_with_its_bytes_and_the_good_events_behind_it_are_answered(ledger, kind):
    consumer_restarts = loop_restarts("consumer")
    [bad], good = await poison_then_good(ledger, make(kind, seed=11), key=kind.encode())
    kept = await kept_dead_letters(ledger)

    assert_kept_once_with_its_bytes(kept, bad)
    assert not {p.place for p in good} & {row.place for row in kept}
    assert await effects_of(ledger, [g.record.subject for g in good]) == {g.record.subject: 1 for g in good}
    assert loop_restarts("consumer") == consumer_restarts


async def test_every_finding_one_poison_at_once_on_one_partition_costs_only_itself(ledger):
    poison = [r for kind in FINDING_ONE for r in make(kind, seed=12)]
    bad, good = await poison_then_good(ledger, poison, good=5, key=b"all-of-finding-one")
    kept = await kept_dead_letters(ledger)

    for placed in bad:
        assert_kept_once_with_its_bytes(kept, placed)
    assert not {p.place for p in good} & {row.place for row in kept}
    assert await effects_of(ledger, [g.record.subject for g in good]) == {g.record.subject: 1 for g in good}


async def test_the_same_ce_id_from_another_source_is_another_event_and_both_are_answered_and_followed_up(ledger):
    first, second = make("same_ce_id_from_another_source", seed=13)
    assert dict(first.headers)["ce_id"] == dict(second.headers)["ce_id"]
    assert dict(first.headers)["ce_source"] != dict(second.headers)["ce_source"]
    both, good = await poison_then_good(ledger, [first, second], key=b"same-id")
    subjects = [p.record.subject for p in (*both, *good)]

    assert await effects_of(ledger, subjects) == dict.fromkeys(subjects, 1)
    assert not {p.place for p in both} & {row.place for row in await kept_dead_letters(ledger)}
    assert await wait_until(lambda: outbox_drained(ledger), what="outbox drained")
    every_effect = await fetchval(ledger.database_url, "SELECT count(*) FROM effects")
    follow_ups = await collect(ledger, ledger.topic(PortAlertRaised.event_type), expect=every_effect, settle=0.5)
    mine = [dict(f.headers)["ce_subject"].decode() for f in follow_ups]
    assert sorted(s for s in mine if s in subjects) == sorted(subjects)


async def test_the_same_ce_id_from_the_same_source_is_a_duplicate_answered_once(ledger):
    first, again = make("exact_duplicate_of_an_event", seed=14)
    both, good = await poison_then_good(ledger, [first, again], key=b"duplicate")

    assert await effects_of(ledger, [first.subject]) == {first.subject: 1}
    assert not {p.place for p in both} & {row.place for row in await kept_dead_letters(ledger)}
