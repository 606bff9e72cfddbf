"""Durable timers: rows in the service's own database, written inside a unit of work.

A timer is (kind, key): at most one is pending per pair, and scheduling again moves it.
`timer_loop.py` fires them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from schemas import EventAttributes
from schemas.tracing import new_traceparent

from .statement import Writes

if TYPE_CHECKING:
    from .unit_of_work import UnitOfWork

NOTIFY_CHANNEL = "timer_scheduled"


@dataclass(frozen=True)
class DueTimer:
    id: int
    kind: str
    key: str
    due_at: datetime
    data: dict[str, Any]
    # The trace of the event that scheduled it: what a timer publishes continues that trace.
    traceparent: str | None


    def cause(self, service: str) -> EventAttributes:
        """The timer as the cause of what its handler publishes: it continues the trace of the
        event that scheduled it."""
        return EventAttributes(id=f"timer-{self.id}", source=f"{service}/timers", type=f"timer.{self.kind}",
                               subject=self.key, time=self.due_at, traceparent=self.traceparent or new_traceparent())


TimerHandler = Callable[[Sequence[DueTimer], "UnitOfWork"], Awaitable[None]]


@dataclass(frozen=True)
class TimerRoute:
    kind: str
    handler: TimerHandler
    # The subject whose lock (subject_locks.py) the handler takes, when it takes one: the loop
    # leaves a timer whose subject a consumer's batch holds for its next pass (timer_loop.py).
    subject: Callable[[DueTimer], str | None] | None = None


@dataclass
class TimerChanges:
    """Schedules and cancels queued by a unit of work; the last word on each (kind, key) wins."""

    _final: dict[tuple[str, str], tuple[datetime, dict[str, Any], str | None] | None] = field(default_factory=dict)

    def schedule(self, kind: str, key: str, due_at: datetime, data: dict[str, Any], traceparent: str | None) -> None:
        if due_at.tzinfo is None:
            raise ValueError("a timer's due_at must carry its time zone")
        self._final[(kind, key)] = (due_at, data, traceparent)

    def cancel(self, kind: str, keys: Iterable[str]) -> None:
        for key in keys:
            self._final[(kind, key)] = None

    def __bool__(self) -> bool:
        return bool(self._final)


_CHANGES = """
cancelled AS (
    DELETE FROM timers t USING unnest($1::text[], $2::text[]) AS c(kind, key)
    WHERE t.kind = c.kind AND t.key = c.key AND t.failed_at IS NULL),
scheduled AS (
    INSERT INTO timers (kind, key, due_at, data, traceparent)
    SELECT * FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::text[])
    ON CONFLICT (kind, key) WHERE failed_at IS NULL
    DO UPDATE SET due_at = EXCLUDED.due_at, data = EXCLUDED.data,
                  traceparent = EXCLUDED.traceparent, scheduled_at = now()
    RETURNING due_at)
"""
# Names the earliest new due time (epoch seconds): a timer loop sleeping past it wakes, the
# others sleep on (a request's SLA timers are days away; see timer_loop.py).
_WAKE_UP = "(SELECT pg_notify($8, extract(epoch FROM min(due_at))::text) FROM scheduled HAVING count(*) > 0)"


def timer_writes(changes: TimerChanges) -> Writes | None:
    """The cancels, the schedules and the wake-up as one part of a statement
    (`statement.one_statement`), whatever their number; None when there are none. A (kind, key)
    is either cancelled or scheduled here, never both (TimerChanges keeps the final word), so
    the two parts never touch the same row."""
    if not changes:
        return None
    cancels = [(kind, key) for (kind, key), value in changes._final.items() if value is None]  # noqa: SLF001
    schedules = [(kind, key, *value) for (kind, key), value in changes._final.items() if value is not None]  # noqa: SLF001
    return Writes(_CHANGES, [
        [k for k, _ in cancels], [k for _, k in cancels],
        [s[0] for s in schedules], [s[1] for s in schedules], [s[2] for s in schedules],
        [json.dumps(s[3], default=str) for s in schedules], [s[4] for s in schedules], NOTIFY_CHANNEL,
    ], result=_WAKE_UP)


async def pending_timers(connection: asyncpg.Connection, *, kind: str | None = None, key: str | None = None,
                         key_prefix: str | None = None, limit: int = 1000) -> list[asyncpg.Record]:
    """Pending timers soonest first, then the ones that failed for good."""
    return await connection.fetch(
        """SELECT id, kind, key, due_at, data, scheduled_at, failed_at, error FROM timers
           WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR key = $2)
             AND ($3::text IS NULL OR starts_with(key, $3))
           ORDER BY failed_at IS NOT NULL, due_at LIMIT $4""",
        kind, key, key_prefix, limit,
    )
