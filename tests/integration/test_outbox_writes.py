"""The outbox keeps each follow-up exactly as written, in order: a small batch in one statement,
a large one by COPY; each test runs both ways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from porting_runtime import outbox
from porting_runtime.database import apply_migrations, create_pool
from porting_runtime.failures import classify
from porting_runtime.outbox import write_outbox
from schemas import KafkaRecord


@pytest.fixture(params=["one statement", "copy"], autouse=True)
def way_in(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(outbox, "COPY_FROM_ROWS", 10_000 if request.param == "one statement" else 1)
    return request.param


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """This test's database with the runtime's tables."""
    pool = await create_pool(database_url)
    try:
        await apply_migrations(pool, "runtime")
        yield pool
    finally:
        await pool.close()


async def test_each_follow_up_keeps_its_own_headers_and_its_place_in_line(pool):
    records = [
        KafkaRecord("t.one", b"k1", b"v1", [("ce_id", b"1"), ("ce_type", b"one")]),
        KafkaRecord("t.two", b"k2", b"v2", []),
        KafkaRecord("t.three", b"k1", b"v3", [("ce_id", b"3")]),
    ]
    async with pool.acquire() as connection, connection.transaction():
        await write_outbox(connection, records)
    rows = await pool.fetch("SELECT topic, key, value, header_names, header_values, sealed FROM outbox ORDER BY id")
    assert [(r["topic"], r["key"], r["value"], list(r["header_names"]), list(r["header_values"]), r["sealed"])
            for r in rows] == [
        ("t.one", b"k1", b"v1", ["ce_id", "ce_type"], [b"1", b"one"], False),
        ("t.two", b"k2", b"v2", [], [], False),
        ("t.three", b"k1", b"v3", ["ce_id"], [b"3"], False),
    ]


async def test_a_later_writer_of_a_key_gets_later_ids_than_one_that_committed_first(pool):
    """The ordering lock is taken before any id is drawn: a writer that waits for a key's lock draws
    its ids only after the holder committed, even though the holder wrote again meanwhile."""
    first = await pool.acquire()
    second = await pool.acquire()
    try:
        holding = first.transaction()
        await holding.start()
        await write_outbox(first, [KafkaRecord("t", b"same-key", b"first", [])])
        waiting = second.transaction()
        await waiting.start()
        blocked = asyncio.create_task(write_outbox(second, [KafkaRecord("t", b"same-key", b"second", [])]))
        await _until_waiting_on_a_lock(pool)
        assert not blocked.done(), "the second writer waits for the first one's key lock"
        await write_outbox(first, [KafkaRecord("t", b"same-key", b"first, again", [])])
        await holding.commit()
        await blocked
        await waiting.commit()
    finally:
        await pool.release(first)
        await pool.release(second)
    values = [r["value"] for r in await pool.fetch("SELECT value FROM outbox ORDER BY id")]
    assert values == [b"first", b"first, again", b"second"]


async def test_a_batch_wakes_the_relay_when_it_commits(pool, database_url):
    listener = await asyncpg.connect(database_url)
    woken = asyncio.Event()
    try:
        await listener.add_listener(outbox.NOTIFY_CHANNEL, lambda *_: woken.set())
        async with pool.acquire() as connection, connection.transaction():
            await write_outbox(connection, [KafkaRecord("t", b"k", b"v", [])])
            await listener.fetchval("SELECT 1")  # a notification sent by now would have come before this answer
            assert not woken.is_set(), "nothing to relay before the commit"
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await listener.close()


async def test_a_header_postgresql_cannot_hold_fails_the_batch_as_the_records_fault(pool):
    await _refused_as_the_records_fault(pool, KafkaRecord("t", b"k", b"v", [("nul\x00name", b"x")]),
                                        asyncpg.PostgresError)


async def test_a_large_batch_keeps_every_row_in_order(pool):
    records = [KafkaRecord(f"t.{i % 3}", f"k{i % 7}".encode(), f"v{i}".encode(),
                           [("ce_id", str(i).encode())] * (i % 3) + [("empty", None)] * (i % 2))
               for i in range(250)]
    async with pool.acquire() as connection, connection.transaction():
        await write_outbox(connection, records)
    rows = await pool.fetch("SELECT topic, key, value, header_names, header_values FROM outbox ORDER BY id")
    assert [(r["topic"], r["key"], r["value"], list(zip(r["header_names"], r["header_values"], strict=True)))
            for r in rows] == [(x.topic, x.key, x.value, x.headers) for x in records]


async def test_a_value_the_driver_cannot_encode_is_the_records_fault(pool):
    await _refused_as_the_records_fault(pool, KafkaRecord("t", b"k", b"v", [("ce_id", "text, not bytes")]),  # type: ignore[list-item]
                                        asyncpg.DataError)


async def test_a_large_and_a_small_writer_of_one_key_keep_commit_order(pool, monkeypatch):
    """The two ways in take the same ordering lock: a small batch waiting on a large one's key
    draws its ids after the large one committed."""
    monkeypatch.setattr(outbox, "COPY_FROM_ROWS", 2)
    large, small = await pool.acquire(), await pool.acquire()
    try:
        holding = large.transaction()
        await holding.start()
        await write_outbox(large, [KafkaRecord("t", b"same-key", b"large 1", []),
                                   KafkaRecord("t", b"other", b"large 2", [])])
        waiting = small.transaction()
        await waiting.start()
        blocked = asyncio.create_task(write_outbox(small, [KafkaRecord("t", b"same-key", b"small", [])]))
        await _until_waiting_on_a_lock(pool)
        await write_outbox(large, [KafkaRecord("t", b"same-key", b"large 3", []),
                                   KafkaRecord("t", b"same-key", b"large 4", [])])
        await holding.commit()
        await blocked
        await waiting.commit()
    finally:
        await pool.release(large)
        await pool.release(small)
    values = [r["value"] for r in await pool.fetch("SELECT value FROM outbox ORDER BY id")]
    assert values == [b"large 1", b"large 2", b"large 3", b"large 4", b"small"]


async def _refused_as_the_records_fault(pool: asyncpg.Pool, record: KafkaRecord,
                                        error: type[asyncpg.PostgresError]) -> None:
    with pytest.raises(error) as failure:
        async with pool.acquire() as connection, connection.transaction():
            await write_outbox(connection, [record])
    assert classify(failure.value) == "record"
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def _until_waiting_on_a_lock(pool: asyncpg.Pool, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"):
            await asyncio.sleep(0.01)
