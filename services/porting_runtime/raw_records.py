"""A record the Kafka client cannot decode, read again from the broker's raw bytes.

aiokafka decodes header names as strict UTF-8 and raises for the whole fetch. Here one
partition is fetched again from the culprit's offset and the record batch is walked by hand,
keeping every field as bytes, so the dead letter holds the record's original bytes and its
timestamp (which tells a new record in a reused place from a redelivery).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.default_records import _DefaultRecordBatchPy
from aiokafka.record.util import decode_varint

_BATCH_HEADER = 61  # bytes of a v2 record batch before its records
_MAX_FETCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class RawConsumerRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[bytes, bytes | None]]


async def fetch_raw_record(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> RawConsumerRecord | None:
    """The record at `offset`, every field as bytes; None when the broker does not give it."""
    records = await fetch_rest_of_batch(consumer, tp, offset)
    return records[0] if records and records[0].offset == offset else None


async def fetch_rest_of_batch(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> list[RawConsumerRecord]:
    """The records from `offset` to the end of the record batch that holds it, every field as
    bytes; empty when the broker does not give them."""
    client = consumer._client  # noqa: SLF001
    node_id = client.cluster.leader_for_partition(tp)
    if node_id is None or node_id < 0:
        return []
    request = FetchRequest(500, 1, _MAX_FETCH_BYTES, 0, [(tp.topic, [(tp.partition, offset, _MAX_FETCH_BYTES)])])
    response = await client.send(node_id, request)
    for topic, partitions in response.topics:
        for partition, error_code, _highwater, *rest in partitions:
            if topic == tp.topic and partition == tp.partition and error_code == 0 and rest[-1]:
                return records_from(bytes(rest[-1]), tp, offset)
    return []


def records_from(data: bytes, tp: TopicPartition, offset: int) -> list[RawConsumerRecord]:
    """Of fetched bytes, the records of the first batch reaching past `offset`, from `offset` on."""
    position = 0
    while position + _BATCH_HEADER <= len(data):
        base_offset = int.from_bytes(data[position:position + 8], "big", signed=True)
        length = int.from_bytes(data[position + 8:position + 12], "big", signed=True)
        end = position + 12 + length
        if end > len(data):
            return []  # a partial batch at the end of the fetch
        batch = _DefaultRecordBatchPy(data[position:end])
        position = end
        if batch.magic != 2 or batch.is_control_batch or batch.next_offset <= offset:
            continue
        batch._maybe_uncompress()  # noqa: SLF001
        buffer, pos = batch._buffer, batch._pos  # noqa: SLF001
        records = []
        for _ in range(batch._num_records):  # noqa: SLF001
            record, pos = _read(buffer, pos, batch, base_offset, tp)
            if record.offset >= offset:
                records.append(record)
        return records
    return []


def _read(buffer: bytearray, pos: int, batch: _DefaultRecordBatchPy, base_offset: int,
          tp: TopicPartition) -> tuple[RawConsumerRecord, int]:
    length, pos = decode_varint(buffer, pos)
    end = pos + length
    _attributes, pos = decode_varint(buffer, pos)
    timestamp_delta, pos = decode_varint(buffer, pos)
    offset_delta, pos = decode_varint(buffer, pos)
    key, pos = _bytes(buffer, pos)
    value, pos = _bytes(buffer, pos)
    count, pos = decode_varint(buffer, pos)
    headers = []
    for _ in range(count):
        name, pos = _bytes(buffer, pos)
        header_value, pos = _bytes(buffer, pos)
        headers.append((name or b"", header_value))
    timestamp = batch.max_timestamp if batch.timestamp_type == 1 else batch.first_timestamp + timestamp_delta
    return RawConsumerRecord(tp.topic, tp.partition, base_offset + offset_delta, timestamp, key, value, headers), end


def _bytes(buffer: bytearray, pos: int) -> tuple[bytes | None, int]:
    length, pos = decode_varint(buffer, pos)
    if length < 0:
        return None, pos
    return bytes(buffer[pos:pos + length]), pos + length
