"""The benchmark's arithmetic: percentiles, rates, ratios and the paced producer's schedule.

Pure functions, no servers: the unit tests check them directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PERCENTILES = (50, 90, 99)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, interpolating linearly between the two
    nearest ranks (numpy's default). Raises on no values: a percentile of nothing is a bug."""
    if not ordered:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0-100")
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: Iterable[float]) -> dict[str, float | int]:
    """Latencies in seconds summarised in milliseconds: count, p50, p90, p99, max and mean."""
    ordered = sorted(seconds)
    if not ordered:
        return {"count": 0}
    summary: dict[str, float | int] = {"count": len(ordered)}
    for q in PERCENTILES:
        summary[f"p{q}_ms"] = round(percentile(ordered, q) * 1000, 2)
    summary["max_ms"] = round(ordered[-1] * 1000, 2)
    summary["mean_ms"] = round(sum(ordered) / len(ordered) * 1000, 2)
    return summary


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 when no time passed (nothing measured, not infinitely fast)."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator > 0 else None


def due(elapsed: float, per_second: float, total: int) -> int:
    """How many events a producer paced at `per_second` should have sent `elapsed` seconds after
    it started: the first at 0, then one every 1/per_second, never more than `total`."""
    if elapsed < 0 or total <= 0:
        return 0
    return min(total, math.floor(elapsed * per_second) + 1)


def schedule(total: int, per_second: float) -> list[float]:
    """When each of `total` paced events is due, in seconds after the start."""
    if per_second <= 0:
        raise ValueError("a paced producer needs a positive rate")
    return [index / per_second for index in range(total)]


def paced_events(per_second: float, seconds: float, *, minimum: int = 1, maximum: int | None = None) -> int:
    """How many events a paced phase of about `seconds` at `per_second` sends, within bounds."""
    count = max(minimum, round(per_second * seconds))
    return min(count, maximum) if maximum is not None else count


def target(measured: float | None, goal: float, *, at_most: bool = False) -> dict[str, object]:
    """A target to report (never to assert): the goal, what was measured, and whether it was met."""
    met = None if measured is None else (measured < goal if at_most else measured >= goal)
    return {"goal": f"{'<' if at_most else '>='} {goal:g}", "measured": measured, "met": met}
