"""Durable timers: scheduled in a handler's transaction, fired exactly once when the clock says so."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from porting_runtime import MovableClock
from porting_runtime.consumer import UnitOptions
from porting_runtime.database import apply_migrations, create_pool
from porting_runtime.health import ProgressBoard
from porting_runtime.timer_loop import TimerLoop
from porting_runtime.statement import write_all
from porting_runtime.subject_locks import lock_subjects
from porting_runtime.timers import TimerChanges, TimerRoute, timer_writes
from schemas import PortAlertRaised

from ..factories import port_requested
from ..handler_support import handler_harness
from .ledger import LEDGER, REMINDING_LEDGER, collect, fetchval, port_requested_record, publish, rows_are, running, wait_until


async def _pending(settings) -> int:
    return await fetchval(settings.database_url, "SELECT count(*) FROM timers WHERE failed_at IS NULL")


async def test_a_timer_scheduled_by_a_handler_fires_once_when_the_clock_reaches_it_with_its_follow_up(settings):
    clock = MovableClock()
    async with handler_harness(REMINDING_LEDGER, settings, clock) as harness:
        request = port_requested()
        await harness.handle(request)
        assert await harness.fire_due_timers() == 0, "not due yet"
        clock.advance(timedelta(hours=23))
        assert await harness.fire_due_timers() == 0, "still not due an hour before"
        clock.advance(timedelta(hours=2))
        assert await harness.fire_due_timers() == 1
        assert await harness.fire_due_timers() == 0, "never twice"
        alerts = await harness.follow_ups(PortAlertRaised.event_type)
        reminders = [json.loads(a["value"]) for a in alerts if b"reminder" in a["value"]]
        assert [r["message"] for r in reminders] == ["reminder for revision 1"]
        assert await harness.pool.fetchval("SELECT count(*) FROM reminders_fired") == 1


async def test_scheduling_the_same_kind_and_key_again_moves_the_timer_instead_of_adding_one(settings):
    clock = MovableClock()
    async with handler_harness(REMINDING_LEDGER, settings, clock) as harness:
        request = port_requested()
        await harness.handle(request)
        clock.advance(timedelta(hours=12))
        await harness.handle(port_requested(port_in_request_sid=request.port_in_request_sid, revision=2))
        assert await harness.pool.fetchval("SELECT count(*) FROM timers") == 1
        clock.advance(timedelta(hours=13))
        assert await harness.fire_due_timers() == 0, "moved to a day after the second request"
        clock.advance(timedelta(hours=12))
        assert await harness.fire_due_timers() == 1


async def test_a_timer_carries_the_trace_of_the_event_that_scheduled_it(settings):
    clock = MovableClock()
    async with handler_harness(REMINDING_LEDGER, settings, clock) as harness:
        traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        await harness.handle(harness.record(port_requested(), traceparent=traceparent))
        clock.advance(timedelta(days=2))
        await harness.fire_due_timers()
        [reminder] = [a for a in await harness.follow_ups(PortAlertRaised.event_type) if b"reminder" in a["value"]]
        headers = dict(zip(reminder["header_names"], reminder["header_values"], strict=True))
        assert headers["traceparent"].decode().split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


async def test_a_timer_whose_handler_fails_for_good_is_set_aside_and_the_others_fire(settings):
    clock = MovableClock()
    async with handler_harness(REMINDING_LEDGER, settings, clock) as harness:
        first, second = port_requested(), port_requested()
        await harness.handle(first, second)
        # A timer whose data the handler cannot use: it fails alone, the other still fires.
        await harness.pool.execute("UPDATE timers SET data = '{}' WHERE key = $1", first.port_in_request_sid)
        clock.advance(timedelta(days=2))
        assert await harness.fire_due_timers() == 2
        assert await harness.pool.fetchval("SELECT count(*) FROM reminders_fired") == 1
        failed = await harness.pool.fetchrow("SELECT key, error FROM timers WHERE failed_at IS NOT NULL")
        assert failed["key"] == first.port_in_request_sid and "KeyError" in failed["error"]
        assert await harness.fire_due_timers() == 0, "a failed timer is not retried forever"


async def test_a_timer_survives_a_restart_and_fires_once_with_two_instances_sharing_the_work(settings):
    clock = MovableClock()
    requests = [port_requested() for _ in range(40)]
    await publish(settings, [port_requested_record(settings, r) for r in requests])
    async with running(settings, REMINDING_LEDGER, clock=clock, timer_poll_interval=0.2):
        assert await wait_until(lambda: rows_are(settings, "effects", 40), timeout=60)
        assert await _pending(settings) == 40
    # Stopped with every timer pending: they are rows, so a restart finds them.
    async with running(settings, REMINDING_LEDGER, clock=clock, timer_poll_interval=0.2), \
            running(settings, REMINDING_LEDGER, clock=clock, timer_poll_interval=0.2):
        clock.advance(timedelta(days=1, minutes=1))
        assert await wait_until(lambda: rows_are(settings, "reminders_fired", 40), timeout=60)
        alerts = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=80, settle=1.0)
    assert await fetchval(settings.database_url, "SELECT count(DISTINCT request_sid) FROM reminders_fired") == 40
    assert await fetchval(settings.database_url, "SELECT count(*) FROM reminders_fired") == 40, "each fired once"
    assert await _pending(settings) == 0
    reminders = {json.loads(a.value)["port_in_request_sid"] for a in alerts if b"reminder" in a.value}
    assert reminders == {r.port_in_request_sid for r in requests}


async def test_a_nearer_timer_wakes_a_sleeping_timer_loop(settings):
    clock = MovableClock()
    async with running(settings, REMINDING_LEDGER, clock=clock, timer_poll_interval=3600):
        # The loop sleeps an hour when nothing is due; a new timer and a moved clock wake it.
        await publish(settings, [port_requested_record(settings, port_requested())])
        assert await wait_until(lambda: rows_are(settings, "effects", 1), timeout=60)
        clock.advance(timedelta(days=2))
        assert await wait_until(lambda: rows_are(settings, "reminders_fired", 1), timeout=10)


class _SleepyLoop:
    """A timer loop that sleeps an hour when nothing is due, counting its passes, with a kind
    whose handler notes what fired and when."""

    def __init__(self, settings) -> None:
        self.settings, self.passes, self.fired = settings, 0, []

    async def __aenter__(self) -> _SleepyLoop:
        self.pool = await create_pool(self.settings.database_url)
        await apply_migrations(self.pool, "ledger", LEDGER.migrations)

        async def fire(timers, unit) -> None:
            self.fired += [(t.key, datetime.now(UTC)) for t in timers]

        self.loop = TimerLoop(service="ledger", pool=self.pool, database_url=self.settings.database_url,
                              routes=[TimerRoute("sla", fire)], unit_options=UnitOptions(source="tests"),
                              board=ProgressBoard(), poll_interval=3600)
        one_pass = self.loop._pass  # noqa: SLF001

        async def counted() -> tuple[int, int]:
            self.passes += 1
            return await one_pass()

        self.loop._pass = counted  # type: ignore[method-assign]  # noqa: SLF001
        self.running = asyncio.create_task(self.loop.run())
        await wait_until(lambda: self._asleep(), timeout=10)
        return self

    async def _asleep(self) -> bool:
        return self.loop._planned_wake is not None  # noqa: SLF001

    async def __aexit__(self, *_: object) -> None:
        self.loop.stop()
        await self.running
        await self.pool.close()

    async def schedule(self, key: str, due: datetime) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            changes = TimerChanges()
            changes.schedule("sla", key, due, {}, None)
            await write_all(connection, [timer_writes(changes)])

    async def fired_keys(self, *keys: str) -> bool:
        return [key for key, _ in self.fired] == list(keys)


async def test_timers_due_days_ahead_leave_a_sleeping_timer_loop_asleep_and_a_due_one_wakes_it(settings):
    async with _SleepyLoop(settings) as sleepy:
        for day in range(1, 6):  # what the workflow does with nearly every batch: SLAs days ahead
            await sleepy.schedule(f"days-ahead-{day}", datetime.now(UTC) + timedelta(days=day))
        await sleepy.schedule("due-now", datetime.now(UTC) - timedelta(seconds=1))
        assert await wait_until(lambda: sleepy.fired_keys("due-now"), timeout=10)
        # The first pass, then the one the due timer woke: the five NOTIFYs before it woke nothing.
        assert sleepy.passes == 2


async def test_a_timer_due_before_the_loop_would_look_wakes_it_and_fires_on_time(settings):
    async with _SleepyLoop(settings) as sleepy:
        due = datetime.now(UTC) + timedelta(seconds=1.5)
        await sleepy.schedule("soon", due)
        assert await wait_until(lambda: sleepy.fired_keys("soon"), timeout=10), "not slept past: the loop sleeps 1 h"
        [(_, fired_at)] = sleepy.fired
        assert due <= fired_at < due + timedelta(seconds=5)


async def test_cancelling_removes_only_the_named_pending_timers_and_keeps_one_that_failed_for_good(settings):
    pool = await create_pool(settings.database_url)
    try:
        await apply_migrations(pool, "ledger", LEDGER.migrations)
        due = datetime(2026, 12, 1, tzinfo=UTC)
        async with pool.acquire() as connection, connection.transaction():
            changes = TimerChanges()
            for key in ("a", "b", "c"):
                changes.schedule("sla", key, due, {"key": key}, None)
            await write_all(connection, [timer_writes(changes)])
        await pool.execute("UPDATE timers SET failed_at = now(), error = 'x' WHERE key = 'c'")
        async with pool.acquire() as connection, connection.transaction():
            changes = TimerChanges()
            changes.cancel("sla", ["a", "c"])
            changes.schedule("sla", "d", due, {}, None)
            await write_all(connection, [timer_writes(changes)])
        rows = await pool.fetch("SELECT key, failed_at IS NOT NULL AS failed FROM timers ORDER BY key")
    finally:
        await pool.close()
    assert [(r["key"], r["failed"]) for r in rows] == [("b", False), ("c", True), ("d", False)]


async def test_two_instances_firing_timers_of_requests_a_batch_holds_neither_deadlock_nor_fire_a_timer_twice(settings):
    """Each instance's handler takes its request's lock and cancels that request's other timers.
    Instance B fires one request's timer (S2) while a batch holds the other request (S1), and
    waits inside its handler; A then fires S1's timers. Rows first and requests second, each
    instance held a row of the other's request and waited for it: PostgreSQL failed one."""
    pool = await create_pool(settings.database_url, max_size=6)
    await apply_migrations(pool, LEDGER.name, LEDGER.migrations)
    fired: list[str] = []
    b_in_handler, b_may_go = asyncio.Event(), asyncio.Event()

    def cancelling_the_rest_of_its_request(name: str):
        async def handler(timers, unit) -> None:
            await lock_subjects(unit.connection, {t.data["s"] for t in timers})
            fired.extend(t.key for t in timers)
            if name == "B":
                b_in_handler.set()
                await b_may_go.wait()
            for timer in timers:
                await unit.connection.execute("DELETE FROM timers WHERE data->>'s' = $1 AND id <> $2",
                                              timer.data["s"], timer.id)
        return handler

    def instance(name: str, batch_size: int) -> TimerLoop:
        route = TimerRoute("expiry", cancelling_the_rest_of_its_request(name), subject=lambda t: t.data["s"])
        return TimerLoop(service=LEDGER.name, pool=pool, database_url=settings.database_url, routes=[route],
                         unit_options=UnitOptions(source="tests"), board=ProgressBoard(), batch_size=batch_size)

    due = datetime.now(UTC) - timedelta(minutes=5)
    try:
        for key, subject, minutes in (("T2", "S1", 0), ("T3", "S2", 1), ("T1", "S1", 2), ("T4", "S2", 3)):
            await pool.execute("INSERT INTO timers (kind, key, due_at, data) VALUES ('expiry', $1, $2, $3::jsonb)",
                               key, due + timedelta(minutes=minutes), json.dumps({"s": subject}))
        a, b = instance("A", 500), instance("B", 2)
        async with pool.acquire() as batch:
            transaction = batch.transaction()
            await transaction.start()
            await lock_subjects(batch, ["S1"])  # a consumer's batch on request S1
            b_pass = asyncio.ensure_future(b.fire_due())  # looks at T2 (S1, held) and T3 (S2)
            await asyncio.wait_for(b_in_handler.wait(), timeout=10)
            await transaction.commit()
        a_fired = await asyncio.wait_for(a.fire_due(), timeout=10)  # S1's T2 and T1; S2 is B's
        b_may_go.set()
        b_fired = await asyncio.wait_for(b_pass, timeout=10)
        left = await pool.fetchval("SELECT count(*) FROM timers")
    finally:
        b_may_go.set()
        pool.terminate()  # a pass stuck in a deadlock must not hold the test's end
    assert (a_fired, b_fired) == (2, 1)
    assert sorted(fired) == ["T1", "T2", "T3"], "each fired once; T4 cancelled by T3's handler"
    assert left == 0
