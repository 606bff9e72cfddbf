"""Stored event copies are purged after their retention, and rows from before sealing get sealed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from porting_runtime.database import RUNTIME_MIGRATIONS
from porting_runtime.dead_letter_retention import purge_expired, seal_legacy_dead_letters
from porting_runtime.dead_letters import get_dead_letter, record_dead_letters, redrive
from porting_runtime.sealing import Sealer, generate_key
from porting_runtime.settings import ServiceSettings

from .dead_letters_support import ACCOUNT_NUMBER, DLT, PIN, SOURCE, migrated, record, secret_payload

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


async def test_purge_removes_dead_letters_past_their_retention_and_sent_outbox_rows_but_never_a_waiting_one(
        database_url):
    settings = ServiceSettings(dead_letter_retention_days=30)
    async with migrated(database_url) as connection:
        await connection.executemany(
            """INSERT INTO dead_letters (consumer, source_topic, source_partition, source_offset, content_hash,
                                         header_names, header_values, error, dead_lettered_at)
               VALUES ('tests', 't', 0, $1, '\\x00', '{}', '{}', 'e', $2)""",
            [(1, NOW - timedelta(days=31)), (2, NOW - timedelta(days=29)), (3, NOW)],
        )
        await connection.executemany(
            """INSERT INTO outbox (topic, header_names, header_values, created_at, sent_at, set_aside_at)
               VALUES ($1, '{}', '{}', $2, $3, $4)""",
            [("sent by an earlier version", NOW - timedelta(days=3), NOW - timedelta(hours=25), None),
             ("sent a moment ago by an earlier version", NOW, NOW, None),
             ("old unsent", NOW - timedelta(days=90), None, None),
             ("set aside", NOW - timedelta(days=90), None, NOW - timedelta(days=89))],
        )

        purged = await purge_expired(connection, settings, now=NOW)

        assert (purged.dead_letters, purged.sent_outbox_rows) == (1, 2)
        assert [r["source_offset"] for r in await connection.fetch(
            "SELECT source_offset FROM dead_letters ORDER BY 1")] == [2, 3]
        assert [r["topic"] for r in await connection.fetch("SELECT topic FROM outbox ORDER BY id")] == [
            "old unsent", "set aside"]
        assert await purge_expired(connection, settings, now=NOW) == purged.__class__(0, 0)


async def test_purge_by_default_measures_age_with_the_databases_clock(database_url):
    settings = ServiceSettings(dead_letter_retention_days=1)
    async with migrated(database_url) as connection:
        sealer = Sealer([generate_key()])
        async with connection.transaction():
            await record_dead_letters(connection, consumer="tests", dead_letter_topic=DLT, sealer=sealer,
                                      failures=[(record(0), "bad"), (record(1), "bad")], max_message_bytes=1_000_000)
        await connection.execute("UPDATE dead_letters SET dead_lettered_at = now() - interval '2 days' "
                                 "WHERE source_offset = 0")
        assert (await purge_expired(connection, settings)).dead_letters == 1
        assert await connection.fetchval("SELECT source_offset FROM dead_letters") == 1


async def test_dead_letters_kept_in_clear_before_the_upgrade_survive_it_and_are_then_sealed(database_url):
    connection = await asyncpg.connect(database_url)
    try:
        # The schema as it was: only the first runtime migration applied, one clear dead letter.
        await connection.execute("CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz "
                                 "NOT NULL DEFAULT now())")
        await connection.execute((RUNTIME_MIGRATIONS / "001_runtime.sql").read_text())
        await connection.execute("INSERT INTO schema_migrations (name) VALUES ('porting_runtime/001_runtime.sql')")
        await connection.execute(
            """INSERT INTO dead_letters (consumer, source_topic, source_partition, source_offset, key, value,
                                         header_names, header_values, error, event_id)
               VALUES ('tests', $1, 0, 4, 'KW1', $2, '{ce_id,traceparent}', $3, 'old reason', 'e4')""",
            SOURCE, secret_payload(), [b"e4", b"00-tp"],
        )
        await connection.execute("INSERT INTO outbox (topic, header_names, header_values, sent_at) "
                                 "VALUES ('sent before', '{}', '{}', now())")
    finally:
        await connection.close()

    sealer = Sealer([generate_key()])
    async with migrated(database_url) as connection:  # applies the migrations since
        assert await connection.fetchval("SELECT count(*) FROM outbox") == 0  # sent history may hold clear copies
        before = await get_dead_letter(connection, 1, sealer)
        assert before.value == secret_payload() and before.headers == [(b"ce_id", b"e4"), (b"traceparent", b"00-tp")]

        assert await seal_legacy_dead_letters(connection, sealer) == 1
        assert await seal_legacy_dead_letters(connection, sealer) == 0

        row = await connection.fetchrow("SELECT value, header_values, sealed FROM dead_letters")
        assert row["sealed"] and PIN.encode() not in row["value"] and ACCOUNT_NUMBER.encode() not in row["value"]
        assert row["header_values"][0] != b"e4" and sealer.unseal(row["header_values"][0]) == b"e4", \
            "the header value sealed"  # (not "e4 nowhere in the token": 3% of tokens hold it by chance)
        after = await get_dead_letter(connection, 1, sealer)
        assert (after.value, after.headers, after.error) == (before.value, before.headers, "old reason")
        assert (await redrive(connection, [1], sealer)).ids == [1]
        # The old row's place, with new content, is a new dead letter, not a conflict.
        async with connection.transaction():
            stored = await record_dead_letters(connection, consumer="tests", dead_letter_topic=DLT, sealer=sealer,
                                               failures=[(record(4, b"new"), "bad")], max_message_bytes=1_000_000)
        assert stored == [True]
