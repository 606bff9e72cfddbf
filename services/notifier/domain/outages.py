"""A recipient that stops taking deliveries is one alert for the ops desk, not one per delivery.

An upstream system usually gives every request the same webhook URL, and each request makes
several webhooks: a receiver that was down for a day gave ops one `delivery_gave_up` e-mail per
notification (20 for one request's story, thousands for a busy day), and the one thing ops can
do about it, call the receiver's owner, is the same for all of them.

So a recipient's outage begins with the first of its customer deliveries given up or refused
for good, and that one raises PortAlertRaised(delivery_gave_up), naming the recipient and the
request. While the outage lasts, deliveries to the recipient that end undelivered are still
kept (each with every attempt, for `porting notifications`), counted
(`notifier_deliveries_gave_up_total`, `notifier_deliveries_failed_total`) and logged, without
another alert. It ends when the recipient takes a delivery again: the next failure is a new
outage and a new alert. So a receiver that takes most webhooks and refuses one for good (a
4xx for that message) still gets that one alerted, as a delivery came between. An outage that
lasts is recalled: the first failure REMINDER_EVERY or more after its last alert alerts again,
as a reminder with the outage's count so far, so a receiver that never comes back is not
forgotten after its first alert. (A failure ends a delivery only after retries, so a dead
receiver that still has requests naming it keeps failing deliveries.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

REMINDER_EVERY = timedelta(hours=24)


@dataclass(frozen=True)
class Undelivered:
    """One customer delivery that ended undelivered (given up or refused for good)."""

    channel: str
    recipient: str
    delivery_id: str


@dataclass(frozen=True)
class RecipientFailures:
    """A recipient's undelivered deliveries of one batch: the first may begin its outage."""

    channel: str
    recipient: str
    first_delivery_id: str
    count: int


def by_recipient(undelivered: Iterable[Undelivered]) -> list[RecipientFailures]:
    """Group a batch's failures by recipient (the first in the batch's order named), at most one
    alert each; sorted by recipient, so that two senders noting outages lock their rows in one
    order and never deadlock."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for item in undelivered:
        grouped.setdefault((item.channel, recipient_key(item.channel, item.recipient)), []).append(item.delivery_id)
    return [RecipientFailures(channel, recipient, ids[0], len(ids)) for (channel, recipient), ids in sorted(grouped.items())]


def recipient_key(channel: str, recipient: str) -> str:
    """One outage per mailbox whatever the address's case; a webhook URL as given, since its path
    and query may be case-sensitive (the contract already lower-cases its scheme and host)."""
    return recipient.lower() if channel == "email" else recipient
