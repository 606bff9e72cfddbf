"""Every topic of the contract, in one place. A topic's name is its events' ce_type."""

from __future__ import annotations

from .base import PortingEvent
from .followups import (
    CancellationDenied,
    PortabilityChecked,
    PortAlertRaised,
    PortStatusChanged,
    PortSubmitted,
)
from .inbound import CancelRequested, CarrierResponded, PortRequested, PortScheduled

INBOUND_EVENTS: tuple[type[PortingEvent], ...] = (
    PortRequested,
    CarrierResponded,
    PortScheduled,
    CancelRequested,
)
FOLLOW_UP_EVENTS: tuple[type[PortingEvent], ...] = (
    PortabilityChecked,
    PortStatusChanged,
    PortSubmitted,
    CancellationDenied,
    PortAlertRaised,
)
EVENTS_BY_TYPE: dict[str, type[PortingEvent]] = {
    event.event_type: event for event in INBOUND_EVENTS + FOLLOW_UP_EVENTS
}
ALL_TOPICS: tuple[str, ...] = tuple(EVENTS_BY_TYPE)


def dead_letter_topic(consumer: str) -> str:
    """Where a consumer's messages that can never succeed are kept, with the reason."""
    return f"porting.dead-letter.{consumer}.v1"


def event_for_type(event_type: str) -> type[PortingEvent]:
    try:
        return EVENTS_BY_TYPE[event_type]
    except KeyError:
        raise KeyError(f"unknown event type {event_type!r}") from None
