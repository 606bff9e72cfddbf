"""The benchmark's side of the broker: publish a workload (at full speed or paced) and watch
for the follow-ups that complete each unit of work, noting when each was published and seen.

Both run in the benchmark's process, on one clock (time.perf_counter), so a latency is the
difference of two readings of the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from porting_runtime.kafka import build_producer, connection_options
from porting_runtime.settings import ServiceSettings

from .bench_scenarios import Workload
from .bench_stats import due

now = time.perf_counter
# The collector's own fetch wait: a bound on what it adds to a measured latency.
COLLECTOR_FETCH_WAIT_MS = 10


def producer(settings: ServiceSettings) -> AIOKafkaProducer:
    """An upstream system's producer: the services' own configuration (acks=all, linger 5 ms)."""
    return build_producer(settings)


async def publish_all(kafka: AIOKafkaProducer, workload: Workload, sent: dict[str, float]) -> float:
    """Publish every record as fast as the client takes them; returns when the last was acknowledged.
    `sent` gets each key's publish time (when it was handed to the client)."""
    deliveries = []
    for key, record in zip(workload.keys, workload.records, strict=True):
        sent[key] = now()
        deliveries.append(await kafka.send(record.topic, record.value, key=record.key, headers=record.headers))
    await asyncio.gather(*deliveries)
    return now()


PACING_TICK = 0.002  # seconds


async def publish_paced(kafka: AIOKafkaProducer, workload: Workload, per_second: float,
                        sent: dict[str, float]) -> tuple[float, float]:
    """Publish at `per_second`, each record when it is due (not in bursts behind a slow start).
    Returns (start, end of the last hand-over to the client)."""
    total = len(workload)
    deliveries = []
    start = now()
    index = 0
    while index < total:
        target = due(now() - start, per_second, total)
        while index < target:
            key, record = workload.keys[index], workload.records[index]
            sent[key] = now()
            deliveries.append(await kafka.send(record.topic, record.value, key=record.key, headers=record.headers))
            index += 1
        if index < total:
            # Woken at most every PACING_TICK: each record still goes when due or within a tick
            # (its latency counts from then), without a wake-up per record at thousands a second.
            await asyncio.sleep(max(PACING_TICK, start + index / per_second - now()))
    last = now()
    await asyncio.gather(*deliveries)
    return start, last


class Arrivals:
    """When each unit of work was first seen, and the keys a run still waits for: `expect` names
    them, `arrived` notes one, `missing` counts those not seen yet (`_done` is set when none is)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0
        self.records = 0
        self._pending: set[str] = set()
        self._done = asyncio.Event()

    def arrived(self, key: str, seen: float) -> None:
        self.arrivals[key] = seen
        self._pending.discard(key)
        if not self._pending:
            self._done.set()

    def expect(self, keys: Sequence[str]) -> None:
        self._pending = set(keys).difference(self.arrivals)
        self._done = asyncio.Event()
        if not self._pending:
            self._done.set()

    @property
    def missing(self) -> int:
        return len(self._pending)


class Collector(Arrivals):
    """Reads topics from their beginning (no consumer group) and notes, for each unit of work a
    record completes, when it was first seen. `expect` then `finished` wait for a set of keys."""

    def __init__(self, settings: ServiceSettings, topics: Sequence[str],
                 completes: Callable[[ConsumerRecord], str | None]) -> None:
        super().__init__()
        self.settings, self.topics, self.completes = settings, list(topics), completes
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Collector:
        consumer = AIOKafkaConsumer(
            **connection_options(self.settings), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=COLLECTOR_FETCH_WAIT_MS,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()  # loads the metadata partitions_for_topic reads
        partitions = [TopicPartition(topic, p) for topic in self.topics
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            raise RuntimeError(f"no partitions for {self.topics}: create the topics first")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run(consumer), name="bench-collector")
        return self

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            fetched = await consumer.getmany(timeout_ms=100, max_records=10_000)
            seen = now()
            for records in fetched.values():
                for record in records:
                    self.records += 1
                    key = self.completes(record)
                    if key is None:
                        continue
                    if key in self.arrivals:
                        self.duplicates += 1
                        continue
                    self.arrived(key, seen)

    async def finished(self, timeout: float) -> bool:
        """True when every expected key arrived within `timeout` seconds."""
        assert self._task is not None, "start the collector first"
        done = asyncio.ensure_future(self._done.wait())
        try:
            await asyncio.wait({done, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
        if self._task.done():
            self._task.result()  # the collector failed: say why
        return not self._pending

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
