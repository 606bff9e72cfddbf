"""Recording what each consumed event calls for, in the transaction that consumed it.

Nothing is sent here: the rows commit with the inbox rows and the offset follows, so a
crash either loses the whole batch (it comes again) or keeps it whole. The sender takes the
rows after the commit. Delivery ids come from the events, so a replay records nothing new.

A webhook_url is recorded as it came, not vetted here: here only its spelling could be judged
(resolving names would hold the consuming transaction on DNS, and the answer may change before
the send), while the sender judges every address at connect time anyway and keeps a refusal as
a final attempt with its reason, alerted and counted like any final failure. One rule, in one
place (domain/webhook_targets.py); refusing a request's URL up front belongs to its intake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from porting_runtime import DueTimer, UnitOfWork
from porting_runtime.logs import get_logger
from schemas import CloudEvent

from ..adapters import store
from ..domain.announcements import NotifierPolicy, announce

log = get_logger(__name__)

ROUTING_REMINDER = "routing_reminder"
DELIVERY_RETRY = "delivery_retry"


class NotificationRecorder:
    """The batch handler of PortStatusChanged, CancellationDenied and PortAlertRaised."""

    def __init__(self, policy: NotifierPolicy) -> None:
        self.policy = policy

    async def __call__(self, events: Sequence[CloudEvent[Any]], unit: UnitOfWork) -> None:
        now = unit.now()
        rows: list[store.ToRecord] = []
        # Reminders recorded earlier, to withdraw before this batch's own are written ...
        withdraw_earlier: list[tuple[str, str | None]] = []
        # ... and this batch's own reminders, which a later event of the same batch may make moot.
        batch_reminders: dict[str, int] = {}
        for event in events:
            announcement = announce(event, self.policy)
            for note in announcement.notes:
                log.warning(note, event_id=event.attributes.id)
            sid = event.data.port_in_request_sid
            if announcement.withdraw_all_reminders or announcement.withdraw_reminders_for:
                numbers = set(announcement.withdraw_reminders_for)
                withdraw_earlier += [(sid, None)] if announcement.withdraw_all_reminders \
                    else [(sid, number) for number in sorted(numbers)]
                for delivery_id, index in list(batch_reminders.items()):
                    reminder = rows[index].notification
                    if reminder.port_in_request_sid == sid and (
                            announcement.withdraw_all_reminders or numbers & set(reminder.phone_numbers)):
                        rows[index] = store.ToRecord(reminder, "withdrawn", rows[index].ready_at)
                        del batch_reminders[delivery_id]
            for notification in announcement.notifications:
                if notification.due_at is not None:
                    batch_reminders[notification.delivery_id] = len(rows)
                    rows.append(store.ToRecord(notification, "scheduled", notification.due_at))
                else:
                    rows.append(store.ToRecord(notification, "pending", now))
        withdrawn = await store.withdraw_reminders(unit.connection, withdraw_earlier, now)
        if withdrawn:
            unit.cancel_timers(ROUTING_REMINDER, withdrawn)
        inserted = await store.record(unit.connection, rows, now)
        for row in inserted:
            if row["state"] == "scheduled":
                unit.schedule(ROUTING_REMINDER, key=row["delivery_id"], due_at=row["ready_at"])
        # The insert itself notified the senders of the channels with pending rows (on commit).


async def make_due(timers: Sequence[DueTimer], unit: UnitOfWork) -> None:
    """A routing reminder's date or a retry's time has come: the sender takes it now."""
    await store.make_ready(unit.connection, [timer.key for timer in timers], unit.now())
