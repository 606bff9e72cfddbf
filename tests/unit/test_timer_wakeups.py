"""When a NOTIFY about a new timer wakes the timer loop: only for a timer due before the loop
would look anyway (the NOTIFY names the earliest new due time), or when it names none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from porting_runtime import MovableClock
from porting_runtime.consumer import UnitOptions
from porting_runtime.health import ProgressBoard
from porting_runtime.timer_loop import TimerLoop

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _loop(planned_wake: datetime | None) -> TimerLoop:
    loop = TimerLoop(service="tests", pool=None, database_url="postgresql://unused", routes=(),  # type: ignore[arg-type]
                     unit_options=UnitOptions(source="tests", clock=MovableClock(NOW)), board=ProgressBoard())
    loop._planned_wake = planned_wake  # noqa: SLF001
    return loop


def _notify(loop: TimerLoop, payload: str) -> bool:
    loop._wake.clear()  # noqa: SLF001
    loop._timer_scheduled(None, 0, "timer_scheduled", payload)  # noqa: SLF001
    return loop._wake.is_set()  # noqa: SLF001


def _epoch(moment: datetime) -> str:
    return str(moment.timestamp())


def test_a_sleeping_loop_sleeps_on_through_a_timer_due_after_it_would_look_anyway():
    loop = _loop(planned_wake=NOW + timedelta(seconds=5))
    assert not _notify(loop, _epoch(NOW + timedelta(days=1)))


def test_a_sleeping_loop_wakes_for_a_timer_due_before_it_would_look():
    loop = _loop(planned_wake=NOW + timedelta(hours=1))
    assert _notify(loop, _epoch(NOW + timedelta(seconds=2)))


def test_a_loop_in_a_pass_goes_round_again_for_a_timer_already_due_and_keeps_a_later_one_for_its_plan():
    loop = _loop(planned_wake=None)
    assert _notify(loop, _epoch(NOW - timedelta(seconds=1)))
    assert not _notify(loop, _epoch(NOW + timedelta(days=3)))
    assert loop._notified_due == NOW - timedelta(seconds=1)  # noqa: SLF001  # the earliest named


@pytest.mark.parametrize("payload", ["", "garbage", "nan", "inf", "-inf", "1e309", "9" * 400, "-1e20"])
def test_a_notify_naming_no_readable_due_time_wakes_the_loop(payload):
    assert _notify(_loop(planned_wake=NOW + timedelta(hours=1)), payload)
