"""The PortInRequest aggregate: a request's numbers, their states, and the decisions each event makes.

`decide(request, event, now)` is the whole domain seen from outside: given the request as
stored (None when unseen) and one inbound event, it returns the request as it is now and the
decisions to carry out. Nothing here does I/O; the current time is an argument.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from schemas.secrets_in_text import redact_secrets
from schemas.types import LONG_TEXT_MAX

from schemas import (
    CancelRequested,
    CarrierResponded,
    CloudEvent,
    PortabilityChecked,
    PortRequested,
    PortScheduled,
    RequestStatus,
)

from . import cancellation, carrier, intake, parking, timers
from .calendar import BusinessCalendar
from .decisions import Decisions, TimerKind
from .numbers import ENDED_REQUEST, NumberState


class PortInRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port_in_request_sid: str
    account_sid: str
    # The revision whose details (documents, PIN, account number, ...) the request holds ...
    revision: int
    # ... and the highest revision seen, applied or not: its portability check is not early.
    latest_revision: int
    details: PortRequested
    received_at: datetime
    revision_received_at: datetime
    status: RequestStatus = RequestStatus.IN_REVIEW
    numbers: dict[str, NumberState]

    @property
    def ended(self) -> bool:
        return self.status in ENDED_REQUEST

    def number(self, phone_number: str) -> NumberState:
        return self.numbers[phone_number]

    def unknown_numbers(self, phone_numbers: list[str]) -> list[str]:
        return sorted({n for n in phone_numbers if n not in self.numbers})

    def calendar(self) -> BusinessCalendar:
        """The request's own calendar (for deadlines before any number's country is known): the
        service address's country and state, in the first number's time zone."""
        address = self.details.losing_carrier_information.address
        first = next(iter(self.numbers))
        return BusinessCalendar.for_number(first, address.country, address_country=address.country,
                                           address_state=address.state)

    def number_calendar(self, number: NumberState) -> BusinessCalendar:
        address = self.details.losing_carrier_information.address
        return BusinessCalendar.for_number(number.phone_number, number.country or address.country,
                                           address_country=address.country, address_state=address.state)

    def forget_secrets(self) -> None:
        """DESIGN 9: PIN and account number are deleted when the request ends."""
        details = self.details
        self.details = details.model_copy(update={
            "phone_numbers": [n.model_copy(update={"pin": None}) for n in details.phone_numbers],
            "losing_carrier_information": details.losing_carrier_information.model_copy(
                update={"account_number": None}),
        })

    def masked(self, text: str | None, limit: int = LONG_TEXT_MAX) -> str | None:
        """Free text from outside (a carrier's reason) with this request's PINs and account
        number masked, and any value it quotes after such a word: only PortSubmitted carries them.
        At most `limit` characters (the contract's LongText), masks included."""
        details = self.details
        known = [n.pin for n in details.phone_numbers]
        known.append(details.losing_carrier_information.account_number)
        return redact_secrets(text, known, limit=limit)

    @property
    def has_secrets(self) -> bool:
        details = self.details
        return bool(details.losing_carrier_information.account_number or any(n.pin for n in details.phone_numbers))

    # The events, one method each; `decide` below picks the method.

    @classmethod
    def receive(cls, event: CloudEvent[PortRequested], now: datetime) -> tuple[PortInRequest, Decisions]:
        return intake.receive(cls, event, now)

    def revise(self, event: CloudEvent[PortRequested], now: datetime) -> Decisions:
        return intake.revise(self, event, now)

    def portability_checked(self, event: CloudEvent[PortabilityChecked], now: datetime) -> Decisions:
        return intake.portability_checked(self, event, now)

    def carrier_responded(self, event: CloudEvent[CarrierResponded], now: datetime) -> Decisions:
        return carrier.carrier_responded(self, event, now)

    def port_scheduled(self, event: CloudEvent[PortScheduled], now: datetime) -> Decisions:
        return carrier.port_scheduled(self, event, now)

    def cancel_requested(self, event: CloudEvent[CancelRequested], now: datetime) -> Decisions:
        return cancellation.cancel_requested(self, event, now)

    def timer_fired(self, kind: TimerKind, data: dict[str, Any], *, due_at: datetime, cause_id: str,
                    now: datetime) -> Decisions:
        return timers.timer_fired(self, kind, data, due_at=due_at, cause_id=cause_id, now=now)


def decide(request: PortInRequest | None, event: CloudEvent[Any], now: datetime) -> tuple[PortInRequest | None, Decisions]:
    """The request after `event`, and what to carry out. An event other than PortRequested for a
    request not seen yet is parked: it overtook its request across topics (DESIGN 4). A parked
    event is watched by a timer, so one whose request never comes is not kept silently."""
    request, decided = _decide(request, event, now)
    if decided.parked:
        decided.timers.append(parking.watch(event, now))
    return request, decided


def _decide(request: PortInRequest | None, event: CloudEvent[Any], now: datetime) -> tuple[PortInRequest | None, Decisions]:
    data = event.data
    if isinstance(data, PortRequested):
        if request is None:
            return PortInRequest.receive(event, now)
        return request, request.revise(event, now)
    if request is None:
        return None, Decisions.park(f"port-in request {data.port_in_request_sid} not seen yet")
    handlers = {
        PortabilityChecked: request.portability_checked,
        CarrierResponded: request.carrier_responded,
        PortScheduled: request.port_scheduled,
        CancelRequested: request.cancel_requested,
    }
    handler = handlers.get(type(data))
    if handler is None:
        raise TypeError(f"the workflow does not take {type(data).__name__}")
    return request, handler(event, now)  # type: ignore[operator]


def decide_in_order(request: PortInRequest | None, events: list[CloudEvent[Any]], now: datetime,
                    ) -> tuple[PortInRequest | None, list[Decisions]]:
    """One request's events in the order they arrived, each seeing the state the last one left.
    Also how parked events are applied once their request arrives: the ones still early
    (a check of a revision not yet received) come back parked again."""
    decisions = []
    for event in events:
        request, decided = decide(request, event, now)
        decisions.append(decided)
    return request, decisions
