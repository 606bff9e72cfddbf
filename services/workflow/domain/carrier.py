"""The losing carrier answers, and a port date is scheduled."""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from schemas import (
    AlertKind,
    CarrierNumberResponse,
    CarrierOutcome,
    CarrierResponded,
    CloudEvent,
    NumberStatus,
    PortAlertRaised,
    PortScheduled,
)

from .calendar import BusinessCalendar
from .decisions import Decisions, FeeRecorded, TimerKind
from .numbers import WITH_CARRIER, NumberState, RejectedBy
from .step import Step, timer_key

if TYPE_CHECKING:
    from .request import PortInRequest

# Which numbers each carrier outcome can move; for any other, the answer is recorded as ignored.
ANSWERABLE = {
    CarrierOutcome.ACCEPTED: {NumberStatus.PORT_SUBMITTED},
    # A carrier may still refuse after accepting or even scheduling (the number went inactive).
    CarrierOutcome.REJECTED: {*WITH_CARRIER, NumberStatus.SCHEDULED},
    # Activation is a fact: the number routes to us now, even when the carrier skipped steps
    # or a late cancellation did not go through.
    CarrierOutcome.ACTIVATED: {*WITH_CARRIER, NumberStatus.SCHEDULED, NumberStatus.CANCELING},
    CarrierOutcome.CANCELED: {NumberStatus.CANCELING},
}
# Seed 000: "Please configure your voice and SMS URLs (if applicable) in advance of the port date";
# the reminder goes out this many business days before the date, at this local hour.
REMINDER_BUSINESS_DAYS_BEFORE = 2
REMINDER_AT = time(9, 0)
REJECTED_WITHOUT_TEXT = "The losing carrier rejected the port of this number."


def carrier_responded(request: PortInRequest, event: CloudEvent[CarrierResponded], now: datetime) -> Decisions:
    data = event.data
    if unknown := request.unknown_numbers([r.phone_number for r in data.responses]):
        return Decisions.refuse(f"carrier answers for numbers not in the request: {', '.join(unknown)}")
    step = Step(request, event.attributes.id, now)
    for response in data.responses:
        number = request.number(response.phone_number)
        if number.status not in ANSWERABLE[response.outcome]:
            step.ignore(number, f"UNEXPECTED_{response.outcome.name}",
                        f"the carrier answered {response.outcome.value} for a number that is {number.status.value}")
            continue
        number.losing_carrier = data.losing_carrier
        _answer(step, number, response, event.attributes.id, now)
    dates = {r.proposed_port_date for r in data.responses if r.outcome is CarrierOutcome.ACCEPTED}
    return step.finish(port_date=dates.pop() if len(dates) == 1 else None)


def _answer(step: Step, number: NumberState, response: CarrierNumberResponse, cause: str, now: datetime) -> None:
    outcome = response.outcome
    if outcome is CarrierOutcome.ACCEPTED:
        number.proposed_port_date = response.proposed_port_date
        step.move(number, NumberStatus.PORT_PENDING)
    elif outcome is CarrierOutcome.REJECTED:
        number.rejected_by, number.awaiting_fix = RejectedBy.CARRIER, True
        number.port_date = number.proposed_port_date = None
        code = response.rejection_reason_code.value if response.rejection_reason_code else "REJECTED"
        step.move(number, NumberStatus.PORT_REJECTED, code,
                  step.request.masked(response.rejection_reason) or REJECTED_WITHOUT_TEXT)
    elif outcome is CarrierOutcome.ACTIVATED:
        number.completed_at = now
        _record_fee(step, number, cause, now)
        step.move(number, NumberStatus.COMPLETED)
    else:
        step.move(number, NumberStatus.CANCELED, "CANCELED_BY_CARRIER",
                  "The losing carrier confirmed the cancellation; the number stays with it.")


def _record_fee(step: Step, number: NumberState, cause: str, now: datetime) -> None:
    """Seed 002: a one-time per-number fee, "billed to your account after the port's successful completion"."""
    requirements = number.requirements
    if requirements is None or requirements.fee_per_number is None or requirements.fee_currency is None:
        return
    number.fee_per_number, number.fee_currency = requirements.fee_per_number, requirements.fee_currency
    step.decisions.fees.append(FeeRecorded(number.phone_number, requirements.fee_per_number,
                                           requirements.fee_currency, now, cause))


def port_scheduled(request: PortInRequest, event: CloudEvent[PortScheduled], now: datetime) -> Decisions:
    data = event.data
    if unknown := request.unknown_numbers(list(data.phone_numbers)):
        return Decisions.refuse(f"a schedule for numbers not in the request: {', '.join(unknown)}")
    step = Step(request, event.attributes.id, now)
    window = (data.port_time_range_start, data.port_time_range_end, data.time_zone)
    scheduled = []
    for phone_number in dict.fromkeys(data.phone_numbers):
        number = request.number(phone_number)
        if number.status is NumberStatus.SCHEDULED and _window_of(number) == (data.port_date, *window):
            step.ignore(number, "ALREADY_SCHEDULED", f"already scheduled for {data.port_date}")
        elif number.status is NumberStatus.SCHEDULED:
            _set_window(number, data)
            step.move(number, NumberStatus.SCHEDULED, "PORT_DATE_CHANGED", f"The port date is now {data.port_date}.")
            scheduled.append(number)
        elif number.status in WITH_CARRIER:
            _set_window(number, data)
            step.move(number, NumberStatus.SCHEDULED)
            scheduled.append(number)
        else:
            step.ignore(number, "UNEXPECTED_SCHEDULE", f"a port date for a number that is {number.status.value}")
    if scheduled:
        _watch_port_date(step, request, scheduled, data, now)
    return step.finish(port_date=data.port_date if scheduled else None, window=window if scheduled else None)


def _window_of(number: NumberState) -> tuple[object, ...]:
    return (number.port_date, number.port_time_range_start, number.port_time_range_end, number.time_zone)


def _set_window(number: NumberState, data: PortScheduled) -> None:
    number.port_date, number.time_zone = data.port_date, data.time_zone
    number.port_time_range_start, number.port_time_range_end = data.port_time_range_start, data.port_time_range_end


def _watch_port_date(step: Step, request: PortInRequest, numbers: list[NumberState], data: PortScheduled,
                     now: datetime) -> None:
    """The reminder ahead of the date, and the alert when the window ends without activation.
    A date already past raises the overdue alert at once (no timer to wait for)."""
    sid, zone = request.port_in_request_sid, ZoneInfo(data.time_zone)
    first = numbers[0]
    calendar = BusinessCalendar(first.country, request.number_calendar(first).subdivision, zone)
    window_start = calendar.at(data.port_date, data.port_time_range_start)
    window_end = calendar.at(data.port_date, data.port_time_range_end)
    key = timer_key(sid, data.port_date.isoformat())
    if window_end <= now:
        step.decisions.publish.append(PortAlertRaised(
            port_in_request_sid=sid, alert=AlertKind.PORT_DATE_OVERDUE,
            message=f"The port date {data.port_date} had already passed when it was scheduled; "
                    "the numbers are not activated.",
            phone_numbers=[n.phone_number for n in numbers], due_at=window_end, raised_at=now,
            country=first.country,
        ))
        step.note(None, AlertKind.PORT_DATE_OVERDUE.name, f"port date {data.port_date} already passed")
        return
    step.schedule(TimerKind.PORT_DATE_OVERDUE, key, window_end, port_date=data.port_date.isoformat())
    reminder = calendar.at(calendar.subtract_business_days(data.port_date, REMINDER_BUSINESS_DAYS_BEFORE), REMINDER_AT)
    if now < window_start:
        # Scheduled late: the reminder goes out right away rather than not at all.
        step.schedule(TimerKind.PORT_DATE_REMINDER, key, max(reminder, now), port_date=data.port_date.isoformat())
