"""Locks on a subject (the port-in request an event or a timer is about), held to the end of
the transaction: work on one request is serialized across partitions, instances and the timer
loop. Advisory locks, so nothing but this module's callers contends for them."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

# The namespace of these locks (the outbox's per-key locks use 42). The workflow took its
# request locks under 8 before they moved here: kept, so instances of both versions agree.
SUBJECT_LOCK_SEED = 8


async def lock_subjects(connection: asyncpg.Connection, subjects: Iterable[str]) -> None:
    """Wait for each subject's lock, in sorted order: two transactions cannot deadlock on them."""
    await connection.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(s, $2)) FROM unnest($1::text[]) AS s ORDER BY s",
        sorted(set(subjects)), SUBJECT_LOCK_SEED,
    )


async def try_lock_subjects(connection: asyncpg.Connection, subjects: Iterable[str]) -> set[str]:
    """The subjects whose locks could be had at once; the others are held by another transaction.
    Never waits, so taking them in any order, whatever else is held, can close no cycle."""
    rows = await connection.fetch(
        "SELECT s FROM unnest($1::text[]) AS s WHERE pg_try_advisory_xact_lock(hashtextextended(s, $2))",
        sorted(set(subjects)), SUBJECT_LOCK_SEED,
    )
    return {row["s"] for row in rows}
