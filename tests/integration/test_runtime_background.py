"""Background tasks get the running service through one BackgroundContext: its definition,
settings, pool, board, stop signal and, above all, its own clock (tests move it)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime

from porting_runtime import BackgroundContext, MovableClock
from schemas import AlertKind, PortAlertRaised

from .ledger import LEDGER, collect, running

LATER = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)


async def test_a_background_task_runs_on_the_service_clock_and_commits_through_its_units(settings):
    clock = MovableClock(LATER)
    handed: list[BackgroundContext] = []
    published = asyncio.Event()

    async def announce_once(context: BackgroundContext) -> None:
        handed.append(context)
        async with context.unit() as unit:
            unit.publish(PortAlertRaised(port_in_request_sid="KW" + "0" * 32, alert=AlertKind.REVIEW_SLA_BREACHED,
                                         message="from the background", raised_at=unit.now()))
        published.set()
        await context.stopping.wait()

    definition = dataclasses.replace(LEDGER, background=[announce_once])
    async with running(settings, definition, clock=clock) as service:
        await asyncio.wait_for(published.wait(), 30)
        [context] = handed
        assert context.clock is clock and context.definition is definition and context.settings is settings
        assert context.pool is service.pool and context.board is service.board
        assert not context.stopping.is_set()
        [record] = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=1, settle=0.5)
    assert context.stopping.is_set()
    alert = json.loads(record.value)
    assert alert["message"] == "from the background"
    assert datetime.fromisoformat(alert["raised_at"].replace("Z", "+00:00")).year == LATER.year
