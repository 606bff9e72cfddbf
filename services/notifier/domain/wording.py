"""Words for statuses and dates, as the customer reads them, and which numbers are Canadian."""

from __future__ import annotations

from datetime import date

import phonenumbers

from schemas import AlertKind, NumberStatus, RequestStatus
from schemas.phone_numbers import as_phone_number

NUMBER_STATUS_WORDS: dict[NumberStatus, str] = {
    NumberStatus.IN_REVIEW: "in review",
    NumberStatus.PORT_SUBMITTED: "submitted to the losing carrier",
    NumberStatus.PORT_PENDING: "accepted by the losing carrier",
    NumberStatus.SCHEDULED: "scheduled to port",
    NumberStatus.COMPLETED: "ported",
    NumberStatus.NOT_PORTABLE: "cannot be ported",
    NumberStatus.PORT_REJECTED: "rejected",
    NumberStatus.CANCELING: "being canceled",
    NumberStatus.CANCELED: "canceled",
}

REQUEST_STATUS_WORDS: dict[RequestStatus, str] = {
    RequestStatus.IN_REVIEW: "in review",
    RequestStatus.IN_PROGRESS: "in progress",
    RequestStatus.ACTION_REQUIRED: "waiting for your action",
    RequestStatus.COMPLETED: "completed",
    RequestStatus.CANCELED: "canceled",
    RequestStatus.REJECTED: "rejected",
    RequestStatus.EXPIRED: "expired",
}

ALERT_WORDS: dict[AlertKind, str] = {
    AlertKind.REVIEW_SLA_BREACHED: "Review SLA breached",
    AlertKind.CARRIER_SLA_BREACHED: "No answer from the losing carrier within its SLA",
    AlertKind.PORT_DATE_OVERDUE: "Port date passed without activation",
    AlertKind.DELIVERY_GAVE_UP: "A notification could not be delivered",
    AlertKind.ORPHANED_EVENT: "An event is still waiting for its port-in request",
}


def long_date(day: date | None) -> str | None:
    """"Tuesday 2 March 2027": unambiguous on both sides of the Atlantic."""
    return f"{day:%A} {day.day} {day:%B %Y}" if day else None


def is_canadian(phone_number: str) -> bool:
    """Canada charges a per-number fee (seed 002). The country comes from libphonenumber,
    which tells Canadian area codes from US ones inside +1. A canonical number of another
    country code is not asked about (nothing else libphonenumber reads starts "+2" to "+9")."""
    if phone_number[:1] == "+" and phone_number[1:2] in ("2", "3", "4", "5", "6", "7", "8", "9"):
        return False
    parsed = as_phone_number(phone_number)
    return parsed is not None and phonenumbers.region_code_for_number(parsed) == "CA"
