"""A notification: one message on one channel to one recipient, with an id that never changes.

The id is derived from what caused it (the event's ce_source and ce_id), the channel, the
recipient and, where one event fans out into several messages to one recipient (one webhook
per changed number), the part. Recording it twice, resending it after a crash, or consuming
the event again yields the same id, so the store keeps one row and a receiver sees the same
`webhook-id` / `Message-ID` on every attempt.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class Channel(str, Enum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class Audience(str, Enum):
    CUSTOMER = "customer"
    # An ops delivery that gives up is logged and counted, never alerted again (no alert loop).
    OPS = "ops"


def delivery_id(source: str, event_id: str, channel: Channel, recipient: str, part: str = "") -> str:
    """Stable and opaque: `msg_` and 26 base32 characters (130 bits of SHA-256), the shape
    Standard Webhooks suggests for `webhook-id`, and a valid Message-ID local part."""
    material = "\x1f".join((source, event_id, channel.value, recipient.lower(), part)).encode()
    # The first 26 characters take 130 bits: 20 bytes give them as the whole digest does (the
    # stdlib's base32 is a Python loop over 5-byte groups).
    digest = hashlib.sha256(material).digest()[:20]
    return "msg_" + base64.b32encode(digest).decode()[:26].lower()


@dataclass(frozen=True)
class Notification:
    """What to send. `payload` is the e-mail template's context or the webhook's JSON body:
    built field by field from the event, so nothing the event does not name can reach it."""

    delivery_id: str
    port_in_request_sid: str
    channel: Channel
    audience: Audience
    recipient: str
    # The e-mail template's name, or the webhook's type (PortInCompleted, ...).
    kind: str
    payload: Mapping[str, Any]
    phone_numbers: tuple[str, ...] = ()
    # Not before this time (the routing reminder ahead of a port date); None: right away.
    due_at: datetime | None = None
    cause_source: str = ""
    cause_id: str = ""

    @property
    def is_ops_alert(self) -> bool:
        return self.audience is Audience.OPS


@dataclass(frozen=True)
class Announcement:
    """Everything one event calls for: the notifications to record, and pending routing
    reminders that no longer apply (the port was canceled, completed or moved to another date)."""

    notifications: tuple[Notification, ...] = ()
    # Numbers whose pending reminders are withdrawn; `withdraw_all_reminders` for the whole request.
    withdraw_reminders_for: tuple[str, ...] = ()
    withdraw_all_reminders: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
