"""What /health reports: which parts of the service made progress, and which are stuck."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Part:
    progressed_at: float = field(default_factory=time.monotonic)
    failing_since: float | None = None
    error: str | None = None
    # Work known to be waiting (lag, backlog, due timers); a part with none is never stalled.
    waiting: int = 0
    # What the part waits for before it can work at all (the consumer joining its group).
    starting: str | None = None
    starting_since: float = 0.0


class ProgressBoard:
    """Each loop reports progress and failures here; health reads it. No I/O, no locks: one event loop."""

    def __init__(self) -> None:
        self.parts: dict[str, Part] = {}

    def part(self, name: str) -> Part:
        return self.parts.setdefault(name, Part())

    def progressed(self, name: str, waiting: int | None = None) -> None:
        part = self.part(name)
        part.progressed_at, part.failing_since, part.error = time.monotonic(), None, None
        if waiting is not None:
            part.waiting = waiting

    def waiting(self, name: str, waiting: int) -> None:
        part = self.part(name)
        if part.waiting == 0 and waiting > 0:
            part.progressed_at = time.monotonic()  # the clock of a stall starts when work appears
        part.waiting = waiting

    def starting(self, name: str, what: str) -> None:
        part = self.part(name)
        part.starting, part.starting_since = what, time.monotonic()

    def started(self, name: str) -> None:
        self.part(name).starting = None
        self.progressed(name)

    def failing(self, name: str, error: str) -> None:
        part = self.part(name)
        if part.failing_since is None:
            part.failing_since = time.monotonic()
        part.error = error

    def problems(self, stalled_after: float) -> dict[str, str]:
        """The parts that are failing, or have waiting work and made no progress for `stalled_after` seconds."""
        now, found = time.monotonic(), {}
        for name, part in sorted(self.parts.items()):
            if part.starting is not None:
                found[name] = f"starting for {now - part.starting_since:.0f}s: {part.starting}"
                if now - part.starting_since > stalled_after:
                    found[name] = f"still {part.starting} after {now - part.starting_since:.0f}s"
            elif part.failing_since is not None:
                found[name] = f"failing for {now - part.failing_since:.0f}s: {part.error}"
            elif part.waiting > 0 and now - part.progressed_at > stalled_after:
                found[name] = f"no progress for {now - part.progressed_at:.0f}s with {part.waiting} waiting"
        return found

    def only_starting(self, problems: dict[str, str], stalled_after: float) -> bool:
        """Whether every problem is a part still starting, for less than `stalled_after` seconds:
        the service is coming up. A start that takes longer (a group that never forms) is degraded."""
        now = time.monotonic()
        return bool(problems) and all(
            name in self.parts and self.parts[name].starting is not None
            and now - self.parts[name].starting_since <= stalled_after for name in problems)
