"""A parked event as stored and as dead-lettered.

Parked, an event keeps the bytes and headers it came with (sealed at rest: DESIGN 9 keeps
stored copies of whole events encrypted) and its place, so that if its request finds it
invalid it is dead-lettered exactly as it arrived, and a redrive sends the same record back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from porting_runtime.record_text import name_bytes
from porting_runtime.sealed_outbox import RawHeaders, pack_message, unpack_message
from porting_runtime.sealing import Sealer
from schemas import CloudEvent
from schemas.cloudevents import envelope_headers
from schemas.topics import event_for_type

# The place of an event parked before places were kept: no real offset is ever negative.
UNKNOWN_PLACE = -1


@dataclass(frozen=True)
class ParkedRecord:
    """A parked event as the dead-letter writer takes a consumer record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: RawHeaders


def sealed_original(event: CloudEvent[Any], sealer: Sealer | None) -> bytes | None:
    """The event's original value and headers, packed and sealed."""
    origin = event.origin
    if origin is None or sealer is None:
        return None
    headers = [(name_bytes(n), v) for n, v in origin.headers]
    return sealer.seal(pack_message(origin.value, headers))


async def parked_records(connection: asyncpg.Connection, ids: list[int], sealer: Sealer,
                         topic_prefix: str) -> dict[int, ParkedRecord]:
    rows = await connection.fetch(
        """SELECT id, port_in_request_sid, event_type, event_id, event_source, event_time, traceparent, data,
                  original, source_topic, source_partition, source_offset
             FROM parked_events WHERE id = ANY($1::bigint[])""", ids)
    return {row["id"]: _record(row, sealer, topic_prefix) for row in rows}


def _record(row: Any, sealer: Sealer, topic_prefix: str) -> ParkedRecord:
    sid = row["port_in_request_sid"]
    if row["original"] is not None:
        value, headers = unpack_message(sealer.unseal(row["original"]))
    else:  # parked before originals were kept: the same event, encoded again
        try:
            value = event_for_type(row["event_type"]).model_validate(json.loads(row["data"])).model_dump_json().encode()
        except (ValueError, KeyError):  # a copy the contract has since come to refuse: as it was stored
            value = row["data"].encode()
        time: datetime | None = row["event_time"]
        headers = [(n.encode(), v) for n, v in envelope_headers(
            row["event_type"], sid, source=row["event_source"], event_id=row["event_id"], time=time,
            traceparent=row["traceparent"])]
    placed = row["source_topic"] is not None
    # The Kafka key is the request sid (DESIGN 3); handlers are not given the record's own.
    return ParkedRecord(row["source_topic"] if placed else f"{topic_prefix}{row['event_type']}",
                        row["source_partition"] if placed else UNKNOWN_PLACE,
                        row["source_offset"] if placed else UNKNOWN_PLACE, sid.encode(), value, headers)
