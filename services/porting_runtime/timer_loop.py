"""Fires due timers, each exactly once, into the handler registered for its kind.

Due timers are claimed with `FOR UPDATE SKIP LOCKED`, so instances share the work; a fired
timer is deleted in the same transaction as its handler's state change and follow-ups, so a
crash before the commit fires it again and a commit fires it never again. The loop sleeps
until the nearest due time, and wakes early on NOTIFY when a timer was written due before it
would have woken (the NOTIFY names the earliest new due time), or when a test moves the clock.
A timer whose handler fails for good is set aside with its error.

A timer with a subject (its request) is fired only by a pass that could take the subject's lock
at once, before the timer's row: the order a consumer's batch takes them in (the request, then
the timers it cancels or moves). One whose subject another transaction holds is left for a
later pass. Rows first, a pass waited for the subject while holding the timer's row, and a batch
cancelling that timer waited for the row (as did another instance's handler): PostgreSQL broke
the cycle after deadlock_timeout (1 s) by failing one of them, a whole batch at times.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from . import metrics
from .consumer import UnitOptions
from .database import connect
from .failures import EventRejected, classify, describe
from .health import ProgressBoard
from .logs import get_logger, timer_context
from .subject_locks import try_lock_subjects
from .timers import NOTIFY_CHANNEL, DueTimer, TimerRoute

log = get_logger(__name__)
LOCKED_RETRY_SECONDS = 0.2
DUE_MEASURE_INTERVAL = 5.0  # seconds between two counts of the due timers, for /metrics


class TimerLoop:
    def __init__(self, *, service: str, pool: asyncpg.Pool, database_url: str, routes: Sequence[TimerRoute],
                 unit_options: UnitOptions, board: ProgressBoard, poll_interval: float = 5.0,
                 batch_size: int = 500) -> None:
        self.service, self.pool, self.database_url = service, pool, database_url
        self.routes: dict[str, TimerRoute] = {}
        for route in routes:
            if route.kind in self.routes:
                raise ValueError(f"{service}: two timer routes for {route.kind!r}")
            self.routes[route.kind] = route
        self.unit_options, self.board = unit_options, board
        self.clock = unit_options.clock
        self.poll_interval, self.batch_size = poll_interval, batch_size
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._due_measured_at = float("-inf")
        # When the loop next looks (None: it is looking now), and the earliest due time NOTIFY
        # named since the loop last asked the database. The workflow schedules timers days
        # ahead with nearly every batch: waking for each cost two queries a batch for nothing.
        self._planned_wake: datetime | None = None
        self._notified_due: datetime | None = None
        self._claimed_up_to: datetime | None = None  # the last pass claimed what was due by then
        self.clock.subscribe(self._wake)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        listener = await connect(self.database_url)
        try:
            await listener.add_listener(NOTIFY_CHANNEL, self._timer_scheduled)
            while not self._stop.is_set():
                self._wake.clear()
                self._planned_wake = None
                due, fired = await self._pass()
                await self._measure_due_now_and_then()
                if due < self.batch_size or not fired:  # none fired: all held elsewhere, look again shortly
                    await self._sleep_until_next()
        finally:
            with contextlib.suppress(Exception):
                await listener.close()

    async def fire_due(self) -> int:
        """Fire one batch of due timers; returns how many were fired (or set aside)."""
        return (await self._pass())[1]

    async def _pass(self) -> tuple[int, int]:
        """One batch: how many were due (up to the batch size) and how many of them were fired."""
        now = self._claimed_up_to = self.clock.now()
        try:
            async with self.pool.acquire() as connection, connection.transaction():
                due = [_due_timer(row) for row in await connection.fetch(
                    """SELECT id, kind, key, due_at, data, traceparent FROM timers
                       WHERE due_at <= $1 AND failed_at IS NULL ORDER BY due_at, id LIMIT $2""",
                    now, self.batch_size)]
                if not due:
                    self.board.progressed("timers", waiting=0)
                    return 0, 0
                # The subjects first, then the rows: the order a consumer's batch takes them in.
                free, held = await self._subjects_free(due, connection)
                # Read again under their locks, as they are now: a timer moved later or cancelled
                # since it was read is not fired, one another instance is firing is skipped, and
                # one whose subject changed meanwhile waits too. What is left is looked at again
                # shortly (_sleep_until_next).
                timers = [timer for timer in (_due_timer(row) for row in await connection.fetch(
                    """SELECT id, kind, key, due_at, data, traceparent FROM timers
                       WHERE id = ANY($1::bigint[]) AND due_at <= $2 AND failed_at IS NULL
                       ORDER BY due_at, id FOR UPDATE SKIP LOCKED""",
                    [t.id for t in free], now))
                    if (subject := self._subject(timer)) is None or subject in held] if free else []
                if not timers:
                    return len(due), 0
                # Deleted first, so a handler that schedules the same kind and key again keeps the new one.
                await connection.execute("DELETE FROM timers WHERE id = ANY($1::bigint[])", [t.id for t in timers])
                failed = await self._handle(connection, timers)
                if failed:
                    await connection.executemany(
                        """INSERT INTO timers (kind, key, due_at, data, traceparent, failed_at, error)
                           VALUES ($1, $2, $3, $4::jsonb, $5, now(), $6)""",
                        [(t.kind, t.key, t.due_at, json.dumps(t.data, default=str), t.traceparent, error[:2000])
                         for t, error in failed],
                    )
        except Exception as error:
            if classify(error) != "transient":
                raise
            self.board.failing("timers", describe(error))
            log.warning("firing timers failed; retrying", error=describe(error))
            return 0, 0
        for timer in timers:
            metrics.TIMERS_FIRED.labels(self.service, timer.kind).inc()
        self.board.progressed("timers", waiting=0)
        return len(due), len(timers)

    async def _subjects_free(self, timers: list[DueTimer],
                             connection: asyncpg.Connection) -> tuple[list[DueTimer], set[str]]:
        """The timers to fire now: those without a subject, and those whose subject's lock this
        transaction could take at once (the handler takes it again, already held); and the
        subjects now held."""
        subjects = {timer.id: self._subject(timer) for timer in timers}
        wanted = {subject for subject in subjects.values() if subject is not None}
        held = await try_lock_subjects(connection, wanted) if wanted else set()
        return [timer for timer in timers if subjects[timer.id] is None or subjects[timer.id] in held], held

    def _subject(self, timer: DueTimer) -> str | None:
        route = self.routes.get(timer.kind)
        if route is None or route.subject is None:
            return None
        try:
            subject = route.subject(timer)
        except Exception:  # data the handler cannot use either: it fails there, and is set aside
            return None
        return subject if isinstance(subject, str) else None

    async def measure_due(self) -> None:
        """Set the due-timer gauges: how many are due and not fired (nor failed), and how late the
        oldest of them is. One statement on the due-time index."""
        now = self.clock.now()
        row = await self.pool.fetchrow(
            "SELECT count(*) AS due, min(due_at) AS oldest FROM timers WHERE due_at <= $1 AND failed_at IS NULL", now)
        metrics.TIMERS_DUE.labels(self.service).set(row["due"])
        late = (now - row["oldest"]).total_seconds() if row["oldest"] is not None else 0.0
        metrics.TIMERS_OVERDUE_SECONDS.labels(self.service).set(max(0.0, late))

    async def _measure_due_now_and_then(self) -> None:
        # After a pass: what is still due is a backlog (or timers another instance holds). At most
        # every few seconds, so a busy loop does not count the same backlog on every batch.
        moment = asyncio.get_running_loop().time()
        if moment - self._due_measured_at < DUE_MEASURE_INTERVAL:
            return
        try:
            await self.measure_due()
        except Exception as error:
            if classify(error) != "transient":
                raise
            return  # the database is away: firing says so on /health; try again next pass
        self._due_measured_at = moment

    async def _handle(self, connection: asyncpg.Connection, timers: list[DueTimer]) -> list[tuple[DueTimer, str]]:
        """Each kind's due timers in one handler call; if that fails for good, each timer alone in a savepoint."""
        failed: list[tuple[DueTimer, str]] = []
        by_kind: dict[str, list[DueTimer]] = {}
        for timer in timers:
            by_kind.setdefault(timer.kind, []).append(timer)
        for kind, group in by_kind.items():
            route = self.routes.get(kind)
            if route is None:
                failed += [(t, f"no handler for timer kind {kind!r}") for t in group]
                continue
            try:
                async with connection.transaction():
                    unit = self.unit_options.unit(connection, cause=group[0].cause(self.service))
                    await route.handler(group, unit)
                    await unit.flush()
                continue
            except Exception as error:
                if classify(error) == "transient":
                    raise
                log.warning("timer batch failed; firing its timers one by one", kind=kind, error=describe(error))
            for timer in group:
                with timer_context(timer):  # the handler's lines and ours carry the timer and its trace
                    try:
                        async with connection.transaction():
                            unit = self.unit_options.unit(connection, cause=timer.cause(self.service))
                            await route.handler([timer], unit)
                            await unit.flush()
                    except Exception as error:
                        if classify(error) == "transient":
                            raise
                        log.error("timer failed for good; set aside", exc_info=not isinstance(error, EventRejected))
                        failed.append((timer, describe(error)))
        return failed

    def _timer_scheduled(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        due = _due_time(payload)
        if due is None:  # no due time named (an older writer): look
            self._wake.set()
            return
        self._notified_due = due if self._notified_due is None else min(self._notified_due, due)
        # Asleep: wake if it is due before the loop looks anyway. Looking now (a pass, planned
        # None): the pass may have missed it, so one due already goes round again at once; a
        # later one is in the next plan (the query after this pass sees it; _notified_due else).
        planned = self._planned_wake if self._planned_wake is not None else self.clock.now()
        if due <= planned:
            self._wake.set()

    async def _sleep_until_next(self) -> None:
        # Timers written before this query are in its answer; those written while it runs, or
        # after, are named by their NOTIFY (kept in _notified_due, or waking the sleep below).
        notified_before, self._notified_due = self._notified_due, None
        try:
            next_due: datetime | None = await self.pool.fetchval(
                "SELECT min(due_at) FROM timers WHERE failed_at IS NULL")
        except Exception as error:
            if classify(error) != "transient":
                raise
            next_due = notified_before  # the database is away: what NOTIFY named is all there is
        if self._notified_due is not None:
            next_due = self._notified_due if next_due is None else min(next_due, self._notified_due)
        wait = self.poll_interval
        if next_due is not None:
            # Until it is due. One that was due when the pass claimed and was not claimed is locked
            # by another instance: look again soon, not at once (NOTIFY and a moved clock still
            # wake the loop). One that fell due during the pass: at once.
            if self._claimed_up_to is not None and next_due <= self._claimed_up_to:
                wait = min(wait, LOCKED_RETRY_SECONDS)
            else:
                wait = min(wait, max(0.0, (next_due - self.clock.now()).total_seconds()))
        self._planned_wake = self.clock.now() + timedelta(seconds=wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)


def _due_time(payload: str) -> datetime | None:
    """The due time a NOTIFY names (epoch seconds), None when it names none or cannot be read."""
    try:
        return datetime.fromtimestamp(float(payload), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _due_timer(row: asyncpg.Record) -> DueTimer:
    data = row["data"]
    return DueTimer(id=row["id"], kind=row["kind"], key=row["key"], due_at=row["due_at"],
                    data=json.loads(data) if isinstance(data, str) else dict(data or {}),
                    traceparent=row["traceparent"])
