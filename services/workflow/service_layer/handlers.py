"""Set-based handlers: a batch of events (or due timers) is locked, loaded, decided and written at once.

Per batch: one statement takes the requests' locks, one loads them (with their numbers and
parked events), the domain decides event by event in arrival order, and one statement writes
the result with the follow-ups, the timers and the sealed PortSubmitted orders (the unit of
work's flush), in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from porting_runtime import DueTimer, UnitOfWork
from porting_runtime.logs import get_logger
from porting_runtime.sealing import Sealer

from schemas import CloudEvent, EventAttributes, PortRequested, PortSubmitted
from workflow.domain import CancelTimer, Decisions, PortInRequest, TimerKind, decide, parking

from ..adapters.parked_events import parked_records
from ..adapters.repository import Changes, Loaded, WorkflowRepository

log = get_logger(__name__)


class Workflow:
    """The handler of every route and every timer kind of the workflow."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    async def handle_events(self, events: Sequence[CloudEvent[Any]], unit: UnitOfWork) -> None:
        repository = WorkflowRepository(unit.connection, self.sealer, consumer=unit.source)
        sids = {e.data.port_in_request_sid for e in events}
        await repository.lock(sids)
        # Parked events settle only when their request (or revision) arrives.
        arriving = {e.data.port_in_request_sid for e in events if isinstance(e.data, PortRequested)}
        loaded = await repository.load(sids, with_parked=arriving)
        batch = _Batch(unit, Changes(now=unit.now()), loaded)
        for event in events:
            batch.apply(event)
        await self._dead_letter_refused(batch, unit)
        unit.write(repository.writes(batch.changes))  # sent with the follow-ups and timers at flush

    async def _dead_letter_refused(self, batch: _Batch, unit: UnitOfWork) -> None:
        """The parked events the batch refused, as they came: read before the flush deletes their rows."""
        if not batch.dead_letters:
            return
        records = await parked_records(unit.connection, list(batch.dead_letters), self.sealer, unit.topic_prefix)
        for parked_id, reason in batch.dead_letters.items():
            await unit.dead_letter(records[parked_id], f"parked until its request arrived, then refused: {reason}")

    async def handle_timers(self, timers: Sequence[DueTimer], unit: UnitOfWork) -> None:
        repository = WorkflowRepository(unit.connection, self.sealer)
        sids = {t.data["port_in_request_sid"] for t in timers}
        await repository.lock(sids)
        watched = {t.data["port_in_request_sid"] for t in timers if t.kind == TimerKind.PARKED_EVENT_OVERDUE.value}
        loaded = await repository.load(sids, with_parked=watched)
        batch = _Batch(unit, Changes(now=unit.now()), loaded)
        for timer in timers:
            sid = timer.data["port_in_request_sid"]
            request = batch.request(sid)
            if timer.kind == TimerKind.PARKED_EVENT_OVERDUE.value:  # the one kind without a request
                batch.settle_refused_copies(sid, request, timer.cause(unit.source))  # they can never apply
                parked = [p.event for p in loaded.parked.get(sid, [])]
                decisions = parking.parked_event_overdue(request, parked, timer.data, due_at=timer.due_at,
                                                         cause_id=f"timer:{timer.id}", now=batch.changes.now)
                batch.record_for(sid, request, decisions, timer.cause(unit.source))
                continue
            if request is None:
                log.warning("timer for an unknown request", kind=timer.kind, key=timer.key)
                continue
            decisions = request.timer_fired(TimerKind(timer.kind), timer.data, due_at=timer.due_at,
                                            cause_id=f"timer:{timer.id}", now=batch.changes.now)
            batch.record(request, decisions, timer.cause(unit.source))
        await self._dead_letter_refused(batch, unit)
        unit.write(repository.writes(batch.changes))  # sent with the follow-ups and timers at flush


class _Batch:
    def __init__(self, unit: UnitOfWork, changes: Changes, loaded: Loaded) -> None:
        self.unit, self.changes, self.loaded = unit, changes, loaded
        # Parked events their request found invalid: parked row id -> why.
        self.dead_letters: dict[int, str] = {}

    def request(self, sid: str) -> PortInRequest | None:
        return self.changes.requests.get(sid) or self.loaded.requests.get(sid)

    def apply(self, event: CloudEvent[Any]) -> None:
        sid = event.data.port_in_request_sid
        request, decisions = decide(self.request(sid), event, self.changes.now)
        if decisions.rejected:
            self.unit.reject(event, decisions.rejected)
            return
        if decisions.parked:
            already = self.loaded.parked_counts.get(sid, 0)
            if refused := parking.parking_refused(sid, already):
                self.unit.reject(event, refused)
                return
            self.loaded.parked_counts[sid] = already + 1
            log.info("event parked until its request arrives", port_in_request_sid=sid,
                     event_id=event.attributes.id, event_type=event.attributes.type)
            self.changes.park(event, decisions.parked)
            self.record_for(sid, None, Decisions(timers=decisions.timers), event.attributes)  # the watch timer
            return
        assert request is not None
        self.record(request, decisions, event.attributes)
        if isinstance(event.data, PortRequested):
            self._unpark(request, event.attributes)

    def settle_refused_copies(self, sid: str, request: PortInRequest | None, cause: EventAttributes) -> None:
        for refused in self.loaded.unreadable.pop(sid, []):
            settled = parking.settle_refused_copy(request, sid, refused.event_type, refused.source, refused.event_id,
                                                  refused.reason, self.changes.now)
            self.changes.unparked.append(refused.id)
            self.dead_letters[refused.id] = refused.reason
            self.record_for(sid, request, settled.decisions, cause)

    def _unpark(self, request: PortInRequest, cause: EventAttributes) -> None:
        """The events that waited for this request (or revision), in the order they arrived."""
        sid = request.port_in_request_sid
        self.settle_refused_copies(sid, request, cause)
        still_early = []
        for parked in self.loaded.parked.get(sid, []):
            settled = parking.settle(request, parked.event, self.changes.now)
            if settled.still_early:
                still_early.append(parked)
                continue
            self.changes.unparked.append(parked.id)
            if settled.dead_letter:
                log.warning("parked event refused once its request arrived; dead-lettered", port_in_request_sid=sid,
                            event_id=parked.event.attributes.id, reason=settled.dead_letter)
                self.dead_letters[parked.id] = settled.dead_letter
            self.record(request, settled.decisions, parked.event.attributes)
        self.loaded.parked[sid] = still_early

    def record(self, request: PortInRequest, decisions: Decisions, cause: EventAttributes) -> None:
        self.record_for(request.port_in_request_sid, request, decisions, cause)

    def record_for(self, sid: str, request: PortInRequest | None, decisions: Decisions, cause: EventAttributes) -> None:
        """`request` None: history and follow-ups about a request not seen yet (an orphaned event)."""
        if request is not None:
            self.changes.record(request, decisions)
        else:
            self.changes.history += [(sid, entry) for entry in decisions.history]
        for event in decisions.publish:
            # PortSubmitted carries the PIN and account number: sealed at rest in the outbox too.
            self.unit.publish(event, cause=cause, sealed=isinstance(event, PortSubmitted))
        for timer in decisions.timers:
            if isinstance(timer, CancelTimer):
                self.unit.cancel_timers(timer.kind.value, [timer.key])
            else:
                self.unit.schedule(timer.kind.value, timer.key, timer.due_at, timer.data, cause=cause)
