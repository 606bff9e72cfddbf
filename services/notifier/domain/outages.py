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
from datetime import datetime, timedelta

REMINDER_EVERY = timedelta(hours=24)


@dataclass(frozen=True)
class Ended:
    """One customer delivery's end as it bears on its recipient's outage."""

    channel: str
    recipient: str
    delivery_id: str
    delivered: bool  # else undelivered: given up or refused for good
    at: datetime


@dataclass(frozen=True)
class RecipientFailures:
    """A recipient's undelivered deliveries of one batch: the first may begin its outage."""

    channel: str
    recipient: str
    first_delivery_id: str
    count: int


@dataclass(frozen=True)
class OutageChanges:
    """What one recorded batch does to outages, in this order: failures counted into the outage
    in progress (or beginning one), outages ended by a delivery, then failures after that
    delivery, beginning a new one. In time order within the batch: a refusal recorded in the
    same batch as a later delivery must not leave an outage behind it (the next failure would
    not be alerted), nor one after the delivery be counted into the outage it ended."""

    undelivered_before: list[RecipientFailures]
    reachable: list[tuple[str, str]]  # (channel, recipient key), sorted
    undelivered_after: list[RecipientFailures]

    @property
    def recipients(self) -> list[str]:
        """Every recipient concerned, as lock names: the store locks them all, in one order,
        before it changes any, so that two senders cannot deadlock. (Taken as the runtime's
        subject locks: a name holding the channel and \\x1f is never a request's sid.)"""
        return sorted({f"{c}\x1f{r}" for c, r in self.reachable}
                      | {f"{f.channel}\x1f{f.recipient}" for f in (*self.undelivered_before, *self.undelivered_after)})

    def __bool__(self) -> bool:
        return bool(self.undelivered_before or self.reachable or self.undelivered_after)


def outage_changes(ends: Iterable[Ended]) -> OutageChanges:
    by_key: dict[tuple[str, str], list[Ended]] = {}
    for end in ends:
        by_key.setdefault((end.channel, recipient_key(end.channel, end.recipient)), []).append(end)
    before: list[RecipientFailures] = []
    after: list[RecipientFailures] = []
    reachable = []
    for (channel, recipient), items in sorted(by_key.items()):
        delivered_at = max((e.at for e in items if e.delivered), default=None)
        if delivered_at is not None:
            reachable.append((channel, recipient))
        failed = sorted((e for e in items if not e.delivered), key=lambda e: e.at)
        later = [e for e in failed if delivered_at is not None and e.at > delivered_at]
        # At most one alert each side: the first failure in time names it.
        for side, group in ((before, failed[:len(failed) - len(later)]), (after, later)):
            if group:
                side.append(RecipientFailures(channel, recipient, group[0].delivery_id, len(group)))
    return OutageChanges(before, reachable, after)


def reachable_recipients(delivered: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (channel, recipient key) of each recipient that took a delivery, once each, sorted."""
    return sorted({(channel, recipient_key(channel, recipient)) for channel, recipient in delivered})


def recipient_key(channel: str, recipient: str) -> str:
    """One outage per mailbox whatever an ASCII address's case; a non-ASCII address as given
    (lower() merges distinct mailboxes there: the Kelvin sign becomes "k"); a webhook URL as
    given, since its path and query may be case-sensitive (the contract already lower-cases
    its scheme and host)."""
    return recipient.lower() if channel == "email" and recipient.isascii() else recipient
