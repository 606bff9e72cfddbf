"""Events the workers publish for each other and for the ops desk."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AnyHttpUrl, Field, StringConstraints

from .base import ContractModel, PortingEvent
from .inbound import LosingCarrierInformation, RequestedNumber
from .types import (
    AccountSid,
    AlertKind,
    BusinessDays,
    CalendarDays,
    CancellationPolicyKind,
    CountryCode,
    EmailAddress,
    LocalTime,
    LongText,
    NumberStatus,
    NumberType,
    PhoneNumberAsGiven,
    PhoneNumberE164,
    PortabilityReason,
    PortingDate,
    PortingMoment,
    PortingTrack,
    PortInRequestSid,
    RequestStatus,
    Revision,
    ShortText,
)

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class PortingRequirements(ContractModel):
    """What the coverage file asks of a number's port, so the workflow never reads it."""

    track: PortingTrack
    bill_max_age_days: CalendarDays | None = None
    customer_service_record_required: bool = False
    fee_per_number: Decimal | None = Field(default=None, ge=0)
    fee_currency: CurrencyCode | None = None
    fee_acknowledgement_required: bool = False
    min_notice_business_days: BusinessDays
    cancellation_policy: CancellationPolicyKind
    review_sla_business_days: Annotated[BusinessDays, Field(ge=1)] = 1
    carrier_sla_business_days: Annotated[BusinessDays, Field(ge=1)] = 5


class NumberPortability(ContractModel):
    """One number's answer, with the Portability API's field names and values."""

    phone_number: PhoneNumberAsGiven
    portable: bool
    pin_and_account_number_required: bool
    not_portable_reason: ShortText | None = None
    not_portable_reason_code: PortabilityReason | None = None
    number_type: NumberType
    country: CountryCode | None = None
    account_sid: AccountSid | None = None
    # Present for numbers that can be ported, by the API or manually.
    requirements: PortingRequirements | None = None


class PortabilityChecked(PortingEvent):
    event_type = "porting.portability-checked.v1"

    port_in_request_sid: PortInRequestSid
    account_sid: AccountSid
    revision: Revision
    results: list[NumberPortability] = Field(min_length=1, max_length=1000)
    checked_at: PortingMoment


class NumberStatusChange(ContractModel):
    phone_number: PhoneNumberAsGiven
    status_from: NumberStatus | None
    status_to: NumberStatus
    reason_code: ShortText | None = None
    reason: LongText | None = None
    # Set when the number completes and its country charges per number (Canada): the fee is
    # recorded for billing then (seed 002: "billed to your account after the port's completion").
    fee_per_number: Decimal | None = Field(default=None, ge=0)
    fee_currency: CurrencyCode | None = None


class PortStatusChanged(PortingEvent):
    """Every transition of a request. Never carries a PIN or an account number."""

    event_type = "porting.port-status-changed.v1"

    port_in_request_sid: PortInRequestSid
    account_sid: AccountSid
    status_from: RequestStatus | None
    status_to: RequestStatus
    phone_numbers: list[NumberStatusChange] = Field(max_length=1000)
    reason_code: ShortText | None = None
    reason: LongText | None = None
    port_date: PortingDate | None = None
    # The confirmed port window on port_date, in its time zone (set when a date is scheduled).
    port_time_range_start: LocalTime | None = None
    port_time_range_end: LocalTime | None = None
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    changed_at: PortingMoment
    notification_emails: list[EmailAddress] = Field(default_factory=list)
    webhook_url: AnyHttpUrl | None = None


class PortSubmitted(PortingEvent):
    """The carrier-facing order: the only event that carries the PIN and account number."""

    event_type = "porting.port-submitted.v1"

    port_in_request_sid: PortInRequestSid
    account_sid: AccountSid
    revision: Revision
    phone_numbers: list[RequestedNumber] = Field(min_length=1, max_length=1000)
    losing_carrier_information: LosingCarrierInformation
    target_port_in_date: PortingDate | None = None
    target_port_in_time_range_start: LocalTime | None = None
    target_port_in_time_range_end: LocalTime | None = None
    submitted_at: PortingMoment


class CancellationDenied(PortingEvent):
    event_type = "porting.cancellation-denied.v1"

    port_in_request_sid: PortInRequestSid
    account_sid: AccountSid
    phone_numbers: list[PhoneNumberE164] = Field(min_length=1, max_length=1000)
    requested_by: ShortText
    reason_code: ShortText
    reason: LongText
    port_date: PortingDate | None = None
    notification_emails: list[EmailAddress] = Field(default_factory=list)
    webhook_url: AnyHttpUrl | None = None


class PortAlertRaised(PortingEvent):
    event_type = "porting.port-alert-raised.v1"

    port_in_request_sid: PortInRequestSid
    alert: AlertKind
    message: LongText
    phone_numbers: list[PhoneNumberAsGiven] = Field(default_factory=list)
    due_at: PortingMoment | None = None
    raised_at: PortingMoment
    country: CountryCode | None = None
