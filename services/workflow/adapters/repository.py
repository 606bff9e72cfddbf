"""The workflow's store: requests, numbers, history, fees and parked events, set-based.

A batch takes the per-request locks (one statement), loads every request it names with its
numbers and parked events (one statement), and writes everything it decided back (one
statement of data-modifying CTEs). PIN and account number are sealed (Fernet) in their own
column and never in the JSON state; the column is emptied when the request ends.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from porting_runtime.sealing import Sealer
from schemas import CloudEvent, EventAttributes
from schemas.topics import event_for_type
from workflow.domain import Decisions, FeeRecorded, HistoryEntry, PortInRequest

from .parked_events import sealed_original

# Namespace of the per-request advisory locks (the outbox's per-key locks use 42).
REQUEST_LOCK_SEED = 8


@dataclass(frozen=True)
class ParkedEvent:
    id: int
    event: CloudEvent[Any]
    reason: str


@dataclass
class Loaded:
    requests: dict[str, PortInRequest]
    parked: dict[str, list[ParkedEvent]]


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


class WorkflowRepository:
    def __init__(self, connection: asyncpg.Connection, sealer: Sealer | None = None, consumer: str | None = None) -> None:
        # Without a sealer (operator reads) the sealed PIN and account number are never opened.
        # `consumer`: whose inbox rows tell where a parked event was read (topic, partition, offset).
        self.connection, self.sealer, self.consumer = connection, sealer, consumer

    async def lock(self, sids: Iterable[str]) -> None:
        """Serialize work on each request across partitions and instances, so an event parked
        for a request can never miss that request's arrival. Sorted: two batches cannot deadlock."""
        await self.connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(s, $2)) FROM unnest($1::text[]) AS s ORDER BY s",
            sorted(set(sids)), REQUEST_LOCK_SEED,
        )

    async def load(self, sids: Iterable[str]) -> Loaded:
        rows = await self.connection.fetch(
            """SELECT s.sid, r.state, r.secrets,
                      (SELECT jsonb_agg(n.state ORDER BY n.position) FROM port_in_numbers n
                        WHERE n.port_in_request_sid = s.sid) AS numbers,
                      (SELECT jsonb_agg(jsonb_build_object('id', p.id, 'type', p.event_type, 'event_id', p.event_id,
                                 'source', p.event_source, 'time', p.event_time, 'traceparent', p.traceparent,
                                 'data', p.data, 'reason', p.reason) ORDER BY p.id)
                         FROM parked_events p WHERE p.port_in_request_sid = s.sid) AS parked
                 FROM unnest($1::text[]) AS s(sid)
                 LEFT JOIN port_in_requests r ON r.port_in_request_sid = s.sid""",
            sorted(set(sids)),
        )
        loaded = Loaded({}, {})
        for row in rows:
            if row["state"] is not None:
                loaded.requests[row["sid"]] = self._request(row["state"], row["numbers"], row["secrets"])
            if row["parked"] is not None:
                loaded.parked[row["sid"]] = [_parked(p) for p in json.loads(row["parked"])]
        return loaded

    def _request(self, state: str, numbers: str, secrets: bytes | None) -> PortInRequest:
        fields = json.loads(state)
        details = fields["details"]
        if secrets is not None:
            assert self.sealer is not None
            opened = json.loads(self.sealer.unseal(secrets))
            for requested, pin in zip(details["phone_numbers"], opened["pins"], strict=True):
                requested["pin"] = pin
            details["losing_carrier_information"]["account_number"] = opened["account_number"]
        fields["numbers"] = {n["phone_number"]: n for n in json.loads(numbers or "[]")}
        return PortInRequest.model_validate(fields)

    async def save(self, changes: Changes) -> None:
        if not changes:
            return
        requests, numbers = [], []
        for sid, request in changes.requests.items():
            requests.append(self._request_row(request, changes.now))
            numbers += [{"sid": sid, "phone_number": n.phone_number, "position": position, "status": n.status.value,
                         "reason_code": n.reason_code, "country": n.country,
                         "port_date": n.port_date.isoformat() if n.port_date else None,
                         "state": n.model_dump(mode="json")}
                        for position, n in enumerate(request.numbers.values())]
        history = [{"sid": sid, "seq": seq, "at": h.at.isoformat(), "cause_event_id": h.cause_event_id,
                    "phone_number": h.phone_number, "status_from": h.status_from, "status_to": h.status_to,
                    "reason_code": h.reason_code, "reason": h.reason, "kind": h.kind.value}
                   for seq, (sid, h) in enumerate(changes.history)]
        fees = [{"sid": sid, "phone_number": f.phone_number, "amount": str(f.amount), "currency": f.currency,
                 "completed_at": f.completed_at.isoformat(), "cause_event_id": f.cause_event_id}
                for sid, f in changes.fees]
        parked = [{"sid": e.data.port_in_request_sid, "seq": seq, "event_type": e.attributes.type,
                   "event_id": e.attributes.id, "event_source": e.attributes.source,
                   "event_time": e.attributes.time.isoformat() if e.attributes.time else None,
                   "traceparent": e.attributes.traceparent, "data": e.data.model_dump(mode="json"), "reason": reason,
                   "original": sealed_original(e, self.sealer)}
                  for seq, (e, reason) in enumerate(changes.parked)]
        await self.connection.execute(
            _SAVE, json.dumps(requests), json.dumps(numbers), json.dumps(history), json.dumps(fees),
            json.dumps(parked), changes.unparked, changes.now, self.consumer,
        )

    def _request_row(self, request: PortInRequest, now: datetime) -> dict[str, Any]:
        details = request.details.model_dump(mode="json")
        pins = [n.pop("pin", None) for n in details["phone_numbers"]]
        account_number = details["losing_carrier_information"].pop("account_number", None)
        secrets = None
        if any(pins) or account_number:
            assert self.sealer is not None
            sealed = self.sealer.seal(json.dumps({"pins": pins, "account_number": account_number}).encode())
            secrets = base64.b64encode(sealed).decode("ascii")
        state = request.model_dump(mode="json", exclude={"numbers", "details"}) | {"details": details}
        return {"sid": request.port_in_request_sid, "account_sid": request.account_sid,
                "status": request.status.value, "revision": request.revision,
                "received_at": request.received_at.isoformat(), "updated_at": now.isoformat(),
                "state": state, "secrets": secrets}

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


_SAVE = """
WITH requests AS (
    INSERT INTO port_in_requests (port_in_request_sid, account_sid, status, revision, received_at, updated_at,
                                  state, secrets)
    SELECT sid, account_sid, status, revision, received_at, updated_at, state, decode(secrets, 'base64')
      FROM jsonb_to_recordset($1::jsonb) AS x(sid text, account_sid text, status text, revision integer,
                                              received_at timestamptz, updated_at timestamptz, state jsonb,
                                              secrets text)
    ON CONFLICT (port_in_request_sid) DO UPDATE
       SET status = EXCLUDED.status, revision = EXCLUDED.revision, updated_at = EXCLUDED.updated_at,
           state = EXCLUDED.state, secrets = EXCLUDED.secrets
), numbers AS (
    INSERT INTO port_in_numbers (port_in_request_sid, phone_number, position, status, reason_code, country,
                                 port_date, updated_at, state)
    SELECT sid, phone_number, position, status, reason_code, country, port_date, $7, state
      FROM jsonb_to_recordset($2::jsonb) AS x(sid text, phone_number text, position integer, status text,
                                              reason_code text, country text, port_date date, state jsonb)
    ON CONFLICT (port_in_request_sid, phone_number) DO UPDATE
       SET status = EXCLUDED.status, reason_code = EXCLUDED.reason_code, country = EXCLUDED.country,
           port_date = EXCLUDED.port_date, updated_at = EXCLUDED.updated_at, state = EXCLUDED.state
), history AS (
    INSERT INTO transitions (port_in_request_sid, at, cause_event_id, phone_number, status_from, status_to,
                             reason_code, reason, kind)
    SELECT sid, at, cause_event_id, phone_number, status_from, status_to, reason_code, reason, kind
      FROM jsonb_to_recordset($3::jsonb) AS x(sid text, seq integer, at timestamptz, cause_event_id text,
                                              phone_number text, status_from text, status_to text,
                                              reason_code text, reason text, kind text)
     ORDER BY seq
), fees AS (
    INSERT INTO porting_fees (port_in_request_sid, phone_number, amount, currency, completed_at, cause_event_id)
    SELECT sid, phone_number, amount, currency, completed_at, cause_event_id
      FROM jsonb_to_recordset($4::jsonb) AS x(sid text, phone_number text, amount numeric, currency text,
                                              completed_at timestamptz, cause_event_id text)
    ON CONFLICT DO NOTHING
), parked AS (
    INSERT INTO parked_events (port_in_request_sid, event_type, event_id, event_source, event_time, traceparent,
                               data, reason, parked_at, original, source_topic, source_partition, source_offset)
    SELECT x.sid, x.event_type, x.event_id, x.event_source, x.event_time, x.traceparent, x.data, x.reason, $7,
           decode(x.original, 'base64'), i.topic, i.partition, i."offset"
      FROM jsonb_to_recordset($5::jsonb) AS x(sid text, seq integer, event_type text, event_id text,
                                              event_source text, event_time timestamptz, traceparent text,
                                              data jsonb, reason text, original text)
      LEFT JOIN inbox i ON i.consumer = $8 AND i.event_source = x.event_source AND i.event_id = x.event_id
     ORDER BY x.seq
), unparked AS (
    DELETE FROM parked_events WHERE id = ANY($6::bigint[])
)
SELECT 1
"""
