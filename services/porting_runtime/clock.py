"""The service clock. Timers compare against it, so tests move it instead of sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def subscribe(self, wake: asyncio.Event) -> None:
        """The wall clock never jumps: nothing to tell."""

    def unsubscribe(self, wake: asyncio.Event) -> None:
        """A loop that ends stops listening (a restarted one subscribes anew)."""


class MovableClock(Clock):
    """A clock tests set and advance; loops waiting on it are woken when it moves."""

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = (start - datetime.now(UTC)) if start else timedelta(0)
        self._waiters: list[asyncio.Event] = []

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> datetime:
        self._offset += delta
        for waiter in self._waiters:
            waiter.set()
        return self.now()

    def set(self, when: datetime) -> None:
        self.advance(when - self.now())

    def subscribe(self, wake: asyncio.Event) -> None:
        self._waiters.append(wake)

    def unsubscribe(self, wake: asyncio.Event) -> None:
        if wake in self._waiters:
            self._waiters.remove(wake)


WALL_CLOCK = Clock()
