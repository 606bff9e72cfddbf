"""Shared types of the porting event contract: identifiers, statuses and reason codes.

Names and values follow the public Port In and Portability APIs so that events and
webhooks read like the ones operators already know.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from enum import Enum, IntEnum
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

# E.164: a plus, a country code not starting with 0, at most 15 digits in all; ASCII digits only.
# Never \d: in Python's re and in pydantic's Rust regex it matches any Unicode digit, so a
# full-width or Arabic-Indic digit would pass, and phonenumbers reads it as the ASCII one.
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
_E164 = re.compile(E164_PATTERN)


def is_e164(value: str) -> bool:
    """Whether the whole value is E.164 syntax. A full match: `$` alone also matches before a final newline."""
    return _E164.fullmatch(value) is not None


# Text from outside carries no control characters (C0 and DEL; long text may hold tabs and line
# breaks): a NUL cannot be stored in PostgreSQL text at all, so a request carrying one passed
# the first service and was dead-lettered by the next, after its check had been published.
# Refused here, at the contract, every consumer refuses it first and alike, with the reason.
# C1 (\x80-\x9f, e.g. an 8-bit CSI) as the envelope's headers refuse it too.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]*$"
NO_CONTROL_CHARACTERS_BUT_LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_NOT_CONTROL_OR_SPACE = r"[^@\s\x00-\x1f\x7f-\x9f]+"
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # the envelope's headers refuse these too


def without_control_characters(text: str) -> str:
    """A peer's text (an SMTP reply, an HTTP error) made fit for the contract's text and for
    PostgreSQL: each control character shown as U+FFFD, so it is seen, not acted on."""
    return CONTROL_CHARACTER.sub("\ufffd", text)

# Dates and times of the porting domain lie in years 2000-2999. Python's calendar ends at years 1
# and 9999, so a port date at either end passed the contract and then overflowed a service's
# arithmetic (a window moved to UTC, a reminder days before it): refused here, naming the field.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
PortingDate = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY)]


def within_porting_calendar(moment: datetime) -> bool:
    """Whether the moment's day in UTC lies in years 2000-2999 (9999-12-31T23:59:59-14:00 is past
    Python's calendar in UTC: not within, rather than an OverflowError)."""
    try:
        return FIRST_DAY <= moment.astimezone(UTC).date() <= LAST_DAY
    except OverflowError:
        return False


def _within_the_porting_calendar(value: datetime) -> datetime:
    if not within_porting_calendar(value):
        raise ValueError(f"must lie in years {FIRST_DAY.year}-{LAST_DAY.year}")
    return value


def _local_time(value: time) -> time:
    # A window's times are read in the time zone given beside them; an offset on one end (and
    # not the other) made the window's own check fail with a TypeError instead of a reason.
    if value.tzinfo is not None:
        raise ValueError("must be a local time without an offset (the time zone is given apart)")
    return value


PortingMoment = Annotated[datetime, AfterValidator(_within_the_porting_calendar)]
# Day counts of a country's rules, bounded (a year of business days, ten years of calendar days)
# so neither the coverage file nor a forged check can push date arithmetic past the calendar.
BusinessDays = Annotated[int, Field(ge=0, le=260)]
CalendarDays = Annotated[int, Field(ge=1, le=3650)]
LocalTime = Annotated[time, AfterValidator(_local_time)]

PhoneNumberE164 = Annotated[str, StringConstraints(pattern=E164_PATTERN)]
# A number as the customer typed it: kept unparsed (bounded) so one malformed number
# becomes that number's 22102 result instead of losing the whole request.
# Answers echo it whatever it holds (the Portability API answers a number in its path as 22102).
PhoneNumberAsGiven = Annotated[str, StringConstraints(min_length=1, max_length=32)]
# A number in an event from outside: as given, without control characters.
RequestedPhoneNumber = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=NO_CONTROL_CHARACTERS)]
# A request's revision: its corrections counted from 1. Bounded by PostgreSQL's integer, in
# which the workflow keeps it (2^63 once passed the portability check and failed the workflow).
REVISION_MAX = 2**31 - 1
Revision = Annotated[int, Field(ge=1, le=REVISION_MAX)]
PortInRequestSid = Annotated[str, StringConstraints(pattern=r"^KW[0-9a-fA-F]{32}$")]
AccountSid = Annotated[str, StringConstraints(pattern=r"^AC[0-9a-fA-F]{32}$")]
AddressSid = Annotated[str, StringConstraints(pattern=r"^AD[0-9a-fA-F]{32}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
EmailAddress = Annotated[str, StringConstraints(
    pattern=rf"^{_NOT_CONTROL_OR_SPACE}@{_NOT_CONTROL_OR_SPACE}\.{_NOT_CONTROL_OR_SPACE}$", max_length=254)]
SHORT_TEXT_MAX, LONG_TEXT_MAX = 200, 2000
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=SHORT_TEXT_MAX, pattern=NO_CONTROL_CHARACTERS)]
LongText = Annotated[str, StringConstraints(max_length=LONG_TEXT_MAX, pattern=NO_CONTROL_CHARACTERS_BUT_LINES)]


class NumberType(str, Enum):
    LOCAL = "LOCAL"
    MOBILE = "MOBILE"
    TOLL_FREE = "TOLL-FREE"
    UNKNOWN = "UNKNOWN"


class PortabilityReason(IntEnum):
    """The Portability API's not-portable reason codes; the name is the API's reason."""

    INVALID_PHONE_NUMBER = 22102
    UNSUPPORTED = 22130
    ALREADY_IN_THE_TARGET_ACCOUNT = 22131
    ALREADY_IN_TWILIO_DIFFERENT_OWNER = 22132
    MANUAL_PORTING_AVAILABLE = 22133
    ERROR_INTERNAL_SERVER_ERROR = 22135
    ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS = 22136
    MISSING_REQUIRED_FIELDS = 22171
    UNAUTHORIZED = 20003


class CarrierRejectionReason(str, Enum):
    INVALID_PIN = "INVALID_PIN"
    INVALID_ACCOUNT_NUMBER = "INVALID_ACCOUNT_NUMBER"
    INVALID_ADDRESS = "INVALID_ADDRESS"
    INVALID_END_USER_NAME = "INVALID_END_USER_NAME"
    PHONE_NUMBER_INACTIVE_OR_DISCONNECTED = "PHONE_NUMBER_INACTIVE_OR_DISCONNECTED"
    PHONE_NUMBER_WITH_CARRIER_RESTRICTION = "PHONE_NUMBER_WITH_CARRIER_RESTRICTION"
    CONTACT_SUPPORT_REQUIRED = "CONTACT_SUPPORT_REQUIRED"


class NumberStatus(str, Enum):
    IN_REVIEW = "in_review"
    PORT_SUBMITTED = "port_submitted"
    PORT_PENDING = "port_pending"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    NOT_PORTABLE = "not_portable"
    PORT_REJECTED = "port_rejected"
    CANCELING = "canceling"
    CANCELED = "canceled"


class RequestStatus(str, Enum):
    IN_REVIEW = "in_review"
    IN_PROGRESS = "in_progress"
    ACTION_REQUIRED = "action_required"
    COMPLETED = "completed"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class CarrierOutcome(str, Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ACTIVATED = "activated"
    # The losing carrier confirms a late (international) cancellation: the number stays with it.
    CANCELED = "canceled"


class CustomerType(str, Enum):
    BUSINESS = "Business"
    INDIVIDUAL = "Individual"


class DocumentKind(str, Enum):
    LETTER_OF_AUTHORIZATION = "letter_of_authorization"
    UTILITY_BILL = "utility_bill"
    CUSTOMER_SERVICE_RECORD = "customer_service_record"


class PortingTrack(str, Enum):
    """How a portable number is ported: through the carrier API, or by the manual process."""

    API = "api"
    MANUAL = "manual"


class CancellationPolicyKind(str, Enum):
    # US and Canada: cancellable until a port date is scheduled, never after.
    NORTH_AMERICAN = "north_american"
    # International: after scheduling only with 3 business days' notice and accepted fees.
    INTERNATIONAL = "international"


class AlertKind(str, Enum):
    REVIEW_SLA_BREACHED = "review_sla_breached"
    CARRIER_SLA_BREACHED = "carrier_sla_breached"
    PORT_DATE_OVERDUE = "port_date_overdue"
    DELIVERY_GAVE_UP = "delivery_gave_up"
    # An event waited (parked) too long for the request it belongs to, which never arrived.
    ORPHANED_EVENT = "orphaned_event"
