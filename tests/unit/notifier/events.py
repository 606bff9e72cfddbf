"""Follow-up events as the notifier receives them, with fresh ids."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from schemas import CancellationDenied, CloudEvent, EventAttributes, PortAlertRaised, PortStatusChanged
from schemas.tracing import new_traceparent

from ...factories import account_sid, request_sid

CHANGED_AT = datetime(2027, 2, 1, 15, 30, tzinfo=UTC)
# A local address nothing listens on: no test ever sends outside this machine.
WEBHOOK_URL = "http://127.0.0.1:9/hooks/porting"


def cloud_event(data: Any, *, event_id: str | None = None, source: str = "workflow") -> CloudEvent[Any]:
    attributes = EventAttributes(id=event_id or str(uuid.uuid4()), source=source, type=data.event_type,
                                 subject=data.port_in_request_sid, time=CHANGED_AT, traceparent=new_traceparent())
    return CloudEvent(attributes=attributes, data=data)


def status_changed(status_from: str | None, status_to: str, numbers: list[tuple[str, str | None, str]] | None = None,
                   **fields: Any) -> CloudEvent[PortStatusChanged]:
    """numbers: (phone_number, status_from, status_to)"""
    payload: dict[str, Any] = {
        "port_in_request_sid": request_sid(),
        "account_sid": account_sid(),
        "status_from": status_from,
        "status_to": status_to,
        "phone_numbers": [{"phone_number": n, "status_from": f, "status_to": t} for n, f, t in numbers or []],
        "changed_at": CHANGED_AT.isoformat(),
        "notification_emails": ["ada@example.com"],
        "webhook_url": WEBHOOK_URL,
    }
    payload.update(fields)
    return cloud_event(PortStatusChanged.model_validate(payload))


def cancellation_denied(**fields: Any) -> CloudEvent[CancellationDenied]:
    payload: dict[str, Any] = {
        "port_in_request_sid": request_sid(),
        "account_sid": account_sid(),
        "phone_numbers": ["+14155550100"],
        "requested_by": "Ada Lovelace",
        "reason_code": "PORT_DATE_SCHEDULED",
        "reason": "A port date is scheduled; US ports cannot be canceled after that.",
        "port_date": date(2027, 3, 2).isoformat(),
        "notification_emails": ["ada@example.com"],
        "webhook_url": WEBHOOK_URL,
    }
    payload.update(fields)
    return cloud_event(CancellationDenied.model_validate(payload))


def alert_raised(alert: str = "carrier_sla_breached", **fields: Any) -> CloudEvent[PortAlertRaised]:
    payload: dict[str, Any] = {
        "port_in_request_sid": request_sid(),
        "alert": alert,
        "message": "No answer from the losing carrier in 5 business days.",
        "phone_numbers": ["+14155550100"],
        "raised_at": CHANGED_AT.isoformat(),
        "country": "US",
    }
    payload.update(fields)
    return cloud_event(PortAlertRaised.model_validate(payload))
