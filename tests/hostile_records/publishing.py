"""Publishing hostile records to Kafka (raw batches where aiokafka's producer refuses), and
reading back the dead letters the service kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .core import ONE_MIB, Header, Hostile


# --- publishing them, and reading back what the service kept ------------------------------------

@dataclass(frozen=True)
class Placed:
    """A published record and where the broker put it."""

    record: Hostile
    topic: str
    partition: int
    offset: int

    @property
    def place(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


async def publish_hostile(settings: Any, topic: str, records: Sequence[Hostile]) -> list[Placed]:
    """Publish in order (pipelined; each partition keeps the order), return where each landed."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    from porting_runtime.kafka import connection_options, ensure_topics

    await ensure_topics(settings, [topic])
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False,
                                linger_ms=5, request_timeout_ms=30_000)
    await producer.start()
    try:
        pending = []
        for record in records:
            if record.needs_raw_batch:
                pending.append(await _send_raw(producer, topic, record))
            else:
                pending.append(await producer.send(topic, record.value, key=record.key, headers=list(record.headers)))
        delivered = await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return [Placed(r, topic, m.partition, m.offset) for r, m in zip(records, delivered, strict=True)]


async def _send_raw(producer: Any, topic: str, record: Hostile) -> Any:
    from aiokafka.partitioner import DefaultPartitioner

    partitions = sorted(await producer.partitions_for(topic))
    # Without a key, the first partition rather than a random one: the same records land in the same places.
    partition = partitions[0] if record.key is None else DefaultPartitioner()(record.key, partitions, partitions)
    return await send_raw_batch(producer, topic, partition, record.key, record.value, list(record.headers))


async def send_raw_batch(producer: Any, topic: str, partition: int, key: bytes | None, value: bytes | None,
                         headers: list[Header]) -> Any:
    """A batch of one record (see send_raw_records)."""
    return await send_raw_records(producer, topic, partition, [(key, value, headers)])


async def send_raw_records(producer: Any, topic: str, partition: int,
                           records: Sequence[tuple[bytes | None, bytes | None, list[Header]]]) -> Any:
    """One batch of these records built by aiokafka's pure-Python builder, which writes each header
    name as `name.encode("utf-8")`: a RawHeaderName goes out as its raw bytes. (The compiled
    builder the producer normally uses reads the str itself.) Returns the delivery to await; the
    records get consecutive offsets from its offset on."""
    import time

    from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

    batch = producer.create_batch()
    batch._builder = _DefaultRecordBatchBuilderPy(  # noqa: SLF001
        magic=2, compression_type=0, is_transactional=0, producer_id=-1, producer_epoch=-1,
        base_sequence=0, batch_size=2 * ONE_MIB)
    for relative, (key, value, headers) in enumerate(records):
        appended = batch._builder.append(relative, int(time.time() * 1000), key=key, value=value,  # noqa: SLF001
                                         headers=headers)
        assert appended is not None, "the records fit one batch"
    batch._relative_offset = len(records)  # noqa: SLF001
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)


def end_offsets(placed: Sequence[Placed]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for item in placed:
        ends[item.partition] = max(ends.get(item.partition, 0), item.offset + 1)
    return ends


@dataclass(frozen=True)
class KeptDeadLetter:
    """A dead_letters row, opened with the service's key."""

    id: int
    place: tuple[str, int, int]
    key: bytes | None
    value: bytes | None
    headers: list[tuple[bytes, bytes | None]]
    original_kept: bool
    published_truncated: bool
    error: str
    raw_value: bytes | None = field(repr=False, default=None)  # as stored (sealed)
    raw_header_values: list[bytes | None] = field(repr=False, default_factory=list)


async def kept_dead_letters(settings: Any, *, after_id: int = 0) -> list[KeptDeadLetter]:
    import asyncpg

    from porting_runtime.sealing import Sealer

    sealer = Sealer.from_settings(settings)
    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch("SELECT * FROM dead_letters WHERE id > $1 ORDER BY id", after_id)
    finally:
        await connection.close()
    kept = []
    for row in rows:
        open_ = sealer.unseal_optional if row["sealed"] else (lambda data: data)
        names = [bytes(n) if not isinstance(n, str) else n.encode() for n in row["header_names"]]
        kept.append(KeptDeadLetter(
            id=row["id"], place=(row["source_topic"], row["source_partition"], row["source_offset"]),
            key=row["key"], value=open_(row["value"]),
            headers=[(n, open_(v)) for n, v in zip(names, row["header_values"], strict=True)],
            original_kept=row["original_kept"], published_truncated=row["published_truncated"],
            error=row["error"], raw_value=row["value"], raw_header_values=list(row["header_values"]),
        ))
    return kept
