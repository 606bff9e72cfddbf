"""Events and requests to drive the workflow domain with, at a fixed time.

tests/integration/test_workflow_support.py builds the workflow service's events with them too, from
its own numbers, secrets and time; so a request is named by itself or by its sid."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from schemas import (
    CancellationPolicyKind,
    CancelRequested,
    CarrierNumberResponse,
    CarrierOutcome,
    CarrierResponded,
    CloudEvent,
    EventAttributes,
    NumberPortability,
    NumberType,
    PortabilityChecked,
    PortabilityReason,
    PortingEvent,
    PortingRequirements,
    PortingTrack,
    PortRequested,
    PortScheduled,
)
from workflow.domain import Decisions, PortInRequest, decide

from ...factories import account_sid, request_sid

# Monday 1 February 2027, 10:00 in San Francisco: a business day in the US and Canada.
NOW = datetime(2027, 2, 1, 18, 0, tzinfo=UTC)
US_NUMBER, US_NUMBER_2, CA_NUMBER, GB_NUMBER = "+14155550100", "+14155550101", "+15145550100", "+442071234567"
REPRESENTATIVE = "Ada Lovelace"

US = PortingRequirements(track=PortingTrack.API, min_notice_business_days=3,
                         cancellation_policy=CancellationPolicyKind.NORTH_AMERICAN)
CA = PortingRequirements(track=PortingTrack.API, bill_max_age_days=30, customer_service_record_required=True,
                         fee_per_number=Decimal("25.00"), fee_currency="CAD", min_notice_business_days=5,
                         cancellation_policy=CancellationPolicyKind.NORTH_AMERICAN)
INTERNATIONAL = PortingRequirements(track=PortingTrack.MANUAL, fee_acknowledgement_required=True,
                                    min_notice_business_days=10,
                                    cancellation_policy=CancellationPolicyKind.INTERNATIONAL,
                                    carrier_sla_business_days=10)
COUNTRY_OF = {US_NUMBER: "US", US_NUMBER_2: "US", CA_NUMBER: "CA", GB_NUMBER: "GB"}
REQUIREMENTS_OF = {"US": US, "CA": CA, "GB": INTERNATIONAL}
ADDRESSES = {
    "US": {"street": "1 Market St", "city": "San Francisco", "state": "CA", "zip": "94105", "country": "US"},
    "CA": {"street": "1000 Rue Sherbrooke O", "city": "Montréal", "state": "QC", "zip": "H3A 3R2", "country": "CA"},
    "GB": {"street": "10 Downing St", "city": "London", "state": "London", "zip": "SW1A 2AA", "country": "GB"},
}


def cloud(data: PortingEvent, event_id: str | None = None) -> CloudEvent[Any]:
    attributes = EventAttributes(id=event_id or str(uuid.uuid4()), source="test", type=data.event_type,
                                 subject=data.subject, time=NOW, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    return CloudEvent(attributes=attributes, data=data)


def documents(country: str = "US", *, signer: str = REPRESENTATIVE, bill_dated: date = date(2027, 1, 20),
              csr: bool = True) -> list[dict[str, Any]]:
    docs = [{"document_sid": "loa-1", "kind": "letter_of_authorization", "dated": "2027-01-25", "signed_by": signer}]
    if country == "CA":
        docs.append({"document_sid": "bill-1", "kind": "utility_bill", "dated": bill_dated.isoformat()})
        if csr:
            docs.append({"document_sid": "csr-1", "kind": "customer_service_record", "dated": "2027-01-22"})
    return docs


def port_requested(*numbers: str, country: str = "US", sid: str | None = None, account: str | None = None,
                   revision: int = 1, pins: dict[str, str | None] | None = None, account_number: str | None = "ACC-991",
                   target: date | None = date(2027, 3, 2), **overrides: Any) -> PortRequested:
    numbers = numbers or (US_NUMBER,)
    pins = pins or {}
    payload: dict[str, Any] = {
        "port_in_request_sid": sid or request_sid(),
        "account_sid": account or account_sid(),
        "revision": revision,
        "phone_numbers": [{"phone_number": n, "pin": pins.get(n, "4412")} for n in numbers],
        "losing_carrier_information": {
            "customer_name": "Ada Lovelace", "account_number": account_number,
            "authorized_representative": REPRESENTATIVE, "authorized_representative_email": "ada@example.com",
            "customer_type": "Business", "address": overrides.pop("address", ADDRESSES[country]),
        },
        "notification_emails": ["ada@example.com"],
        "target_port_in_date": target.isoformat() if target else None,
        "documents": overrides.pop("documents", documents(country)),
        "webhook_url": "https://customer.example.com/hooks",
    }
    payload.update(overrides)
    return PortRequested.model_validate(payload)


def portable(number: str, *, country: str | None = None, requirements: PortingRequirements | None = None,
             pin_required: bool = False, number_type: NumberType = NumberType.LOCAL,
             reason: PortabilityReason | None = None) -> NumberPortability:
    """The answer for a number of `country`: portable unless `reason` says why not or only manual porting is."""
    country = country or COUNTRY_OF[number]
    requirements = requirements or REQUIREMENTS_OF[country]
    if reason is None and requirements.track is PortingTrack.MANUAL:
        reason = PortabilityReason.MANUAL_PORTING_AVAILABLE
    return NumberPortability(
        phone_number=number, portable=reason is None, pin_and_account_number_required=pin_required,
        number_type=number_type, country=country, requirements=requirements,
        not_portable_reason=reason.name if reason else None, not_portable_reason_code=reason,
    )


def not_portable(number: str, reason: PortabilityReason) -> NumberPortability:
    return NumberPortability(phone_number=number, portable=False, pin_and_account_number_required=False,
                             number_type=NumberType.LOCAL, country=COUNTRY_OF.get(number),
                             not_portable_reason=reason.name, not_portable_reason_code=reason)


def checked(request: PortRequested, *results: NumberPortability, revision: int | None = None,
            at: datetime = NOW) -> PortabilityChecked:
    results = results or tuple(portable(n.phone_number) for n in request.phone_numbers)
    return PortabilityChecked(port_in_request_sid=request.port_in_request_sid, account_sid=request.account_sid,
                              revision=revision or request.revision, results=list(results), checked_at=at)


Request = PortRequested | PortInRequest | str  # a request, or its sid


def sid_of(request: Request) -> str:
    return request if isinstance(request, str) else request.port_in_request_sid


def carrier(request: Request, *responses: tuple[str, CarrierOutcome] | CarrierNumberResponse,
            losing_carrier: str = "Pacific Bell") -> CarrierResponded:
    answers = [r if isinstance(r, CarrierNumberResponse) else CarrierNumberResponse(phone_number=r[0], outcome=r[1])
               for r in responses]
    return CarrierResponded(port_in_request_sid=sid_of(request), losing_carrier=losing_carrier, responses=answers)


def rejected(number: str, code: str = "INVALID_PIN", text: str = "The PIN does not match") -> CarrierNumberResponse:
    return CarrierNumberResponse(phone_number=number, outcome=CarrierOutcome.REJECTED,
                                 rejection_reason_code=code, rejection_reason=text)


def scheduled(request: Request, *numbers: str, on: date = date(2027, 3, 2),
              start: time = time(9), end: time = time(12), zone: str = "America/Los_Angeles") -> PortScheduled:
    return PortScheduled(port_in_request_sid=sid_of(request), phone_numbers=list(numbers),
                         port_date=on, port_time_range_start=start, port_time_range_end=end, time_zone=zone)


def cancel(request: Request, *numbers: str, accepts_fees_and_risk: bool = False) -> CancelRequested:
    return CancelRequested(port_in_request_sid=sid_of(request), phone_numbers=list(numbers) or None,
                           requested_by="ada@example.com", accepts_fees_and_risk=accepts_fees_and_risk)


class Desk:
    """One request driven through the domain, keeping every decision made."""

    def __init__(self, request: PortInRequest | None = None) -> None:
        self.request = request
        self.decisions: list[Decisions] = []

    def apply(self, data: PortingEvent, now: datetime = NOW, event_id: str | None = None) -> Decisions:
        self.request, decisions = decide(self.request, cloud(data, event_id), now)
        self.decisions.append(decisions)
        return decisions

    def status_of(self, number: str) -> str:
        assert self.request is not None
        return self.request.number(number).status.value

    @property
    def published(self) -> list[PortingEvent]:
        return [event for d in self.decisions for event in d.publish]


def submitted_desk(*numbers: str, country: str = "US", now: datetime = NOW, **overrides: Any) -> tuple[Desk, PortRequested]:
    """A request received, checked and submitted to the losing carrier."""
    desk, request = Desk(), port_requested(*numbers, country=country, **overrides)
    desk.apply(request, now)
    desk.apply(checked(request), now)
    return desk, request
