"""asyncpg pool and per-service SQL migrations, applied at start under an advisory lock."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg

from .logs import get_logger

RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Released connections skip the reset query (a round trip per batch): no code of ours leaves
    session state behind (the relay's LISTEN and leadership lock live on their own connections,
    the outbox's locks are transaction-scoped), and asyncpg still rolls back an open transaction."""


# Every statement is planned for its own arguments and the tables as they are now. asyncpg
# prepares each statement once per connection, and PostgreSQL then caches a generic plan after
# five runs if it looks no dearer: chosen while a fresh database's tables are nearly empty (no
# ANALYZE yet), it kept a plan that walks the whole queue for every row as the table grew. The
# notifier's claim went from 0.2 to 30 ms, PostgreSQL to 5-6 ms of CPU a request, in one make
# bench run in three. Statements run once per batch, so planning each time costs little.
PLANNER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


async def create_pool(dsn: str, *, max_size: int = 5) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, command_timeout=60, reset=_keep_session,
                                     server_settings=PLANNER_SETTINGS)


async def connect(dsn: str) -> asyncpg.Connection:
    """A dedicated connection (a relay's leadership, a loop's LISTEN), set up like the pool's."""
    return await asyncpg.connect(dsn, command_timeout=60, server_settings=PLANNER_SETTINGS)


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def apply_migrations(pool: asyncpg.Pool, service: str, *directories: Path) -> list[str]:
    """Apply the runtime's migrations, then the service's, each file once, in name order.

    Instances starting together serialize on an advisory lock, so one applies and the
    others find the work done.
    """
    applied: list[str] = []
    async with pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock($1)", _lock_id(f"migrations:{service}"))
        try:
            await connection.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       name text PRIMARY KEY,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["name"] for r in await connection.fetch("SELECT name FROM schema_migrations")}
            for directory in (RUNTIME_MIGRATIONS, *directories):
                for path in sorted(directory.glob("*.sql")):
                    name = f"{directory.parent.name}/{path.name}"
                    if name in done:
                        continue
                    async with connection.transaction():
                        await connection.execute(path.read_text())
                        await connection.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                    applied.append(name)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", _lock_id(f"migrations:{service}"))
    if applied:
        log.info("migrations applied", migrations=applied)
    return applied


def advisory_lock_id(name: str) -> int:
    return _lock_id(name)
