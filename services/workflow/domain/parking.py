"""Events that arrive before their request (or revision): parked, watched, and what happens to
them when the request arrives.

- Parked, an event is watched by a `parked_event_overdue` timer. Its request normally follows
  within seconds (the events overtook it across topics); one that has not come after
  PARKED_EVENT_ALERT_AFTER means the upstream lost or never sent it, which the ops desk must
  chase: the timer raises an `orphaned_event` PortAlertRaised, once. The event stays parked
  and still applies if the request comes after all (DESIGN 4: never dropped).
- Applied once its request arrives, the timer stops. There it is either valid, superseded, or
  invalid: see `settle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from schemas import AlertKind, CancelRequested, CarrierResponded, CloudEvent, PortAlertRaised, PortScheduled

from .decisions import CancelTimer, Decisions, HistoryEntry, HistoryKind, ScheduleTimer, TimerKind
from .step import timer_key

if TYPE_CHECKING:
    from .request import PortInRequest

# 24 hours, not business days: the request's country (and so its calendar) is not known before
# the request arrives, and a request lost upstream is as lost on a Sunday. Long enough that an
# upstream outage or a consumer catching up does not raise it; short enough that the ops desk
# hears of it the next working day, well within the review SLA the customer expects.
PARKED_EVENT_ALERT_AFTER = timedelta(hours=24)

# A request is overtaken by a handful of its events (a cancel, a carrier answer, a schedule, a
# check of its next revision). Far more for one request not seen yet is a flood from a broken or
# hostile upstream: parked, every one would be settled in the one transaction its request comes
# in. Beyond this many, they are dead-lettered with the reason instead (nothing is lost: a
# redrive once the request is there applies them).
MAX_PARKED_PER_REQUEST = 100


def parking_refused(sid: str, already_parked: int) -> str | None:
    """Why one more event may not be parked for `sid`; None when it may."""
    if already_parked < MAX_PARKED_PER_REQUEST:
        return None
    return (f"{already_parked} events already wait for request {sid} (or its next revision); at most "
            f"{MAX_PARKED_PER_REQUEST} are kept parked: redrive this one once it is there")


def watch_key(event: CloudEvent[Any]) -> str:
    return watch_key_of(event.data.port_in_request_sid, event.attributes.source, event.attributes.id)


def watch_key_of(sid: str, source: str, event_id: str) -> str:
    """One timer per parked event: (source, id) is the event's identity (DESIGN 3). The source's
    ":" and "%" are percent-encoded, so no two identities share a key: ("a:b", "c") and ("a", "b:c")
    once did, and the second event's watch replaced the first's. A watch keyed the old way still
    fires once, harmlessly, when its event was settled meanwhile."""
    quoted = source.replace("%", "%25").replace(":", "%3A")
    return timer_key(sid, f"parked:{quoted}:{event_id}")


def watch(event: CloudEvent[Any], now: datetime) -> ScheduleTimer:
    attributes = event.attributes
    return ScheduleTimer(TimerKind.PARKED_EVENT_OVERDUE, watch_key(event), now + PARKED_EVENT_ALERT_AFTER, {
        "port_in_request_sid": event.data.port_in_request_sid, "event_type": attributes.type,
        "event_id": attributes.id, "event_source": attributes.source, "parked_at": now.isoformat(),
    })


@dataclass(frozen=True)
class Settled:
    """A parked event once its request is there: applied (its decisions, which may record it as
    ignored: superseded), still early, or `dead_letter` with the reason (it can never apply)."""

    decisions: Decisions
    still_early: bool = False
    dead_letter: str | None = None


def settle(request: PortInRequest, event: CloudEvent[Any], now: datetime) -> Settled:
    """The rule for a parked event when its request (or revision) arrives:

    - it names numbers the request lacks (or another account): invalid, it can never apply to
      this request whatever happens next. Dead-lettered, like the same event arriving late, so
      it shows in `porting dead-letters` and can be redriven after a fix upstream;
    - it makes no sense in the state the request is in (a carrier answer for numbers not yet
      submitted, a check of a revision already replaced): superseded, a porting desk's everyday
      case. Recorded in the history as ignored with its reason, as it always was;
    - otherwise it applies.
    The timer watching it stops in every case but the first still early one."""
    from .request import decide

    _, decided = decide(request, event, now)
    if decided.parked:
        return Settled(decided, still_early=True)
    if decided.rejected:
        return _dead_lettered(request, event.attributes.id, _name(event), decided.rejected, watch_key(event), now)
    decided.timers.append(CancelTimer(TimerKind.PARKED_EVENT_OVERDUE, watch_key(event)))
    return Settled(decided)


def settle_refused_copy(request: PortInRequest | None, sid: str, event_type: str, source: str, event_id: str,
                        reason: str, now: datetime) -> Settled:
    """A parked event whose stored copy the contract has since come to refuse (tightened after it
    was parked): it can never apply. Dead-lettered as an invalid one is, when its request comes or
    its watch fires, with its watch stopped and a note in the history."""
    return _dead_lettered(request, event_id, f"{event_type} {event_id}", reason,
                          watch_key_of(sid, source, event_id), now)


def _dead_lettered(request: PortInRequest | None, cause_event_id: str, named: str, reason: str, watch: str,
                   now: datetime) -> Settled:
    """A parked event that can never apply: dead-lettered, its watch stopped, the history noting it."""
    status = request.status.value if request is not None else None
    note = HistoryEntry(at=now, cause_event_id=cause_event_id, phone_number=None, status_from=status,
                        status_to=status, reason_code="PARKED_EVENT_DEAD_LETTERED",
                        reason=f"{named} parked for this request was dead-lettered: {reason}", kind=HistoryKind.NOTE)
    stop = CancelTimer(TimerKind.PARKED_EVENT_OVERDUE, watch)
    return Settled(Decisions(history=[note], timers=[stop]), dead_letter=reason)


def parked_event_overdue(request: PortInRequest | None, parked: list[CloudEvent[Any]], data: dict[str, Any], *,
                         due_at: datetime, cause_id: str, now: datetime) -> Decisions:
    """The watch timer fired: if its event still waits, the ops desk hears of it, once (the timer
    fires once), with the sid, the event's type and id and how long it has waited. Recorded in
    the request's history too, where `porting status` shows it (also before the request exists)."""
    waiting = next((e for e in parked if (e.attributes.source, e.attributes.id) ==
                    (data["event_source"], data["event_id"])), None)
    if waiting is None:  # applied meanwhile (its cancel raced the firing)
        return Decisions()
    waited = _duration(now - datetime.fromisoformat(data["parked_at"]))
    sid = data["port_in_request_sid"]
    waits_for = "the revision it belongs to" if request is not None else f"port-in request {sid}"
    message = (f"{data['event_type']} {data['event_id']} (from {data['event_source']}) has waited {waited} for "
               f"{waits_for}, which has not arrived. Ask the sender whether the request was sent; the event is "
               "kept and applies if it comes.")
    status = request.status.value if request is not None else None
    return Decisions(
        publish=[PortAlertRaised(port_in_request_sid=sid, alert=AlertKind.ORPHANED_EVENT, message=message,
                                 phone_numbers=numbers_named(waiting), due_at=due_at, raised_at=now)],
        history=[HistoryEntry(at=now, cause_event_id=cause_id, phone_number=None, status_from=status,
                              status_to=status, reason_code=AlertKind.ORPHANED_EVENT.name, reason=message,
                              kind=HistoryKind.NOTE)],
    )


def numbers_named(event: CloudEvent[Any]) -> list[str]:
    data = event.data
    if isinstance(data, CarrierResponded):
        return list(dict.fromkeys(r.phone_number for r in data.responses))
    if isinstance(data, PortScheduled | CancelRequested):
        return list(dict.fromkeys(data.phone_numbers or []))
    return list(dict.fromkeys(r.phone_number for r in getattr(data, "results", [])))


def _name(event: CloudEvent[Any]) -> str:
    return f"{type(event.data).__name__} {event.attributes.id}"


def _duration(elapsed: timedelta) -> str:
    hours = int(elapsed.total_seconds() // 3600)
    return f"{hours // 24} days {hours % 24} hours" if hours >= 48 else f"{hours} hours"
