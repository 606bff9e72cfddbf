"""The notifier's Prometheus metrics, served on the service's /metrics with the runtime's."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SENT = Counter("notifier_deliveries_sent_total", "Deliveries accepted by the mail server or the webhook receiver",
               ["channel"])
FAILED_ATTEMPTS = Counter("notifier_delivery_attempts_failed_total",
                          "Failed attempts, by whether they will be retried", ["channel", "retried"])
FAILED = Counter("notifier_deliveries_failed_total", "Deliveries refused for good (never retried)",
                 ["channel", "audience"])
GAVE_UP = Counter("notifier_deliveries_gave_up_total", "Deliveries given up after the give-up time",
                  ["channel", "audience"])
WEBHOOK_TARGETS_REFUSED = Counter(
    "notifier_webhook_targets_refused_total",
    "Webhook attempts refused because webhook_url is not an allowed http(s) URL or resolves to a non-public address",
    ["kind"])
PENDING = Gauge("notifier_deliveries_pending", "Deliveries due, in flight or waiting to be retried", ["channel"])
OLDEST_PENDING = Gauge("notifier_oldest_pending_delivery_age_seconds",
                       "How long the oldest unfinished delivery has been due", ["channel"])
SEND_SECONDS = Histogram("notifier_send_seconds", "Time of one delivery attempt", ["channel"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
