"""W3C trace context: every event carries a `traceparent`, and follow-ups continue its trace."""

from __future__ import annotations

import re
import random

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def _random_id(bits: int) -> str:
    """A random, never all-zero id, as OpenTelemetry's RandomIdGenerator makes them: ids need to
    be unique, not secret, and `secrets` cost a system call each (1% of the workflow's CPU).
    The module's generator is reseeded in a forked child."""
    while not (value := random.getrandbits(bits)):
        pass
    return f"{value:0{bits // 4}x}"


def new_traceparent() -> str:
    return f"00-{_random_id(128)}-{_random_id(64)}-01"


def is_valid_traceparent(value: str | None) -> bool:
    if not value:
        return False
    match = _TRACEPARENT.fullmatch(value)
    return bool(match) and match.group(1) != "0" * 32 and match.group(2) != "0" * 16


def child_traceparent(parent: str | None) -> str:
    """A new span in the parent's trace; a fresh trace when the parent is missing or malformed."""
    if not is_valid_traceparent(parent):
        return new_traceparent()
    _, trace_id, _, flags = parent.split("-")  # type: ignore[union-attr]
    return f"00-{trace_id}-{_random_id(64)}-{flags}"


def trace_id_of(traceparent: str | None) -> str | None:
    return traceparent.split("-")[1] if is_valid_traceparent(traceparent) else None
