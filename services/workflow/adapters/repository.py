"""The workflow's store: requests, numbers, history, fees and parked events, set-based.

A batch takes the per-request locks (one statement), loads every request it names with its
numbers and parked events (one statement), and writes everything it decided back as
data-modifying CTEs that its unit of work sends with the timers and follow-ups, in one statement. PIN and account number are sealed (porting_runtime.sealing) in their own
column and never in the JSON state; the column is emptied when the request ends.

What a request costs per event is kept small (issue 8, `porting bench --scenario workflow`):
- the state is `json` (003_json_state.sql): the service writes the text pydantic makes and reads
  it back as is, with no jsonb parsing or re-serialising in PostgreSQL;
- loading validates each request from that text in one `model_validate_json` (pydantic-core),
  not json.loads and model_validate of the Python objects;
- the batch goes to PostgreSQL as typed arrays (unnest), not as one JSON document;
- PIN and account number are sealed once, when they arrive (a new request or revision); a save
  that leaves them as loaded keeps the sealed bytes already stored instead of sealing again;
- only the numbers that changed since they were loaded are written: the others' rows stay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from porting_runtime.failures import describe
from porting_runtime.sealing import Sealer
from porting_runtime.statement import Writes
from porting_runtime.subject_locks import lock_subjects
from schemas import CloudEvent, EventAttributes, PortRequested
from schemas.topics import event_for_type
from workflow.domain import Decisions, FeeRecorded, HistoryEntry, PortInRequest

from .parked_events import sealed_original

# What of the aggregate goes into port_in_requests.state: not its numbers (rows of their own),
# never PIN or account number (sealed in `secrets`).
_STATE_EXCLUDES: Any = {
    "numbers": True,
    "details": {"phone_numbers": {"__all__": {"pin"}}, "losing_carrier_information": {"account_number"}},
}

# PIN per requested number, in order, and the account number: what `secrets` seals.
_Secrets = tuple[tuple[str | None, ...], str | None]


@dataclass(frozen=True)
class ParkedEvent:
    id: int
    event: CloudEvent[Any]
    reason: str


@dataclass(frozen=True)
class RefusedCopy:
    """A parked event whose stored copy the contract now refuses: its row, identity and why."""

    id: int
    event_type: str
    event_id: str
    source: str
    reason: str


@dataclass
class Loaded:
    requests: dict[str, PortInRequest]
    # The parked events of the sids loaded `with_parked`, in the order they arrived ...
    parked: dict[str, list[ParkedEvent]]
    # ... and how many are parked for each sid loaded (what parking one more is checked against).
    parked_counts: dict[str, int] = field(default_factory=dict)
    # Parked events whose stored copy the contract now refuses (it was tightened since they were
    # parked), dead-lettered when their request comes instead of failing it.
    unreadable: dict[str, list[RefusedCopy]] = field(default_factory=dict)


@dataclass
class Changes:
    """What a batch decided, to write in one statement."""

    now: datetime
    requests: dict[str, PortInRequest] = field(default_factory=dict)
    history: list[tuple[str, HistoryEntry]] = field(default_factory=list)
    fees: list[tuple[str, FeeRecorded]] = field(default_factory=list)
    parked: list[tuple[CloudEvent[Any], str]] = field(default_factory=list)
    unparked: list[int] = field(default_factory=list)

    def record(self, request: PortInRequest, decisions: Decisions) -> None:
        sid = request.port_in_request_sid
        self.requests[sid] = request
        self.history += [(sid, entry) for entry in decisions.history]
        self.fees += [(sid, fee) for fee in decisions.fees]

    def park(self, event: CloudEvent[Any], reason: str) -> None:
        self.parked.append((event, reason))

    def __bool__(self) -> bool:
        return bool(self.requests or self.history or self.parked or self.unparked)


@dataclass
class _Stored:
    """A request as it was loaded: what a save compares with to write only what changed."""

    secrets: _Secrets | None
    sealed: bytes | None  # as stored: written back as is while the secrets are unchanged
    # Each number's field values when loaded. Contract models are frozen and NumberState's own
    # fields are replaced, never changed in place, so a shallow copy tells any change.
    numbers: dict[str, dict[str, Any]]


class WorkflowRepository:
    def __init__(self, connection: asyncpg.Connection, sealer: Sealer | None = None, consumer: str | None = None) -> None:
        # Without a sealer (operator reads) the sealed PIN and account number are never opened.
        # `consumer`: whose inbox rows tell where a parked event was read (topic, partition, offset).
        self.connection, self.sealer, self.consumer = connection, sealer, consumer
        # The requests `load` found stored, by sid: what `save` compares with.
        self._stored: dict[str, _Stored] = {}

    async def lock(self, sids: Iterable[str]) -> None:
        """Serialize work on each request across partitions and instances, so an event parked
        for a request can never miss that request's arrival. Sorted: two batches cannot deadlock."""
        await lock_subjects(self.connection, sids)

    async def load(self, sids: Iterable[str], *, with_parked: Iterable[str] = ()) -> Loaded:
        """Call after `lock`: under the locks, what is loaded is what `writes` will find.
        Parked events are read (unsealed, validated) only for the sids `with_parked`, those whose
        events may settle now: for every sid, a batch parking one more event for a request not
        seen yet read all before it, and a flood of events for one sid cost time with the square
        of their number (800 took 72 s where 800 for as many sids took 7 s)."""
        rows = await self.connection.fetch(_LOAD, sorted(set(sids)), sorted(set(with_parked)))
        loaded = Loaded({}, {})
        for row in rows:
            if row["state"] is not None:
                loaded.requests[row["sid"]] = self._request(row["sid"], row["state"], row["numbers"], row["secrets"])
            for fields in json.loads(row["parked"]) if row["parked"] is not None else ():
                try:
                    loaded.parked.setdefault(row["sid"], []).append(_parked(fields))
                except (ValueError, KeyError, TypeError) as error:  # ValidationError is a ValueError
                    loaded.unreadable.setdefault(row["sid"], []).append(RefusedCopy(
                        fields["id"], fields["type"], fields["event_id"], fields["source"],
                        f"its stored copy no longer passes the contract: {describe(error)}"[:500]))
            loaded.parked_counts[row["sid"]] = row["parked_count"]
        return loaded

    def _request(self, sid: str, state: str, numbers: str | None, secrets: bytes | None) -> PortInRequest:
        # The stored state is a JSON object the service wrote; its numbers (an object by phone
        # number, in the request's order) go in as its last member, so the whole aggregate is
        # parsed and validated in one call, in pydantic-core.
        request = PortInRequest.model_validate_json(f'{state.rstrip()[:-1]},"numbers":{numbers or "{}"}}}')
        opened: _Secrets | None = None
        if secrets is not None:
            assert self.sealer is not None
            unsealed = json.loads(self.sealer.unseal(secrets))
            opened = (tuple(unsealed["pins"]), unsealed["account_number"])
            request.details = _with_secrets(request.details, opened)
        self._stored[sid] = _Stored(opened, secrets, {n.phone_number: dict(n.__dict__) for n in request.numbers.values()})
        return request

    def writes(self, changes: Changes) -> Writes | None:
        """Everything the batch decided, as the part of its unit of work's one write statement
        (`unit.write`) that goes to this service's tables; None when nothing changed."""
        if not changes:
            return None
        requests = _Columns(7)
        numbers = _Columns(8)
        for sid, request in changes.requests.items():
            stored = self._stored.get(sid)
            requests.add(sid, request.account_sid, request.status.value, request.revision, request.received_at,
                         request.model_dump_json(exclude=_STATE_EXCLUDES), self._sealed_secrets(request, stored))
            for position, n in enumerate(request.numbers.values()):
                if stored is not None and stored.numbers.get(n.phone_number) == n.__dict__:
                    continue  # unchanged since loaded: its row stays as it is
                numbers.add(sid, n.phone_number, position, n.status.value, n.reason_code, n.country, n.port_date,
                            n.model_dump_json())
        history = _Columns(9)
        for sid, h in changes.history:
            history.add(sid, h.at, h.cause_event_id, h.phone_number, h.status_from, h.status_to, h.reason_code,
                        h.reason, h.kind.value)
        fees = _Columns(6)
        for sid, f in changes.fees:
            fees.add(sid, f.phone_number, f.amount, f.currency, f.completed_at, f.cause_event_id)
        parked = _Columns(9)
        for e, reason in changes.parked:
            parked.add(e.data.port_in_request_sid, e.attributes.type, e.attributes.id, e.attributes.source,
                       e.attributes.time, e.attributes.traceparent, e.data.model_dump_json(), reason,
                       sealed_original(e, self.sealer))
        return Writes(_SAVE, [changes.now, self.consumer, changes.unparked,
                              *requests.arrays, *numbers.arrays, *history.arrays, *fees.arrays, *parked.arrays])

    def _sealed_secrets(self, request: PortInRequest, stored: _Stored | None) -> bytes | None:
        """The request's PIN and account number, sealed. Sealed again only when they differ from
        what was loaded (a new request, a revision that brings its own); None once forgotten."""
        current = _secrets_of(request.details)
        if stored is not None and current == stored.secrets:
            return stored.sealed
        if current is None:
            return None
        assert self.sealer is not None
        pins, account_number = current
        return self.sealer.seal(json.dumps({"pins": list(pins), "account_number": account_number}).encode())

    # Operator reads.

    async def show(self, sid: str) -> dict[str, Any] | None:
        request = await self.connection.fetchrow(
            "SELECT status, account_sid, revision, received_at, updated_at FROM port_in_requests "
            "WHERE port_in_request_sid = $1", sid)
        numbers = await self.connection.fetch(
            "SELECT state FROM port_in_numbers WHERE port_in_request_sid = $1 ORDER BY position", sid)
        history = await self.connection.fetch(
            """SELECT at, cause_event_id, status_from, status_to, phone_number, reason_code, reason, kind
                 FROM transitions WHERE port_in_request_sid = $1 ORDER BY at, id""", sid)
        timers = await self.connection.fetch(
            """SELECT kind, key, due_at, failed_at FROM timers
                WHERE key = $1 OR key LIKE $1 || ':%' ORDER BY due_at""", sid)
        parked = await self.connection.fetch(
            "SELECT event_type, event_id, reason, parked_at FROM parked_events WHERE port_in_request_sid = $1 "
            "ORDER BY id", sid)
        if request is None and not parked:
            return None
        # Without the request, events parked for it (their watch timers, an orphaned-event alert).
        return {"request": dict(request) if request else None, "numbers": [json.loads(r["state"]) for r in numbers],
                "history": [dict(r) for r in history], "timers": [dict(r) for r in timers],
                "parked": [dict(r) for r in parked]}

    async def list(self, status: str | None, limit: int) -> Sequence[asyncpg.Record]:
        return await self.connection.fetch(
            """SELECT r.port_in_request_sid, r.account_sid, r.status, r.revision, r.updated_at,
                      (SELECT count(*) FROM port_in_numbers n WHERE n.port_in_request_sid = r.port_in_request_sid)
                          AS numbers
                 FROM port_in_requests r WHERE $1::text IS NULL OR r.status = $1
                ORDER BY r.updated_at DESC LIMIT $2""", status, limit)


def _parked(fields: dict[str, Any]) -> ParkedEvent:
    model = event_for_type(fields["type"])
    time = datetime.fromisoformat(fields["time"]) if fields["time"] else None
    attributes = EventAttributes(id=fields["event_id"], source=fields["source"], type=fields["type"],
                                 subject=fields["data"]["port_in_request_sid"], time=time,
                                 traceparent=fields["traceparent"])
    return ParkedEvent(fields["id"], CloudEvent(attributes, model.model_validate(fields["data"])), fields["reason"])


def _secrets_of(details: PortRequested) -> _Secrets | None:
    pins = tuple(n.pin for n in details.phone_numbers)
    account_number = details.losing_carrier_information.account_number
    return (pins, account_number) if any(pins) or account_number else None


def _with_secrets(details: PortRequested, secrets: _Secrets) -> PortRequested:
    """The details with the PIN and account number opened from `secrets`. No validation again:
    they were validated when the request came in, and sealed by this service."""
    pins, account_number = secrets
    return details.model_copy(update={
        "phone_numbers": [n.model_copy(update={"pin": pin}) for n, pin in zip(details.phone_numbers, pins, strict=True)],
        "losing_carrier_information": details.losing_carrier_information.model_copy(
            update={"account_number": account_number}),
    })


class _Columns:
    """Rows as one list per column: what `unnest` takes, one typed array each."""

    def __init__(self, width: int) -> None:
        self.arrays: list[list[Any]] = [[] for _ in range(width)]

    def add(self, *values: Any) -> None:
        for column, value in zip(self.arrays, values, strict=True):
            column.append(value)


_LOAD = """
SELECT s.sid, r.state, r.secrets,
       (SELECT json_object_agg(n.phone_number, n.state ORDER BY n.position) FROM port_in_numbers n
         WHERE n.port_in_request_sid = s.sid) AS numbers,
       CASE WHEN s.sid = ANY($2::text[]) THEN
       (SELECT jsonb_agg(jsonb_build_object('id', p.id, 'type', p.event_type, 'event_id', p.event_id,
                  'source', p.event_source, 'time', p.event_time, 'traceparent', p.traceparent,
                  'data', p.data, 'reason', p.reason) ORDER BY p.id)
          FROM parked_events p WHERE p.port_in_request_sid = s.sid) END AS parked,
       (SELECT count(*) FROM parked_events p WHERE p.port_in_request_sid = s.sid)::int AS parked_count
  FROM unnest($1::text[]) AS s(sid)
  LEFT JOIN port_in_requests r ON r.port_in_request_sid = s.sid
"""

# $1 now, $2 the consumer (whose inbox rows place a parked event), $3 parked rows applied; then
# each table's columns as arrays. Upserts, not UPDATE ... FROM: the arbiter index finds each row
# whatever the planner's estimates of the arrays.
_SAVE = """
requests AS (
    INSERT INTO port_in_requests (port_in_request_sid, account_sid, status, revision, received_at, updated_at,
                                  state, secrets)
    SELECT sid, account_sid, status, revision, received_at, $1, state, secrets
      FROM unnest($4::text[], $5::text[], $6::text[], $7::integer[], $8::timestamptz[], $9::json[], $10::bytea[])
           AS r(sid, account_sid, status, revision, received_at, state, secrets)
    ON CONFLICT (port_in_request_sid) DO UPDATE
       SET status = EXCLUDED.status, revision = EXCLUDED.revision, updated_at = EXCLUDED.updated_at,
           state = EXCLUDED.state, secrets = EXCLUDED.secrets
), numbers AS (
    INSERT INTO port_in_numbers (port_in_request_sid, phone_number, position, status, reason_code, country,
                                 port_date, updated_at, state)
    SELECT sid, phone_number, position, status, reason_code, country, port_date, $1, state
      FROM unnest($11::text[], $12::text[], $13::integer[], $14::text[], $15::text[], $16::text[], $17::date[],
                  $18::json[]) AS n(sid, phone_number, position, status, reason_code, country, port_date, state)
    ON CONFLICT (port_in_request_sid, phone_number) DO UPDATE
       SET status = EXCLUDED.status, reason_code = EXCLUDED.reason_code, country = EXCLUDED.country,
           port_date = EXCLUDED.port_date, updated_at = EXCLUDED.updated_at, state = EXCLUDED.state
), history AS (
    INSERT INTO transitions (port_in_request_sid, at, cause_event_id, phone_number, status_from, status_to,
                             reason_code, reason, kind)
    SELECT sid, at, cause_event_id, phone_number, status_from, status_to, reason_code, reason, kind
      FROM unnest($19::text[], $20::timestamptz[], $21::text[], $22::text[], $23::text[], $24::text[],
                  $25::text[], $26::text[], $27::text[]) WITH ORDINALITY
           AS h(sid, at, cause_event_id, phone_number, status_from, status_to, reason_code, reason, kind, seq)
     ORDER BY seq
), fees AS (
    INSERT INTO porting_fees (port_in_request_sid, phone_number, amount, currency, completed_at, cause_event_id)
    SELECT * FROM unnest($28::text[], $29::text[], $30::numeric[], $31::text[], $32::timestamptz[], $33::text[])
    ON CONFLICT DO NOTHING
), parked AS (
    INSERT INTO parked_events (port_in_request_sid, event_type, event_id, event_source, event_time, traceparent,
                               data, reason, parked_at, original, source_topic, source_partition, source_offset)
    SELECT x.sid, x.event_type, x.event_id, x.event_source, x.event_time, x.traceparent, x.data, x.reason, $1,
           x.original, i.topic, i.partition, i."offset"
      FROM unnest($34::text[], $35::text[], $36::text[], $37::text[], $38::timestamptz[], $39::text[],
                  $40::jsonb[], $41::text[], $42::bytea[]) WITH ORDINALITY
           AS x(sid, event_type, event_id, event_source, event_time, traceparent, data, reason, original, seq)
      LEFT JOIN inbox i ON i.consumer = $2 AND i.event_source = x.event_source AND i.event_id = x.event_id
     ORDER BY x.seq
), unparked AS (
    DELETE FROM parked_events WHERE id = ANY($3::bigint[])
)
"""
