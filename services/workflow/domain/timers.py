"""What a due timer decides. A timer whose reason went away (the review decided, the carrier
answered, the number activated) was cancelled when it did; one that fires anyway (cancelled in
the same instant) finds nothing to do and decides nothing."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from schemas import AlertKind, NumberStatus, PortAlertRaised, RequestStatus

from .decisions import Decisions, TimerKind
from .numbers import NumberState
from .step import Step

if TYPE_CHECKING:
    from .request import PortInRequest


def timer_fired(request: PortInRequest, kind: TimerKind, data: dict[str, Any], *, due_at: datetime,
                cause_id: str, now: datetime) -> Decisions:
    step = Step(request, cause_id, now)
    numbers = list(request.numbers.values())
    if kind is TimerKind.REVIEW_SLA:
        late = [n for n in numbers if n.status is NumberStatus.IN_REVIEW]
        _alert(step, AlertKind.REVIEW_SLA_BREACHED, late, due_at,
               "No review decision within the review SLA: the portability check of revision "
               f"{request.revision} has not arrived, or the review could not decide.")
    elif kind is TimerKind.CARRIER_SLA:
        revision = int(data["revision"])
        waiting = [n for n in numbers if n.status is NumberStatus.PORT_SUBMITTED and n.submitted_revision == revision]
        days = data.get("business_days")
        _alert(step, AlertKind.CARRIER_SLA_BREACHED, waiting, due_at,
               f"The losing carrier has not answered revision {revision}"
               + (f" within {days} business days." if days else " within its SLA.") + " Follow up with the carrier.")
    elif kind is TimerKind.PORT_DATE_REMINDER:
        _remind(step, request, _on_date(numbers, data, {NumberStatus.SCHEDULED}), now)
    elif kind is TimerKind.PORT_DATE_OVERDUE:
        overdue = _on_date(numbers, data, {NumberStatus.SCHEDULED, NumberStatus.CANCELING})
        _alert(step, AlertKind.PORT_DATE_OVERDUE, overdue, due_at,
               f"The port window of {data['port_date']} ended and the numbers are not activated "
               "(or their cancellation is not confirmed). Check with the losing carrier.")
    elif kind is TimerKind.ACTION_REQUIRED_EXPIRY:
        _expire(step, request)
    return step.finish(reason_code="EXPIRED" if kind is TimerKind.ACTION_REQUIRED_EXPIRY else None,
                       reason=EXPIRED_TEXT if kind is TimerKind.ACTION_REQUIRED_EXPIRY else None)


EXPIRED_TEXT = ("No corrected details arrived within 30 days of the rejection; the rejected numbers will "
                "not be ported. Send a new port-in request to try again.")


def _on_date(numbers: list[NumberState], data: dict[str, Any], statuses: set[NumberStatus]) -> list[NumberState]:
    day = date.fromisoformat(data["port_date"])
    return [n for n in numbers if n.status in statuses and n.port_date == day]


def _alert(step: Step, alert: AlertKind, numbers: list[NumberState], due_at: datetime, message: str) -> None:
    """For the ops desk: an SLA breached, a port date overdue. Nothing left waiting, no alert."""
    if not numbers:
        return
    step.decisions.publish.append(PortAlertRaised(
        port_in_request_sid=step.request.port_in_request_sid, alert=alert, message=message,
        phone_numbers=[n.phone_number for n in numbers], due_at=due_at, raised_at=step.now,
        country=numbers[0].country or step.request.details.losing_carrier_information.address.country,
    ))
    step.note(None, alert.name, message)


def _remind(step: Step, request: PortInRequest, numbers: list[NumberState], now: datetime) -> None:
    """Seed 000: configure voice and SMS routing before the port date. The customer's e-mail is
    the notifier's: it schedules it from the PortStatusChanged that announced the date, so
    publishing one here too would send it twice. The workflow records that the moment came."""
    if not numbers:
        return
    step.note(None, "PORT_DATE_REMINDER",
              f"routing reminder due for the port on {numbers[0].port_date}: "
              + ", ".join(n.phone_number for n in numbers))


def _expire(step: Step, request: PortInRequest) -> None:
    """DESIGN 4: "no fix in 30 days expires the request". The numbers that waited for a fix
    stop waiting; others still porting carry on, and the request ends with them."""
    if request.status is not RequestStatus.ACTION_REQUIRED:
        return
    for number in request.numbers.values():
        if number.awaiting_fix:
            number.awaiting_fix, number.expired = False, True
            step.note(number, "EXPIRED", EXPIRED_TEXT)
