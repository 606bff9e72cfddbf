"""Prometheus metrics every service exposes."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "porting_events_total",
    "Consumed events by outcome: handled, duplicate or dead_lettered",
    ["consumer", "topic", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "porting_handler_seconds",
    "Time to handle one batch of a partition, transaction included",
    ["consumer"],
)
CONSUMER_LAG = Gauge("porting_consumer_lag", "Records behind the partition's end", ["consumer", "topic", "partition"])
TRANSIENT_FAILURES = Counter(
    "porting_transient_failures_total", "Retried failures (database or broker unavailable)", ["component"]
)
OUTBOX_BACKLOG = Gauge("porting_outbox_backlog", "Outbox rows not yet acknowledged by the broker", ["service"])
OUTBOX_PUBLISHED = Counter("porting_outbox_published_total", "Outbox rows published", ["service"])
DEAD_LETTERS = Counter("porting_dead_letters_total", "Messages dead-lettered", ["consumer", "topic"])
