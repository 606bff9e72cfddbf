"""What handling one event decides: history, follow-ups, timers, fees; or that it waits or is refused.

The aggregate only decides; the service layer carries the decisions out in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from schemas import PortingEvent


class TimerKind(str, Enum):
    REVIEW_SLA = "review_sla"
    CARRIER_SLA = "carrier_sla"
    PORT_DATE_REMINDER = "port_date_reminder"
    PORT_DATE_OVERDUE = "port_date_overdue"
    ACTION_REQUIRED_EXPIRY = "action_required_expiry"
    # An event parked for a request (or revision) that has not arrived: see parking.py.
    PARKED_EVENT_OVERDUE = "parked_event_overdue"


class HistoryKind(str, Enum):
    TRANSITION = "transition"
    # The event made no sense in the state it found: recorded with why, not applied.
    IGNORED = "ignored"
    # Something happened without a status change: a cancellation denied, an alert raised,
    # a fix that never came.
    NOTE = "note"


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a request's history, for a number or (`phone_number` None) the request."""

    at: datetime
    cause_event_id: str
    phone_number: str | None
    status_from: str | None
    status_to: str | None
    reason_code: str | None = None
    reason: str | None = None
    kind: HistoryKind = HistoryKind.TRANSITION


@dataclass(frozen=True)
class ScheduleTimer:
    kind: TimerKind
    key: str
    due_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CancelTimer:
    kind: TimerKind
    key: str


@dataclass(frozen=True)
class FeeRecorded:
    """A per-number porting fee, owed once the number completed (seed 002)."""

    phone_number: str
    amount: Decimal
    currency: str
    completed_at: datetime
    cause_event_id: str


@dataclass
class Decisions:
    history: list[HistoryEntry] = field(default_factory=list)
    publish: list[PortingEvent] = field(default_factory=list)
    timers: list[ScheduleTimer | CancelTimer] = field(default_factory=list)
    fees: list[FeeRecorded] = field(default_factory=list)
    # The event can never apply (it names numbers the request does not have): dead-letter it.
    # Nothing else is decided then, and the request is left as it was.
    rejected: str | None = None
    # The event is early (its request, or its revision, has not arrived): keep it for later.
    parked: str | None = None

    @classmethod
    def refuse(cls, reason: str) -> Decisions:
        return cls(rejected=reason)

    @classmethod
    def park(cls, reason: str) -> Decisions:
        return cls(parked=reason)

    @property
    def applied(self) -> bool:
        return self.rejected is None and self.parked is None

    def transitions(self) -> list[HistoryEntry]:
        return [h for h in self.history if h.kind is HistoryKind.TRANSITION]

    def ignored(self) -> list[HistoryEntry]:
        return [h for h in self.history if h.kind is HistoryKind.IGNORED]

    def notes(self) -> list[HistoryEntry]:
        return [h for h in self.history if h.kind is HistoryKind.NOTE]

    def events_of(self, kind: type[PortingEvent]) -> list[Any]:
        return [e for e in self.publish if isinstance(e, kind)]

    def scheduled(self, kind: TimerKind) -> list[ScheduleTimer]:
        return [t for t in self.timers if isinstance(t, ScheduleTimer) and t.kind is kind]

    def canceled(self, kind: TimerKind) -> list[CancelTimer]:
        return [t for t in self.timers if isinstance(t, CancelTimer) and t.kind is kind]
