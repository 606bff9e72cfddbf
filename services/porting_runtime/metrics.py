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
PIPELINE_FAILURES = Counter(
    "porting_pipeline_failures_total",
    "Failed attempts at a partition batch, by kind: transient, record, unknown, undecodable",
    ["consumer", "kind"],
)
OUTBOX_SET_ASIDE = Gauge("porting_outbox_set_aside", "Outbox rows the broker refused for good, kept aside", ["service"])
TIMERS_FIRED = Counter("porting_timers_fired_total", "Timers fired", ["service", "kind"])
TIMERS_DUE = Gauge("porting_timers_due", "Timers due now and not yet fired", ["service"])
TIMERS_OVERDUE_SECONDS = Gauge("porting_timers_overdue_seconds", "How late the oldest due timer is", ["service"])
TIMERS_FAILED = Gauge("porting_timers_failed", "Timers whose handler failed for good, kept aside", ["service"])
LOOP_RESTARTS = Counter("porting_loop_restarts_total", "Background loops restarted after a failure", ["service", "loop"])
LOOP_UP = Gauge("porting_loop_up", "1 while a background loop runs, 0 while it waits to restart", ["service", "loop"])
