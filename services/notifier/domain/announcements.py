"""From each event, the notifications it calls for: e-mails to the customer and the ops desk,
webhooks to the request's URL, and the routing reminder ahead of a port date.

Template contexts and webhook bodies are built field by field from the event. A PIN or an
account number is never among those fields (the contract keeps them out of these events), and
free text passes `redact_secrets` on the way in, so neither can reach a template, a webhook
or the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas import (
    CancellationDenied,
    CloudEvent,
    NumberStatus,
    NumberStatusChange,
    PortAlertRaised,
    PortStatusChanged,
    RequestStatus,
)

from .deliveries import Announcement, Audience, Channel, Notification, delivery_id
from schemas.secrets_in_text import redact_secrets

from .reasons import FixAdvice, refusal
from .webhooks import CANCELLATION_DENIED_WEBHOOK, NUMBER_WEBHOOKS, REQUEST_WEBHOOKS, webhook_body
from .wording import ALERT_WORDS, NUMBER_STATUS_WORDS, REQUEST_STATUS_WORDS, is_canadian, long_date

# The workflow's reason code on the change its action_required expiry makes (workflow/domain/timers.py).
EXPIRY_REASON = "EXPIRED"
ENDED = {RequestStatus.COMPLETED, RequestStatus.CANCELED, RequestStatus.EXPIRED, RequestStatus.REJECTED}
REFUSED = {NumberStatus.NOT_PORTABLE, NumberStatus.PORT_REJECTED}
SUBMITTED = {NumberStatus.PORT_SUBMITTED, NumberStatus.PORT_PENDING, NumberStatus.SCHEDULED}
# Still on the way: the old account must stay active until these have ported.
UNDER_WAY = {NumberStatus.IN_REVIEW, NumberStatus.PORT_SUBMITTED, NumberStatus.PORT_PENDING,
             NumberStatus.SCHEDULED, NumberStatus.CANCELING}


@dataclass(frozen=True)
class NotifierPolicy:
    ops_alert_emails: tuple[str, ...]
    advice: FixAdvice
    # How long before the port date the reminder to configure voice and SMS routing goes out.
    reminder_lead: timedelta = timedelta(days=2)


def announce(event: CloudEvent[Any], policy: NotifierPolicy) -> Announcement:
    data = event.data
    if isinstance(data, PortStatusChanged):
        return _status_changed(event, data, policy)
    if isinstance(data, CancellationDenied):
        return _cancellation_denied(event, data, policy)
    if isinstance(data, PortAlertRaised):
        return _alert_raised(event, data, policy)
    raise TypeError(f"the notifier does not announce {type(data).__name__}")


# The e-mail a status change calls for: the most significant thing that happened, first match
# wins. Whatever else changed in the same event is listed in that e-mail too.
def customer_email_kind(change: PortStatusChanged) -> str | None:
    moved = _moved_numbers(change)
    to = {n.status_to for n in moved}
    request_moved = change.status_from is not change.status_to
    # The expiry timer's change names no number (the expired ones keep their port_rejected
    # status) and ends in whatever the other numbers make of the request: completed, or still
    # in progress. Its reason code tells it.
    if request_moved and (change.status_to is RequestStatus.EXPIRED or change.reason_code == EXPIRY_REASON):
        return "request_expired"
    if request_moved and change.status_to is RequestStatus.REJECTED:
        return "request_rejected"
    if NumberStatus.CANCELED in to or (request_moved and change.status_to is RequestStatus.CANCELED):
        return "port_canceled"
    if NumberStatus.CANCELING in to:
        return "cancellation_under_way"
    if NumberStatus.COMPLETED in to or (request_moved and change.status_to is RequestStatus.COMPLETED):
        return "port_completed"
    if NumberStatus.PORT_REJECTED in to or (request_moved and change.status_to is RequestStatus.ACTION_REQUIRED):
        return "action_required"
    if NumberStatus.SCHEDULED in to:
        return "port_date"
    if NumberStatus.PORT_PENDING in to:
        return "port_accepted"
    if NumberStatus.PORT_SUBMITTED in to:
        return "request_submitted"
    # A corrected revision puts its numbers back in review, whether or not the request's other
    # numbers are still with the carrier (then the request stays in progress).
    if NumberStatus.IN_REVIEW in to or (request_moved and change.status_to is RequestStatus.IN_REVIEW):
        return "request_received"
    if NumberStatus.NOT_PORTABLE in to:
        return "numbers_not_portable"
    return None


def _moved_numbers(change: PortStatusChanged) -> list[NumberStatusChange]:
    """Numbers whose status changed, and scheduled numbers given a new port date: that is a
    `scheduled -> scheduled` change with the new date, and the customer must hear of it (the
    e-mail, the webhook, the reminder moved to the new date)."""
    return [n for n in change.phone_numbers if n.status_from is not n.status_to or _rescheduled(change, n)]


def _rescheduled(change: PortStatusChanged, number: NumberStatusChange) -> bool:
    return number.status_from is number.status_to is NumberStatus.SCHEDULED and change.port_date is not None


def _status_changed(event: CloudEvent[Any], change: PortStatusChanged, policy: NotifierPolicy) -> Announcement:
    source, event_id = event.attributes.source, event.attributes.id
    moved = _moved_numbers(change)
    notifications: list[Notification] = []
    kind = customer_email_kind(change)
    if kind:
        context = _status_context(change, moved, kind, policy)
        notifications += _emails(source, event_id, change.port_in_request_sid, change.notification_emails,
                                 kind, context, [n.phone_number for n in moved])
    scheduled = [n.phone_number for n in moved if n.status_to is NumberStatus.SCHEDULED]
    if scheduled and change.port_date and change.status_to not in ENDED:
        due = _reminder_due(change, policy.reminder_lead)
        # Too late for a reminder: the port-date e-mail just said the same thing.
        if due > change.changed_at:
            context = _status_context(change, [n for n in moved if n.phone_number in scheduled],
                                      "routing_reminder", policy)
            reminders = _emails(source, event_id, change.port_in_request_sid, change.notification_emails,
                                "routing_reminder", context, scheduled, part="routing_reminder")
            notifications += [replace(r, due_at=due) for r in reminders]
    if change.webhook_url:
        notifications += _status_webhooks(source, event_id, change, moved, str(change.webhook_url))
    return Announcement(
        notifications=tuple(_unique(notifications)),
        withdraw_reminders_for=tuple(n.phone_number for n in moved),
        withdraw_all_reminders=change.status_to in ENDED,
    )


# The reminder goes out in the customer's morning, `reminder_lead` before the port date, in the
# port window's time zone when the event names one (UTC otherwise).
REMINDER_AT = time(9, 0)


def _reminder_due(change: PortStatusChanged, lead: timedelta) -> datetime:
    zone = _zone(change.time_zone)
    return (datetime.combine(change.port_date, REMINDER_AT, zone) - lead).astimezone(UTC)  # type: ignore[arg-type]


def _zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _port_window(change: PortStatusChanged) -> str | None:
    start, end = change.port_time_range_start, change.port_time_range_end
    if not (start and end):
        return None
    return f"between {start:%H:%M} and {end:%H:%M}" + (f" ({change.time_zone})" if change.time_zone else "")


def _status_context(change: PortStatusChanged, moved: Sequence[NumberStatusChange], kind: str,
                    policy: NotifierPolicy) -> dict[str, Any]:
    refusals = [refusal(n.phone_number, n.reason_code, n.reason, policy.advice)
                for n in moved if n.status_to in REFUSED]
    # A number rejected on its way from the carrier was the carrier's refusal; one rejected
    # before it was ever submitted was our review's.
    by_carrier = {n.phone_number for n in moved
                  if n.status_to is NumberStatus.PORT_REJECTED and n.status_from in SUBMITTED}
    if not refusals and change.status_to in (RequestStatus.REJECTED, RequestStatus.ACTION_REQUIRED) \
            and (change.reason_code or change.reason):
        refusals = [refusal(None, change.reason_code, change.reason, policy.advice)]
    completed = [n.phone_number for n in moved if n.status_to is NumberStatus.COMPLETED]
    still_porting = [n.phone_number for n in change.phone_numbers if n.status_to in UNDER_WAY]
    numbers = [n.phone_number for n in moved] or [n.phone_number for n in change.phone_numbers]
    canadian = [n for n in numbers if is_canadian(n)]
    return {
        "port_in_request_sid": change.port_in_request_sid,
        "account_sid": change.account_sid,
        "request_status": change.status_to.value,
        "request_status_words": REQUEST_STATUS_WORDS[change.status_to],
        "resubmitted": change.status_from is RequestStatus.ACTION_REQUIRED,
        "first_notice": change.status_from is None,
        "reason_code": change.reason_code,
        "reason": redact_secrets(change.reason),
        "changed_at": change.changed_at.isoformat(),
        "port_date": change.port_date.isoformat() if change.port_date else None,
        "port_date_words": long_date(change.port_date),
        "port_date_changed": any(_rescheduled(change, n) for n in moved),
        "numbers": [{"phone_number": n.phone_number, "status": n.status_to.value,
                     "status_words": NUMBER_STATUS_WORDS[n.status_to]} for n in moved],
        "refusals": [vars(r) for r in refusals],
        "carrier_refusals": [vars(r) for r in refusals if r.phone_number in by_carrier],
        "review_refusals": [vars(r) for r in refusals if r.phone_number not in by_carrier],
        "submitted_numbers": [n.phone_number for n in moved if n.status_to is NumberStatus.PORT_SUBMITTED],
        "completed_numbers": completed,
        "still_porting": still_porting,
        # A status change names only the numbers that changed: a request not ended has others
        # still on their way (or awaiting a fix), whose old account must stay active, named or not.
        "request_open": change.status_to not in ENDED,
        "canadian_numbers": canadian,
        "port_window": _port_window(change),
        # The per-number fee, as the workflow recorded it at completion for billing.
        "fees": [{"phone_number": n.phone_number, "amount": str(n.fee_per_number), "currency": n.fee_currency or ""}
                 for n in moved if n.status_to is NumberStatus.COMPLETED and n.fee_per_number is not None],
        # Seed 002: a one-time per-number fee, rate given in response to the request, billed
        # after completion. Said on receipt and again when Canadian numbers complete.
        "canadian_fee_applies": bool(canadian) and (kind in ("request_received", "port_completed")),
    }


def _status_webhooks(source: str, event_id: str, change: PortStatusChanged,
                     moved: Sequence[NumberStatusChange], url: str) -> list[Notification]:
    hooks: list[tuple[str, str | None, str, str | None, str | None]] = []
    if change.status_from is not change.status_to:
        hooks.append((REQUEST_WEBHOOKS[change.status_to], None, change.status_to.value,
                      change.reason, change.reason_code))
    hooks += [(NUMBER_WEBHOOKS[n.status_to], n.phone_number, n.status_to.value, n.reason, n.reason_code)
              for n in moved]
    return [
        _webhook(source, event_id, change.port_in_request_sid, url, hook_type, number,
                 webhook_body(hook_type, port_in_request_sid=change.port_in_request_sid, phone_number=number,
                              status=status, last_date_updated=change.changed_at, rejection_reason=reason,
                              rejection_reason_code=code, port_date=change.port_date))
        for hook_type, number, status, reason, code in hooks
    ]


def _cancellation_denied(event: CloudEvent[Any], denial: CancellationDenied, policy: NotifierPolicy) -> Announcement:
    source, event_id = event.attributes.source, event.attributes.id
    context = {
        "port_in_request_sid": denial.port_in_request_sid,
        "account_sid": denial.account_sid,
        "phone_numbers": list(denial.phone_numbers),
        "requested_by": redact_secrets(denial.requested_by),
        "reason_code": denial.reason_code,
        "reason": redact_secrets(denial.reason),
        "port_date": denial.port_date.isoformat() if denial.port_date else None,
        "port_date_words": long_date(denial.port_date),
    }
    notifications = _emails(source, event_id, denial.port_in_request_sid, denial.notification_emails,
                            "cancellation_denied", context, denial.phone_numbers)
    if denial.webhook_url:
        when = event.attributes.time or datetime.now(UTC)
        notifications += [
            _webhook(source, event_id, denial.port_in_request_sid, str(denial.webhook_url),
                     CANCELLATION_DENIED_WEBHOOK, number,
                     webhook_body(CANCELLATION_DENIED_WEBHOOK, port_in_request_sid=denial.port_in_request_sid,
                                  phone_number=number, status=None, last_date_updated=when,
                                  rejection_reason=denial.reason, rejection_reason_code=denial.reason_code,
                                  port_date=denial.port_date))
            for number in denial.phone_numbers
        ]
    return Announcement(notifications=tuple(_unique(notifications)))


def _alert_raised(event: CloudEvent[Any], alert: PortAlertRaised, policy: NotifierPolicy) -> Announcement:
    context = {
        "port_in_request_sid": alert.port_in_request_sid,
        "alert": alert.alert.value,
        "alert_words": ALERT_WORDS[alert.alert],
        "message": redact_secrets(alert.message),
        "phone_numbers": list(alert.phone_numbers),
        "due_at": alert.due_at.isoformat() if alert.due_at else None,
        "raised_at": alert.raised_at.isoformat(),
        "country": alert.country,
    }
    notifications = [
        Notification(
            delivery_id=delivery_id(event.attributes.source, event.attributes.id, Channel.EMAIL, address),
            port_in_request_sid=alert.port_in_request_sid, channel=Channel.EMAIL, audience=Audience.OPS,
            recipient=address, kind="ops_alert", payload=context, phone_numbers=tuple(alert.phone_numbers),
            cause_source=event.attributes.source, cause_id=event.attributes.id,
        )
        for address in _distinct(policy.ops_alert_emails)
    ]
    notes = () if notifications else ("no OPS_ALERT_EMAILS configured: the alert is not e-mailed",)
    return Announcement(notifications=tuple(notifications), notes=notes)


def _emails(source: str, event_id: str, sid: str, addresses: Iterable[str], kind: str,
            context: dict[str, Any], numbers: Iterable[str], part: str = "") -> list[Notification]:
    return [
        Notification(
            delivery_id=delivery_id(source, event_id, Channel.EMAIL, address, part),
            port_in_request_sid=sid, channel=Channel.EMAIL, audience=Audience.CUSTOMER, recipient=address,
            kind=kind, payload=context, phone_numbers=tuple(numbers), cause_source=source, cause_id=event_id,
        )
        for address in _distinct(addresses)
    ]


def _webhook(source: str, event_id: str, sid: str, url: str, hook_type: str, number: str | None,
             body: dict[str, Any]) -> Notification:
    return Notification(
        delivery_id=delivery_id(source, event_id, Channel.WEBHOOK, url, f"{hook_type}:{number or ''}"),
        port_in_request_sid=sid, channel=Channel.WEBHOOK, audience=Audience.CUSTOMER, recipient=url,
        kind=hook_type, payload=body, phone_numbers=(number,) if number else (), cause_source=source,
        cause_id=event_id,
    )


def _distinct(addresses: Iterable[str]) -> list[str]:
    """One message per address, however often and in whatever case it is listed."""
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.strip().lower(), address.strip())
    return list(seen.values())


def _unique(notifications: Iterable[Notification]) -> list[Notification]:
    return list({n.delivery_id: n for n in notifications}.values())
