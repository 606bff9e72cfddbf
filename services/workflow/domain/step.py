"""One event's effect on a request: the moves it makes, then the status change it announces.

Every handler of the aggregate opens a step, moves numbers through it, and finishes it: the
finish derives the request status, records the request's own transition, publishes one
PortStatusChanged for the whole step, and cancels the timers whose reason went away.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from schemas import NumberStatus, NumberStatusChange, PortStatusChanged, RequestStatus

from .decisions import CancelTimer, Decisions, HistoryEntry, HistoryKind, ScheduleTimer, TimerKind
from .numbers import NumberState, derive_request_status

if TYPE_CHECKING:
    from .request import PortInRequest

# DESIGN 4: "no fix in 30 days expires the request" (calendar days: the customer's own deadline).
ACTION_REQUIRED_EXPIRY = timedelta(days=30)


def timer_key(sid: str, qualifier: object | None = None) -> str:
    return sid if qualifier is None else f"{sid}:{qualifier}"


class _Snapshot:
    """What the timers wait on: numbers in review, with the carrier per submission, and
    scheduled per port date."""

    def __init__(self, request: PortInRequest) -> None:
        numbers = request.numbers.values()
        self.status = request.status
        self.in_review = any(n.status is NumberStatus.IN_REVIEW for n in numbers)
        self.with_carrier = {n.submitted_revision for n in numbers if n.status is NumberStatus.PORT_SUBMITTED}
        self.reminders = {n.port_date for n in numbers if n.status is NumberStatus.SCHEDULED}
        self.overdue_watch = {n.port_date for n in numbers
                              if n.status in (NumberStatus.SCHEDULED, NumberStatus.CANCELING)}


class Step:
    def __init__(self, request: PortInRequest, cause_event_id: str, now: datetime, *,
                 new_request: bool = False) -> None:
        self.request, self.cause, self.now = request, cause_event_id, now
        self.status_before: RequestStatus | None = None if new_request else request.status
        self.before = _Snapshot(request)
        self.decisions = Decisions()
        self.changes: list[NumberStatusChange] = []

    def move(self, number: NumberState, to: NumberStatus, code: str | None = None, reason: str | None = None,
             *, status_from: NumberStatus | None | bool = True) -> None:
        """Move a number; `status_from=None` for a number entering the request."""
        previous = number.status if status_from is True else status_from
        number.status, number.reason_code, number.reason = to, code, reason
        self._history(number.phone_number, previous, to, code, reason, HistoryKind.TRANSITION)
        self.changes.append(NumberStatusChange(
            phone_number=number.phone_number, status_from=previous, status_to=to, reason_code=code,
            reason=reason, fee_per_number=number.fee_per_number if to is NumberStatus.COMPLETED else None,
            fee_currency=number.fee_currency if to is NumberStatus.COMPLETED else None,
        ))

    def ignore(self, number: NumberState | None, code: str, reason: str) -> None:
        status = number.status if number else self.request.status
        self._history(number.phone_number if number else None, status, status, code, reason, HistoryKind.IGNORED)

    def note(self, number: NumberState | None, code: str, reason: str) -> None:
        status = number.status if number else self.request.status
        self._history(number.phone_number if number else None, status, status, code, reason, HistoryKind.NOTE)

    def _history(self, phone_number: str | None, status_from: object, status_to: object, code: str | None,
                 reason: str | None, kind: HistoryKind) -> None:
        self.decisions.history.append(HistoryEntry(
            at=self.now, cause_event_id=self.cause, phone_number=phone_number,
            status_from=_value(status_from), status_to=_value(status_to), reason_code=code, reason=reason, kind=kind,
        ))

    def schedule(self, kind: TimerKind, key: str, due_at: datetime, **data: object) -> None:
        self.decisions.timers.append(ScheduleTimer(kind, key, due_at, {
            "port_in_request_sid": self.request.port_in_request_sid, **data}))

    def finish(self, *, reason_code: str | None = None, reason: str | None = None, port_date: date | None = None,
               window: tuple[time, time, str] | None = None) -> Decisions:
        request = self.request
        request.status = derive_request_status(request.numbers.values())
        moved = self.status_before is not request.status
        if moved:
            if reason_code is None:
                reason_code, reason = _shared_reason(self.changes)
            self._history(None, self.status_before, request.status, reason_code, reason, HistoryKind.TRANSITION)
        if moved or self.changes:
            start, end, zone = window or (None, None, None)
            details = request.details
            self.decisions.publish.insert(0, PortStatusChanged(
                port_in_request_sid=request.port_in_request_sid, account_sid=request.account_sid,
                status_from=self.status_before, status_to=request.status, phone_numbers=self.changes,
                reason_code=reason_code, reason=reason, port_date=port_date, port_time_range_start=start,
                port_time_range_end=end, time_zone=zone, changed_at=self.now,
                notification_emails=details.notification_emails, webhook_url=details.webhook_url,
            ))
        self._cancel_timers_no_longer_needed()
        if request.ended:
            request.forget_secrets()
        return self.decisions

    def _cancel_timers_no_longer_needed(self) -> None:
        sid, before, after = self.request.port_in_request_sid, self.before, _Snapshot(self.request)
        cancels = []
        if before.in_review and not after.in_review:
            cancels.append(CancelTimer(TimerKind.REVIEW_SLA, sid))
        cancels += [CancelTimer(TimerKind.CARRIER_SLA, timer_key(sid, revision))
                    for revision in sorted(before.with_carrier - after.with_carrier)]
        cancels += [CancelTimer(TimerKind.PORT_DATE_REMINDER, timer_key(sid, day))
                    for day in sorted(before.reminders - after.reminders)]
        cancels += [CancelTimer(TimerKind.PORT_DATE_OVERDUE, timer_key(sid, day))
                    for day in sorted(before.overdue_watch - after.overdue_watch)]
        was_waiting = before.status is RequestStatus.ACTION_REQUIRED
        waiting = after.status is RequestStatus.ACTION_REQUIRED
        if was_waiting and not waiting:
            cancels.append(CancelTimer(TimerKind.ACTION_REQUIRED_EXPIRY, sid))
        if waiting and not was_waiting:
            self.schedule(TimerKind.ACTION_REQUIRED_EXPIRY, sid, self.now + ACTION_REQUIRED_EXPIRY)
        scheduled = {(t.kind, t.key) for t in self.decisions.timers if isinstance(t, ScheduleTimer)}
        self.decisions.timers += [c for c in cancels if (c.kind, c.key) not in scheduled]


def _value(status: object) -> str | None:
    return getattr(status, "value", status)  # type: ignore[return-value]


def _shared_reason(changes: list[NumberStatusChange]) -> tuple[str | None, str | None]:
    """The request's reason is its numbers' when they all moved for the same one."""
    reasons = {(c.reason_code, c.reason) for c in changes}
    return reasons.pop() if len(reasons) == 1 else (None, None)
