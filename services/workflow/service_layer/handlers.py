"""Set-based handlers: a batch of events (or due timers) is locked, loaded, decided and written at once.

Per batch: one statement takes the requests' locks, one loads them (with their numbers and
parked events), the domain decides event by event in arrival order, one statement writes the
result, and the follow-ups, timers and the sealed PortSubmitted orders go out through the unit
of work in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from porting_runtime import DueTimer, UnitOfWork
from porting_runtime.logs import get_logger
from porting_runtime.sealing import Sealer

from schemas import CloudEvent, EventAttributes, PortRequested, PortSubmitted
from workflow.domain import (
    CancelTimer,
    Decisions,
    HistoryEntry,
    HistoryKind,
    PortInRequest,
    TimerKind,
    decide,
)

from ..adapters.repository import Changes, Loaded, WorkflowRepository

log = get_logger(__name__)


class Workflow:
    """The handler of every route and every timer kind of the workflow."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    async def handle_events(self, events: Sequence[CloudEvent[Any]], unit: UnitOfWork) -> None:
        repository = WorkflowRepository(unit.connection, self.sealer)
        sids = {e.data.port_in_request_sid for e in events}
        await repository.lock(sids)
        loaded = await repository.load(sids)
        batch = _Batch(unit, Changes(now=unit.now()), loaded)
        for event in events:
            batch.apply(event)
        await repository.save(batch.changes)

    async def handle_timers(self, timers: Sequence[DueTimer], unit: UnitOfWork) -> None:
        repository = WorkflowRepository(unit.connection, self.sealer)
        sids = {t.data["port_in_request_sid"] for t in timers}
        await repository.lock(sids)
        loaded = await repository.load(sids)
        batch = _Batch(unit, Changes(now=unit.now()), loaded)
        for timer in timers:
            request = batch.request(timer.data["port_in_request_sid"])
            if request is None:
                log.warning("timer for an unknown request", kind=timer.kind, key=timer.key)
                continue
            decisions = request.timer_fired(TimerKind(timer.kind), timer.data, due_at=timer.due_at,
                                            cause_id=f"timer:{timer.id}", now=batch.changes.now)
            batch.record(request, decisions, timer.cause(unit.source))
        await repository.save(batch.changes)


class _Batch:
    def __init__(self, unit: UnitOfWork, changes: Changes, loaded: Loaded) -> None:
        self.unit, self.changes, self.loaded = unit, changes, loaded

    def request(self, sid: str) -> PortInRequest | None:
        return self.changes.requests.get(sid) or self.loaded.requests.get(sid)

    def apply(self, event: CloudEvent[Any]) -> None:
        sid = event.data.port_in_request_sid
        request, decisions = decide(self.request(sid), event, self.changes.now)
        if decisions.rejected:
            self.unit.reject(event, decisions.rejected)
            return
        if decisions.parked:
            log.info("event parked until its request arrives", port_in_request_sid=sid,
                     event_id=event.attributes.id, event_type=event.attributes.type)
            self.changes.park(event, decisions.parked)
            return
        assert request is not None
        self.record(request, decisions, event.attributes)
        if isinstance(event.data, PortRequested):
            self._unpark(request)

    def _unpark(self, request: PortInRequest) -> None:
        """The events that waited for this request (or revision), in the order they arrived."""
        sid = request.port_in_request_sid
        still_early = []
        for parked in self.loaded.parked.get(sid, []):
            _, decisions = decide(request, parked.event, self.changes.now)
            if decisions.parked:
                still_early.append(parked)
                continue
            self.changes.unparked.append(parked.id)
            if decisions.rejected:
                # Consumed long ago, so it cannot be dead-lettered from here: recorded as ignored instead.
                log.warning("parked event refused once its request arrived", port_in_request_sid=sid,
                            event_id=parked.event.attributes.id, reason=decisions.rejected)
                decisions = Decisions(history=[HistoryEntry(
                    at=self.changes.now, cause_event_id=parked.event.attributes.id, phone_number=None,
                    status_from=request.status.value, status_to=request.status.value, reason_code="REFUSED",
                    reason=decisions.rejected, kind=HistoryKind.IGNORED)])
            self.record(request, decisions, parked.event.attributes)
        self.loaded.parked[sid] = still_early

    def record(self, request: PortInRequest, decisions: Decisions, cause: EventAttributes) -> None:
        self.changes.record(request, decisions)
        for event in decisions.publish:
            # PortSubmitted carries the PIN and account number: sealed at rest in the outbox too.
            self.unit.publish(event, cause=cause, sealed=isinstance(event, PortSubmitted))
        for timer in decisions.timers:
            if isinstance(timer, CancelTimer):
                self.unit.cancel_timers(timer.kind.value, [timer.key])
            else:
                self.unit.schedule(timer.kind.value, timer.key, timer.due_at, timer.data, cause=cause)
