"""Events published by upstream systems: a portal, carrier integrations, the ops desk."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, StringConstraints, field_validator, model_validator

from .base import ContractModel, PortingEvent
from .types import (
    FIRST_DAY,
    LAST_DAY,
    AccountSid,
    CarrierOutcome,
    CarrierRejectionReason,
    CountryCode,
    CustomerType,
    DocumentKind,
    EmailAddress,
    LocalTime,
    NO_CONTROL_CHARACTERS,
    LongText,
    PhoneNumberE164,
    PortingDate,
    PortingMoment,
    PortInRequestSid,
    RequestedPhoneNumber,
    Revision,
    ShortText,
    within_porting_calendar,
)

Secret = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)]


class ServiceAddress(ContractModel):
    street: ShortText
    street_2: ShortText | None = None
    city: ShortText
    state: ShortText
    zip: Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=NO_CONTROL_CHARACTERS)]
    country: CountryCode


class LosingCarrierInformation(ContractModel):
    customer_name: ShortText
    # Repr is hidden so a logged model never shows the account number.
    account_number: Secret | None = Field(default=None, repr=False)
    account_telephone_number: RequestedPhoneNumber | None = None
    authorized_representative: ShortText
    authorized_representative_email: EmailAddress
    customer_type: CustomerType
    address: ServiceAddress


class RequestedNumber(ContractModel):
    phone_number: RequestedPhoneNumber
    pin: Secret | None = Field(default=None, repr=False)


class PortingDocument(ContractModel):
    document_sid: ShortText
    kind: DocumentKind
    # The bill's date, the LOA's signing date or the CSR's date.
    dated: PortingDate
    signed_by: ShortText | None = None


class PortRequested(PortingEvent):
    event_type = "porting.port-requested.v1"

    port_in_request_sid: PortInRequestSid
    account_sid: AccountSid
    revision: Revision = 1
    phone_numbers: list[RequestedNumber] = Field(min_length=1, max_length=1000)
    losing_carrier_information: LosingCarrierInformation
    notification_emails: list[EmailAddress] = Field(default_factory=list, max_length=20)
    target_port_in_date: PortingDate | None = None
    target_port_in_time_range_start: LocalTime | None = None
    target_port_in_time_range_end: LocalTime | None = None
    documents: list[PortingDocument] = Field(default_factory=list, max_length=50)
    webhook_url: AnyHttpUrl | None = None
    fees_acknowledged: bool = False

    @model_validator(mode="after")
    def _time_range_is_ordered(self) -> PortRequested:
        start, end = self.target_port_in_time_range_start, self.target_port_in_time_range_end
        if start and end and start >= end:
            raise ValueError("target_port_in_time_range_start must be before its end")
        return self


class CarrierNumberResponse(ContractModel):
    phone_number: PhoneNumberE164
    outcome: CarrierOutcome
    proposed_port_date: PortingDate | None = None
    rejection_reason_code: CarrierRejectionReason | None = None
    rejection_reason: LongText | None = None

    @model_validator(mode="after")
    def _rejection_has_its_reason(self) -> CarrierNumberResponse:
        if self.outcome is CarrierOutcome.REJECTED and self.rejection_reason_code is None:
            raise ValueError("a rejected number needs its rejection_reason_code")
        if self.outcome is not CarrierOutcome.REJECTED and self.rejection_reason_code:
            raise ValueError("only a rejected number carries a rejection_reason_code")
        return self


class CarrierResponded(PortingEvent):
    event_type = "porting.carrier-responded.v1"

    port_in_request_sid: PortInRequestSid
    losing_carrier: ShortText
    responses: list[CarrierNumberResponse] = Field(min_length=1, max_length=1000)
    responded_at: PortingMoment | None = None


@cache
def _iana_time_zones() -> frozenset[str]:
    """The IANA zone names of the pinned `tzdata` package, without "Factory": the same list on
    every host, where the host's own zoneinfo has "localtime" (whatever zone the machine is set
    to), may have "right/..." and "posix/..." trees (leap seconds counted, or not), and has or
    lacks legacy links ("US/Eastern") by distribution. A port window must mean the same hour on
    every machine that reads it, and one service must not accept what another refuses."""
    names = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return frozenset(names) - {"Factory"}


class PortScheduled(PortingEvent):
    event_type = "porting.port-scheduled.v1"

    port_in_request_sid: PortInRequestSid
    phone_numbers: list[PhoneNumberE164] = Field(min_length=1, max_length=1000)
    port_date: PortingDate
    port_time_range_start: LocalTime
    port_time_range_end: LocalTime
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)]

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        if value not in _iana_time_zones():
            raise ValueError(f"unknown time zone {value!r}; an IANA name such as 'America/New_York'")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @model_validator(mode="after")
    def _window_is_ordered(self) -> PortScheduled:
        if self.port_time_range_start >= self.port_time_range_end:
            raise ValueError("port_time_range_start must be before port_time_range_end")
        return self

    @model_validator(mode="after")
    def _window_is_within_the_calendar_everywhere(self) -> PortScheduled:
        # 2000-01-01 00:00 in Etc/GMT-14 is 1999 in UTC: the overdue alert the workflow raises at the
        # window's end could not be written in the contract, and the event was dead-lettered with
        # that alert's validation error rather than its own reason.
        zone = ZoneInfo(self.time_zone)
        for name in ("port_time_range_start", "port_time_range_end"):
            if not within_porting_calendar(datetime.combine(self.port_date, getattr(self, name), zone)):
                raise ValueError(f"{name} on port_date in {self.time_zone} must lie in years "
                                 f"{FIRST_DAY.year}-{LAST_DAY.year} in UTC too")
        return self


class CancelRequested(PortingEvent):
    event_type = "porting.cancel-requested.v1"

    port_in_request_sid: PortInRequestSid
    # Absent means every number of the request.
    phone_numbers: list[PhoneNumberE164] | None = Field(default=None, min_length=1, max_length=1000)
    requested_by: ShortText
    accepts_fees_and_risk: bool = False
