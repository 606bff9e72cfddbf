"""The event loop every long-running process of the platform runs on: uvloop.

The services, the local SMTP catcher and the benchmark spend much of their time in the event
loop itself (socket reads and writes, callbacks, timers) for Kafka, PostgreSQL and SMTP round
trips. uvloop does that work in C; measured with `make bench` (interleaved runs, same code
otherwise), the whole pipeline gained 10-25% and the portability service ~6%, the workflow
scenario was unchanged. Short operator commands keep asyncio.run: they make a few round trips.
The tests run on the same loop (tests/conftest.py), so what is tested is what runs.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

new_event_loop = uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a uvloop loop."""
    return uvloop.run(main)
