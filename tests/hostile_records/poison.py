"""What the poison tests share: poison then good events on one partition, and checks of what
the ledger answered, committed, dead-lettered and restarted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .core import EVENT_TYPE, Hostile
from .mixing import fresh_good
from .publishing import KeptDeadLetter, Placed, end_offsets, publish_hostile


# --- what the poison tests share ----------------------------------------------------------------

ONE_PARTITION = b"one-partition"


async def poison_then_good(settings: Any, poison: Sequence[Hostile], *, good: int = 3, seed: int = 1,
                           key: bytes = ONE_PARTITION, timeout: float = 20) -> tuple[list[Placed], list[Placed]]:
    """Publish the poison, then `good` fresh events, all on one partition, to a running ledger;
    return (poison, good) where they landed once the good ones are answered and every record
    is committed."""
    from tests.kafka_support import wait_until

    records = [*(r.with_key(key) for r in poison), *fresh_good(seed, good, key=key)]
    placed = await publish_hostile(settings, settings.topic(EVENT_TYPE), records)
    assert len({p.partition for p in placed}) == 1
    subjects = {p.record.subject for p in placed[len(poison):]}
    assert await wait_until(lambda: answered_once(settings, subjects), timeout=timeout,
                            what="the good events behind the poison answered")
    assert await wait_until(lambda: consumed(settings, placed), timeout=timeout, what="every record committed")
    return placed[: len(poison)], placed[len(poison):]


async def effects_of(settings: Any, subjects: Sequence[str | None]) -> dict[str, int]:
    """How many effects the ledger recorded for each of these request sids (absent: none)."""
    import asyncpg

    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch(
            "SELECT request_sid, count(*) AS n FROM effects WHERE request_sid = ANY($1::text[]) GROUP BY 1",
            [s for s in subjects if s is not None])
    finally:
        await connection.close()
    return {row["request_sid"]: row["n"] for row in rows}


async def answered_once(settings: Any, subjects: set[str | None]) -> bool:
    return await effects_of(settings, list(subjects)) == dict.fromkeys(subjects, 1)


async def consumed(settings: Any, placed: Sequence[Placed]) -> bool:
    """The ledger's group committed every partition past these records."""
    from tests.kafka_support import committed_offsets

    offsets = await committed_offsets(settings, "ledger", placed[0].topic)
    return all((offsets.get(p) or 0) >= end for p, end in end_offsets(placed).items())


async def outbox_drained(settings: Any) -> bool:
    from tests.kafka_support import outbox_at_rest

    return await outbox_at_rest(settings)


def loop_restarts(loop: str) -> float:
    """How often the ledger's `loop` ("consumer", "outbox-relay") was restarted by its supervisor."""
    from porting_runtime import metrics

    return metrics.LOOP_RESTARTS.labels("ledger", loop)._value.get()  # noqa: SLF001


def undecodable_polls() -> float:
    """How often the ledger's Kafka client failed to decode a fetch."""
    from porting_runtime import metrics

    return metrics.PIPELINE_FAILURES.labels("ledger", "undecodable")._value.get()  # noqa: SLF001


def assert_kept_once_with_its_bytes(kept: Sequence[KeptDeadLetter], placed: Placed) -> None:
    rows = [row for row in kept if row.place == placed.place]
    assert len(rows) == 1, f"{placed.record.kind}: {len(rows)} dead letters"
    [row] = rows
    assert (row.key, row.value, row.headers) == (placed.record.key, placed.record.value, placed.record.header_bytes)
