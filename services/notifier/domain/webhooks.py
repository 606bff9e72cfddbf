"""Webhook types and bodies, named like the public Port In webhooks.

One webhook per request-level change (`PortIn<Status>`) and one per number-level change
(`PortInPhoneNumber<Status>`). The public API names most of them (PortInInProgress,
PortInActionRequired, PortInCompleted, PortInCanceled, PortInExpired, PortInPhoneNumberSubmitted,
PortInPhoneNumberPending, PortInPhoneNumberRejected, PortInPhoneNumberCompleted,
PortInPhoneNumberCanceled); the statuses it has no webhook for follow the same pattern.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from schemas import NumberStatus, RequestStatus

from schemas.secrets_in_text import redact_secrets

REQUEST_WEBHOOKS: dict[RequestStatus, str] = {
    RequestStatus.IN_REVIEW: "PortInInReview",
    RequestStatus.IN_PROGRESS: "PortInInProgress",
    RequestStatus.ACTION_REQUIRED: "PortInActionRequired",
    RequestStatus.COMPLETED: "PortInCompleted",
    RequestStatus.CANCELED: "PortInCanceled",
    RequestStatus.REJECTED: "PortInRejected",
    RequestStatus.EXPIRED: "PortInExpired",
}

NUMBER_WEBHOOKS: dict[NumberStatus, str] = {
    NumberStatus.IN_REVIEW: "PortInPhoneNumberInReview",
    NumberStatus.PORT_SUBMITTED: "PortInPhoneNumberSubmitted",
    NumberStatus.PORT_PENDING: "PortInPhoneNumberPending",
    NumberStatus.SCHEDULED: "PortInPhoneNumberScheduled",
    NumberStatus.COMPLETED: "PortInPhoneNumberCompleted",
    NumberStatus.NOT_PORTABLE: "PortInPhoneNumberNotPortable",
    NumberStatus.PORT_REJECTED: "PortInPhoneNumberRejected",
    NumberStatus.CANCELING: "PortInPhoneNumberCanceling",
    NumberStatus.CANCELED: "PortInPhoneNumberCanceled",
}

WEBHOOK_DATA_FIELDS = ("port_in_request_sid", "phone_number", "status", "last_date_updated", "rejection_reason",
                       "rejection_reason_code", "port_date")

# A refused cancellation changes no status; the receiver still needs to know, per number.
CANCELLATION_DENIED_WEBHOOK = "PortInPhoneNumberCancellationDenied"


def webhook_body(
    webhook_type: str,
    *,
    port_in_request_sid: str,
    phone_number: str | None,
    status: str | None,
    last_date_updated: datetime,
    rejection_reason: str | None,
    rejection_reason_code: str | None,
    port_date: date | None,
) -> dict[str, Any]:
    """The Standard Webhooks body. `timestamp` is when the change happened, fixed when the
    webhook is recorded, so every attempt sends the same bytes (the header carries the
    attempt's own time)."""
    return {
        "type": webhook_type,
        "timestamp": last_date_updated.isoformat(),
        "data": {
            "port_in_request_sid": port_in_request_sid,
            "phone_number": phone_number,
            "status": status,
            "last_date_updated": last_date_updated.isoformat(),
            "rejection_reason": redact_secrets(rejection_reason),
            "rejection_reason_code": rejection_reason_code,
            "port_date": port_date.isoformat() if port_date else None,
        },
    }


def webhook_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent, the same on every attempt: fields in the
    public order whatever order the store gave them back in."""
    data = body["data"]
    ordered = {"type": body["type"], "timestamp": body["timestamp"],
               "data": {key: data.get(key) for key in WEBHOOK_DATA_FIELDS}}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
