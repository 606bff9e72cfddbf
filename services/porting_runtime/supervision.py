"""Every loop the runtime runs is supervised: a failure is logged with its traceback, shown on
/health and in metrics, and the loop restarts with backoff. No loop dies silently."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from . import metrics
from .failures import Backoff, describe
from .health import ProgressBoard
from .logs import get_logger

log = get_logger(__name__)
HEALTHY_RUN_SECONDS = 30.0  # a run this long resets the backoff


async def supervise(service: str, name: str, run: Callable[[], Awaitable[None]], stopping: asyncio.Event,
                    board: ProgressBoard) -> None:
    backoff = Backoff(initial=0.5, maximum=30.0)
    up = metrics.LOOP_UP.labels(service, name)
    while not stopping.is_set():
        started = time.monotonic()
        up.set(1)
        board.progressed(f"loop {name}")  # failing only while it waits to restart
        try:
            await run()
            if stopping.is_set():
                break
            raise RuntimeError(f"the {name} loop returned while the service runs")
        except asyncio.CancelledError:
            raise
        except Exception as error:
            up.set(0)
            if time.monotonic() - started > HEALTHY_RUN_SECONDS:
                backoff.reset()
            delay = backoff.next_delay()
            metrics.LOOP_RESTARTS.labels(service, name).inc()
            board.failing(f"loop {name}", describe(error))
            log.exception("background loop failed; restarting it", loop=name, restart_in=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
        else:
            break
    up.set(0)
