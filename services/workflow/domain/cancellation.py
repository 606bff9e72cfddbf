"""Cancelling a port, number by number, under the policy of each number's country.

US and Canada (seed 001): "Once a port date has been scheduled for your request, we'll no
longer be able to process a cancellation." International (seed 000): "Please let us know at
least 3 business days prior to the scheduled day if you wish to cancel an already accepted
port order", with the fees and risk accepted; then the carrier is asked (`canceling`) and the
number is `canceled` when it confirms. A refusal is a CancellationDenied, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from schemas import CancellationDenied, CancellationPolicyKind, CancelRequested, CloudEvent, NumberStatus
from schemas.types import SHORT_TEXT_MAX

from .decisions import Decisions
from .numbers import WITH_CARRIER, NumberState
from .step import Step

if TYPE_CHECKING:
    from .calendar import BusinessCalendar
    from .request import PortInRequest

LATE_CANCELLATION_NOTICE_BUSINESS_DAYS = 3


@dataclass(frozen=True)
class Refusal:
    code: str
    reason: str


AFTER_SCHEDULING = Refusal(
    "CANCELLATION_AFTER_SCHEDULING",
    "A port date has been scheduled, so the port can no longer be canceled. Once it completes you can "
    "ask your original carrier to port the number back.")
TOO_LATE = Refusal(
    "CANCELLATION_TOO_LATE",
    "A scheduled international port can be canceled only at least 3 business days before the port date; "
    "the port will go ahead. Once it completes you can ask your original carrier to port the number back.")
FEES_NOT_ACCEPTED = Refusal(
    "CANCELLATION_FEES_NOT_ACCEPTED",
    "Canceling a scheduled port may incur fees and risk a lapse in service; send the cancellation again "
    "accepting the fees and risk to go ahead.")
ALREADY_COMPLETED = Refusal(
    "PORT_ALREADY_COMPLETED",
    "The number has already ported. To return it, ask your original carrier to port it back.")


def late_cancellation_refusal(policy: CancellationPolicyKind, calendar: BusinessCalendar, today: date,
                              port_date: date, accepts_fees_and_risk: bool) -> Refusal | None:
    """Whether a number already scheduled may still be canceled; None when it may."""
    if policy is CancellationPolicyKind.NORTH_AMERICAN:
        return AFTER_SCHEDULING
    notice = LATE_CANCELLATION_NOTICE_BUSINESS_DAYS
    if calendar.business_days_between(today, port_date, at_most=notice) < notice:
        return TOO_LATE
    if not accepts_fees_and_risk:
        return FEES_NOT_ACCEPTED
    return None


def cancel_requested(request: PortInRequest, event: CloudEvent[CancelRequested], now: datetime) -> Decisions:
    data = event.data
    named = list(dict.fromkeys(data.phone_numbers)) if data.phone_numbers is not None else list(request.numbers)
    if unknown := request.unknown_numbers(named):
        return Decisions.refuse(f"a cancellation for numbers not in the request: {', '.join(unknown)}")
    step = Step(request, event.attributes.id, now)
    asked_by = request.masked(data.requested_by, limit=SHORT_TEXT_MAX) or ""
    canceled_reason = f"Canceled at the request of {asked_by}."
    refused: dict[Refusal, list[NumberState]] = {}
    for number in (request.number(n) for n in named):
        if number.status in WITH_CARRIER or number.status is NumberStatus.IN_REVIEW or number.awaiting_fix:
            number.awaiting_fix = False
            step.move(number, NumberStatus.CANCELED, "CANCELED_BY_CUSTOMER", canceled_reason)
        elif number.status is NumberStatus.SCHEDULED:
            refusal = _scheduled_refusal(request, number, data, now)
            if refusal is None:
                step.move(number, NumberStatus.CANCELING, "CANCELING",
                          "The cancellation was asked of the losing carrier; the number is canceled when it confirms.")
            else:
                refused.setdefault(refusal, []).append(number)
        elif number.status is NumberStatus.COMPLETED:
            refused.setdefault(ALREADY_COMPLETED, []).append(number)
        else:
            step.ignore(number, "NOTHING_TO_CANCEL", f"the number is {number.status.value}")
    for refusal, numbers in refused.items():
        _deny(step, request, asked_by, refusal, numbers)
    return step.finish()


def _scheduled_refusal(request: PortInRequest, number: NumberState, data: CancelRequested,
                       now: datetime) -> Refusal | None:
    assert number.port_date is not None
    policy = number.requirements.cancellation_policy if number.requirements else CancellationPolicyKind.NORTH_AMERICAN
    calendar = request.number_calendar(number)
    return late_cancellation_refusal(policy, calendar, calendar.today(now), number.port_date,
                                     data.accepts_fees_and_risk)


def _deny(step: Step, request: PortInRequest, asked_by: str, refusal: Refusal,
          numbers: list[NumberState]) -> None:
    dates = {n.port_date for n in numbers}
    for number in numbers:
        step.note(number, refusal.code, refusal.reason)
    step.decisions.publish.append(CancellationDenied(
        port_in_request_sid=request.port_in_request_sid, account_sid=request.account_sid,
        phone_numbers=[n.phone_number for n in numbers], requested_by=asked_by,
        reason_code=refusal.code, reason=refusal.reason, port_date=dates.pop() if len(dates) == 1 else None,
        notification_emails=request.details.notification_emails, webhook_url=request.details.webhook_url,
    ))
