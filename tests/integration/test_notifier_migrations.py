"""The notifier's schema changes reach a database that ran an earlier shape of its migrations."""

from __future__ import annotations

import asyncpg

from notifier.service import NOTIFIER
from porting_runtime.database import apply_migrations, create_pool


async def _indexes(pool: asyncpg.Pool) -> dict[str, str]:
    rows = await pool.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'notifications'")
    return {r["indexname"]: r["indexdef"] for r in rows}


async def _indexes_after_the_migrations(settings) -> dict[str, str]:
    pool = await create_pool(settings.database_url)
    try:
        await apply_migrations(pool, "notifier", NOTIFIER.migrations)
        return await _indexes(pool)
    finally:
        await pool.close()


async def test_the_pending_gauges_index_is_keyed_by_ready_time_alone_after_the_migrations(settings):
    indexes = await _indexes_after_the_migrations(settings)
    assert "notifications_unfinished" not in indexes, "001's first shape is gone"
    assert "(ready_at)" in indexes["notifications_unfinished_since"]


async def test_a_database_whose_first_migration_already_had_the_new_index_migrates_without_error(settings):
    pool = await create_pool(settings.database_url)
    try:
        await apply_migrations(pool, "notifier", NOTIFIER.migrations)
        # As a database that ran 001 while it briefly carried the new index itself: 002 not yet applied.
        forgotten = await pool.execute("DELETE FROM schema_migrations WHERE name LIKE '%002_unfinished_since_index.sql'")
        assert forgotten == "DELETE 1"
        await apply_migrations(pool, "notifier", NOTIFIER.migrations)
        indexes = await _indexes(pool)
    finally:
        await pool.close()
    assert "notifications_unfinished" not in indexes
    assert "(ready_at)" in indexes["notifications_unfinished_since"]


async def test_the_senders_queue_has_one_index_for_pending_rows_and_one_for_leases_after_the_migrations(settings):
    indexes = await _indexes_after_the_migrations(settings)
    assert "notifications_to_send" not in indexes, "001's queue index, pending and sending mixed, is gone"
    assert "(channel, seq) WHERE (state = 'pending'::text)" in indexes["notifications_pending"]
    assert "(channel, lease_until) WHERE (state = 'sending'::text)" in indexes["notifications_leased"]
