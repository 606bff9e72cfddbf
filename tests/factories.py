"""Valid events to start from, with fresh ids."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from schemas import PortRequested


def request_sid() -> str:
    return "KW" + secrets.token_hex(16)


def account_sid() -> str:
    return "AC" + secrets.token_hex(16)


def port_requested_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "port_in_request_sid": request_sid(),
        "account_sid": account_sid(),
        "revision": 1,
        "phone_numbers": [{"phone_number": "+14155550100", "pin": "1234"}],
        "losing_carrier_information": {
            "customer_name": "Ada Lovelace",
            "account_number": "ACC-991",
            "account_telephone_number": "+14155550100",
            "authorized_representative": "Ada Lovelace",
            "authorized_representative_email": "ada@example.com",
            "customer_type": "Business",
            "address": {"street": "1 Market St", "city": "San Francisco", "state": "CA",
                        "zip": "94105", "country": "US"},
        },
        "notification_emails": ["ada@example.com"],
        "target_port_in_date": date(2027, 3, 2).isoformat(),
        "documents": [],
    }
    payload.update(overrides)
    return payload


def port_requested(**overrides: Any) -> PortRequested:
    return PortRequested.model_validate(port_requested_payload(**overrides))
