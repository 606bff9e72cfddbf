"""A request comes in, is checked for portability, reviewed, and submitted to the losing carrier."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from schemas import (
    CloudEvent,
    NumberPortability,
    NumberStatus,
    PortabilityChecked,
    PortabilityReason,
    PortRequested,
    PortSubmitted,
    RequestedNumber,
)

from .decisions import Decisions, TimerKind
from .numbers import NumberState, RejectedBy
from .review import review_number
from .step import Step, timer_key

if TYPE_CHECKING:
    from .request import PortInRequest

# DESIGN 4: "The review decides within one business day of receipt". The country's own review
# SLA comes with the portability check, when the review is decided at once; before it, this.
REVIEW_SLA_BUSINESS_DAYS = 1
# Portability answers that still go to review: the manual (international) track, and missing
# PIN or account number, which the review names precisely so the customer can fix it.
REVIEWED_ANYWAY = {PortabilityReason.MANUAL_PORTING_AVAILABLE, PortabilityReason.MISSING_REQUIRED_FIELDS}
# Not-portable answers a corrected revision may change: a check that failed on our side.
CHECK_AGAIN_ON_REVISION = {str(PortabilityReason.ERROR_INTERNAL_SERVER_ERROR.value),
                           str(PortabilityReason.MISSING_REQUIRED_FIELDS.value)}

NOT_PORTABLE_TEXT = {
    PortabilityReason.INVALID_PHONE_NUMBER: "The number is not a valid phone number in E.164 format.",
    PortabilityReason.UNSUPPORTED: "Numbers of this country, type, carrier or rate center cannot be ported.",
    PortabilityReason.ALREADY_IN_THE_TARGET_ACCOUNT: "The number is already in the target account.",
    PortabilityReason.ALREADY_IN_TWILIO_DIFFERENT_OWNER: "The number already belongs to another customer.",
    PortabilityReason.ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS: "The number is already in another of your accounts.",
    PortabilityReason.ERROR_INTERNAL_SERVER_ERROR: "The number could not be checked because of an internal error.",
    PortabilityReason.UNAUTHORIZED: "The request's account may not port numbers into the target account.",
    PortabilityReason.MISSING_REQUIRED_FIELDS: "The number needs details the request does not give.",
    PortabilityReason.MANUAL_PORTING_AVAILABLE: "The number can only be ported manually.",
}


def _distinct_numbers(details: PortRequested) -> list[str]:
    # A number listed twice is ported once.
    return list(dict.fromkeys(n.phone_number for n in details.phone_numbers))


def receive(cls: type[PortInRequest], event: CloudEvent[PortRequested], now: datetime) -> tuple[PortInRequest, Decisions]:
    data = event.data
    request = cls(
        port_in_request_sid=data.port_in_request_sid, account_sid=data.account_sid, revision=data.revision,
        latest_revision=data.revision, details=data, received_at=now, revision_received_at=now,
        numbers={n: NumberState(phone_number=n) for n in _distinct_numbers(data)},
    )
    step = Step(request, event.attributes.id, now, new_request=True)
    for number in request.numbers.values():
        step.move(number, NumberStatus.IN_REVIEW, status_from=None)
    _schedule_review_sla(step, now)
    return request, step.finish()


def _schedule_review_sla(step: Step, now: datetime) -> None:
    request = step.request
    due = request.calendar().deadline(now, REVIEW_SLA_BUSINESS_DAYS)
    step.schedule(TimerKind.REVIEW_SLA, timer_key(request.port_in_request_sid), due, revision=request.revision)


def _awaits_correction(number: NumberState) -> bool:
    if number.status is NumberStatus.IN_REVIEW:
        return True
    if number.status is NumberStatus.PORT_REJECTED:
        return number.awaiting_fix
    return number.status is NumberStatus.NOT_PORTABLE and number.reason_code in CHECK_AGAIN_ON_REVISION


def revise(request: PortInRequest, event: CloudEvent[PortRequested], now: datetime) -> Decisions:
    """A higher revision resubmits corrected details for the numbers that wait for them (rejected
    by review or by the carrier); numbers already with the carrier are left alone."""
    data = event.data
    if data.account_sid != request.account_sid:
        return Decisions.refuse(f"revision {data.revision} names account {data.account_sid}, "
                                f"but the request belongs to {request.account_sid}")
    if unknown := request.unknown_numbers(_distinct_numbers(data)):
        return Decisions.refuse(f"revision {data.revision} names numbers not in the request: {', '.join(unknown)}")
    step = Step(request, event.attributes.id, now)
    if data.revision <= request.latest_revision:
        code = "REVISION_ALREADY_RECEIVED" if data.revision == request.latest_revision else "REVISION_SUPERSEDED"
        step.ignore(None, code, f"revision {data.revision} arrived after revision {request.latest_revision}")
        return step.finish()
    request.latest_revision = data.revision
    named = set(_distinct_numbers(data))
    corrected = [n for n in request.numbers.values() if n.phone_number in named and _awaits_correction(n)]
    if not corrected:
        step.ignore(None, "NOTHING_TO_RESUBMIT",
                    f"revision {data.revision} names no number that waits for corrected details")
        return step.finish()
    request.details, request.revision, request.revision_received_at = data, data.revision, now
    step.note(None, "REVISION_RECEIVED", f"revision {data.revision} received")
    for number in corrected:
        number.awaiting_fix, number.rejected_by, number.checked_revision = False, None, None
        number.proposed_port_date = number.port_date = None
        if number.status is not NumberStatus.IN_REVIEW:
            step.move(number, NumberStatus.IN_REVIEW, "REVISION_RECEIVED",
                      f"Corrected details received (revision {data.revision}); the number is reviewed again.")
    _schedule_review_sla(step, now)
    return step.finish()


def portability_checked(request: PortInRequest, event: CloudEvent[PortabilityChecked], now: datetime) -> Decisions:
    """The review starts only when the check of the request's current revision has arrived."""
    data = event.data
    if unknown := request.unknown_numbers([r.phone_number for r in data.results]):
        return Decisions.refuse(f"portability results for numbers not in the request: {', '.join(unknown)}")
    if data.revision > request.latest_revision:
        return Decisions.park(f"portability check of revision {data.revision}, whose request has not arrived")
    step = Step(request, event.attributes.id, now)
    if data.revision != request.revision:
        step.ignore(None, "CHECK_SUPERSEDED",
                    f"portability check of revision {data.revision}; the request is at revision {request.revision}")
        return step.finish()
    results: dict[str, NumberPortability] = {}
    for result in data.results:
        results.setdefault(result.phone_number, result)
    waiting = [n for n in request.numbers.values()
               if n.status is NumberStatus.IN_REVIEW and n.phone_number in results and n.checked_revision is None]
    if not waiting:
        step.ignore(None, "NOTHING_IN_REVIEW", f"no number of revision {data.revision} waits for its check")
        return step.finish()
    reviewable = [n for n in waiting if _record_check(step, n, results[n.phone_number], data.revision)]
    passed = [n for n in reviewable if _review(step, request, n, now)]
    if passed:
        _submit(step, request, passed, now)
    return step.finish()


def _record_check(step: Step, number: NumberState, result: NumberPortability, revision: int) -> bool:
    """Keep what the check says of the number; False when it ends not_portable."""
    number.checked_revision, number.country = revision, result.country
    number.pin_and_account_number_required = result.pin_and_account_number_required
    number.requirements = result.requirements
    code = result.not_portable_reason_code
    if result.portable or (code in REVIEWED_ANYWAY and result.requirements is not None):
        return True
    text = NOT_PORTABLE_TEXT.get(code, result.not_portable_reason or "The number cannot be ported.") if code else \
        (result.not_portable_reason or "The number cannot be ported.")
    step.move(number, NumberStatus.NOT_PORTABLE, str(code.value) if code else "NOT_PORTABLE", text)
    return False


def _review(step: Step, request: PortInRequest, number: NumberState, now: datetime) -> bool:
    assert number.requirements is not None
    calendar = request.number_calendar(number)
    failures = review_number(
        request.details, number.phone_number, requirements=number.requirements,
        pin_and_account_number_required=number.pin_and_account_number_required,
        calendar=calendar, today=calendar.today(now),
    )
    if not failures:
        return True
    number.rejected_by, number.awaiting_fix = RejectedBy.REVIEW, True
    step.move(number, NumberStatus.PORT_REJECTED, failures[0].code, " ".join(f.fix for f in failures))
    return False


def _submit(step: Step, request: PortInRequest, passed: list[NumberState], now: datetime) -> None:
    """One PortSubmitted carries every number that passed: the only event with PIN and account number."""
    details = request.details
    pins = {}
    for requested in details.phone_numbers:
        pins.setdefault(requested.phone_number, requested.pin)
    for number in passed:
        number.submitted_revision = request.revision
        step.move(number, NumberStatus.PORT_SUBMITTED)
    step.decisions.publish.append(PortSubmitted(
        port_in_request_sid=request.port_in_request_sid, account_sid=request.account_sid,
        revision=request.revision,
        phone_numbers=[RequestedNumber(phone_number=n.phone_number, pin=pins.get(n.phone_number)) for n in passed],
        losing_carrier_information=details.losing_carrier_information,
        target_port_in_date=details.target_port_in_date,
        target_port_in_time_range_start=details.target_port_in_time_range_start,
        target_port_in_time_range_end=details.target_port_in_time_range_end,
        submitted_at=now,
    ))
    # One carrier SLA per submission: the longest of its numbers' countries, from their calendar.
    slowest = max(passed, key=lambda n: n.requirements.carrier_sla_business_days if n.requirements else 0)
    days = slowest.requirements.carrier_sla_business_days if slowest.requirements else 5
    due = request.number_calendar(slowest).deadline(now, days)
    step.schedule(TimerKind.CARRIER_SLA, timer_key(request.port_in_request_sid, request.revision), due,
                  revision=request.revision, business_days=days)
