"""`porting replay`'s work: read a range of a topic without a consumer group and feed it through
one service's own pipeline.

- The service's pipeline is built as the runtime builds it (its routes, its unit options with
  the follow-ups it declares, its dead-letter writer with its sealer): the inbox makes an event
  the service already applied a duplicate, so a replay changes nothing already applied and sends
  nothing twice; an event the service lost (a database restored from a backup) is applied again,
  and its follow-ups go to the service's outbox, for the running service's relay to publish.
- The topic is read by partitions assigned by hand (no group: the service's consumer group and
  its committed offsets are never touched), from the start offset up to the end offsets taken
  when the replay starts, so it ends even while producers keep writing.
- A time range is applied to each record's timestamp while scanning (the embedded broker's
  time-based offset lookup is not relied on).
- A record the Kafka client cannot decode is dead-lettered by its place, as the service's own
  consume loop does; one kept before is recognised and not kept or sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka import errors as kafka_errors
from porting_runtime import EventConsumer, ServiceDefinition, ServiceSettings
from porting_runtime.consume_loop import UnreadableRest, rest_of_undecodable_batch, runs_of, undecodable_culprit
from porting_runtime.database import apply_migrations, create_pool
from porting_runtime.dead_letter_writer import DeadLetterWriter
from porting_runtime.failures import Backoff, classify, describe
from porting_runtime.kafka import connection_options
from porting_runtime.logs import get_logger
from porting_runtime.sealing import Sealer

from schemas import dead_letter_topic

log = get_logger(__name__)

FETCH_TIMEOUT_MS = 500
# A partition that gives nothing for this long before its end offset is reported, not waited on forever.
STALL_SECONDS = 60.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OUTCOMES = ("handled", "duplicate", "dead_lettered")


class ReplayRefused(Exception):
    """The replay cannot be done as asked (a topic the service does not consume, one the broker
    does not have, a partition it does not hold); the message says why, in one line."""


class DatabaseUnavailable(Exception):
    """The service's database cannot be reached or refuses the connection."""


def epoch_millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class Selection:
    """Which records of the topic to replay. Offsets apply to every partition read; times are
    compared with each record's timestamp: from_time inclusive, to_time exclusive."""

    from_offset: int | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None
    partition: int | None = None

    @property
    def timed(self) -> bool:
        return self.from_time is not None or self.to_time is not None

    def start_offset(self, beginning: int) -> int:
        return beginning if self.from_offset is None else max(self.from_offset, beginning)

    def takes(self, timestamp_ms: int | None) -> bool:
        if not self.timed:
            return True
        if timestamp_ms is None or timestamp_ms < 0:  # no timestamp: never within a time range
            return False
        if self.from_time is not None and timestamp_ms < epoch_millis(self.from_time):
            return False
        return self.to_time is None or timestamp_ms < epoch_millis(self.to_time)


@dataclass
class PartitionReplay:
    """One partition's range and what became of its records so far."""

    partition: int
    start_offset: int  # the first offset of the range
    next_offset: int  # where reading stands
    # The partition's end when the replay started (exclusive): the high watermark of its first
    # fetch, unknown until then.
    end_offset: int | None = None
    read: int = 0  # records read in the range
    replayed: int = 0  # of those, within the time range: fed to the service
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int | None:
        return None if self.end_offset is None else max(0, self.end_offset - self.start_offset)

    @property
    def done(self) -> int:
        end = self.next_offset if self.end_offset is None else min(self.next_offset, self.end_offset)
        return max(0, end - self.start_offset)

    @property
    def finished(self) -> bool:
        return self.end_offset is not None and self.next_offset >= self.end_offset

    def counts(self) -> dict[str, int]:
        return {"read": self.read, "replayed": self.replayed, "applied": self.outcomes["handled"],
                "already_seen": self.outcomes["duplicate"], "dead_lettered": self.outcomes["dead_lettered"]}


@dataclass
class ReplayReport:
    service: str
    topic: str
    selection: Selection
    partitions: list[PartitionReplay] = field(default_factory=list)
    complete: bool = False

    def totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for partition in self.partitions:
            totals.update(partition.counts())
        return {key: totals[key] for key in ("read", "replayed", "applied", "already_seen", "dead_lettered")}

    def as_json(self) -> dict[str, Any]:
        selection = self.selection
        return {
            "service": self.service,
            "topic": self.topic,
            "from_offset": selection.from_offset,
            "from_time": selection.from_time.isoformat() if selection.from_time else None,
            "to_time": selection.to_time.isoformat() if selection.to_time else None,
            "complete": self.complete,
            **self.totals(),
            "partitions": [{"partition": p.partition, "start_offset": p.start_offset, "end_offset": p.end_offset,
                            **p.counts()} for p in self.partitions],
        }


@contextlib.asynccontextmanager
async def service_pipeline(definition: ServiceDefinition, settings: ServiceSettings,
                           pool_size: int) -> AsyncIterator[EventConsumer]:
    """The service's consumer pipeline on its database, as the runtime builds it, without its
    consume loop: records are brought to `process`. Migrations are not applied here."""
    sealer = Sealer.from_settings(settings)  # SealingKeyMissing: dead letters are sealed with it
    try:
        pool = await create_pool(settings.database_url, max_size=max(2, pool_size))
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
            asyncpg.ClientConfigurationError) as error:
        raise DatabaseUnavailable(describe(error)) from error
    try:
        yield EventConsumer(
            name=definition.name, pool=pool, routes=definition.routes(pool, settings),
            topic_prefix=settings.topic_prefix, unit_options=definition.unit_options(settings),
            dead_letters=DeadLetterWriter(definition.name, settings.topic(dead_letter_topic(definition.name)),
                                          sealer, settings.max_message_bytes),
        )
    finally:
        await pool.close()


def consumed_topic(pipeline: EventConsumer, settings: ServiceSettings, topic: str) -> str | None:
    """The topic as the service consumes it: named as in the contract (the settings' TOPIC_PREFIX
    is added) or in full; None when the service does not consume it."""
    for name in (settings.topic(topic), topic):
        if name in pipeline.routes:
            return name
    return None


async def replay_topic(
    definition: ServiceDefinition,
    settings: ServiceSettings,
    topic: str,
    selection: Selection,
    report: ReplayReport,
    *,
    on_start: Callable[[ReplayReport], None] = lambda report: None,
    on_progress: Callable[[PartitionReplay], None] = lambda partition: None,
) -> ReplayReport:
    """Replay `selection` of `topic` into the service; `report` is filled as it goes (so an
    interrupted replay still says how far it got) and returned complete."""
    async with service_pipeline(definition, settings, settings.database_pool_size) as pipeline:
        name = consumed_topic(pipeline, settings, topic)
        if name is None:
            consumed = ", ".join(t.removeprefix(settings.topic_prefix) for t in pipeline.topics)
            raise ReplayRefused(f"{definition.name} does not consume {topic!r}; it consumes: {consumed}")
        report.topic = name
        try:
            await apply_migrations(pipeline.pool, definition.name, definition.migrations)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise DatabaseUnavailable(describe(error)) from error
        reader = RangeReader(pipeline, settings, name, selection, report, on_progress)
        await reader.run(on_start)
    report.complete = True
    return report


class RangeReader:
    """Reads the range partition by partition (assigned, no group) and hands each fetch's records
    to the pipeline, the partitions concurrently as the consume loop does.

    Where the range ends is the high watermark of each partition's first fetch, not the broker's
    ListOffsets answer: the embedded broker answers that with the last batch's base offset + 1,
    short of the end whenever that batch holds more than one record.
    """

    def __init__(self, pipeline: EventConsumer, settings: ServiceSettings, topic: str, selection: Selection,
                 report: ReplayReport, on_progress: Callable[[PartitionReplay], None]) -> None:
        self.pipeline, self.settings, self.topic, self.selection = pipeline, settings, topic, selection
        self.report, self.on_progress = report, on_progress
        # An offset out of range (a --from-offset past the end) resets to the beginning; records
        # before the range's start are then passed over, never replayed.
        self.consumer = AIOKafkaConsumer(
            **connection_options(settings), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=max(settings.consumer_fetch_max_wait_ms, 100),
            max_partition_fetch_bytes=max(1024 * 1024, settings.max_message_bytes + 64 * 1024),
        )
        self.active: dict[TopicPartition, PartitionReplay] = {}

    async def run(self, on_start: Callable[[ReplayReport], None]) -> None:
        await self.consumer.start()
        try:
            await self._plan()
            on_start(self.report)
            await self._read()
        finally:
            await self.consumer.stop()

    async def _plan(self) -> None:
        consumer, selection = self.consumer, self.selection
        if self.topic not in await consumer.topics():
            raise ReplayRefused(f"the broker at {self.settings.kafka_bootstrap_servers} has no topic {self.topic!r}")
        partitions = sorted(consumer.partitions_for_topic(self.topic) or ())
        if selection.partition is not None:
            if selection.partition not in partitions:
                raise ReplayRefused(f"{self.topic} has no partition {selection.partition} "
                                    f"(it has {', '.join(map(str, partitions))})")
            partitions = [selection.partition]
        tps = [TopicPartition(self.topic, p) for p in partitions]
        consumer.assign(tps)
        beginnings = await consumer.beginning_offsets(tps)
        for tp in tps:
            start = selection.start_offset(beginnings[tp])
            replay = PartitionReplay(tp.partition, start, next_offset=start)
            self.report.partitions.append(replay)
            self.active[tp] = replay
            consumer.seek(tp, start)

    async def _read(self) -> None:
        backoff = Backoff(maximum=5.0)
        loop = asyncio.get_running_loop()
        progressed_at = loop.time()
        while self.active:
            try:
                fetched = await self.consumer.getmany(*self.active, timeout_ms=FETCH_TIMEOUT_MS,
                                                      max_records=self.settings.consumer_batch_size)
            except Exception as error:
                if isinstance(error, kafka_errors.KafkaError) and classify(error) == "transient":
                    log.warning("reading the topic failed; retrying", error=describe(error))
                    await asyncio.sleep(backoff.next_delay())
                    continue
                await self._step_past_undecodable(error)
                progressed_at = loop.time()
                continue
            backoff.reset()
            self._learn_ends()
            batches = {tp: self._take(self.active[tp], records) for tp, records in fetched.items() if tp in self.active}
            await self._feed(batches)
            if await self._update_positions():
                progressed_at = loop.time()
            elif loop.time() - progressed_at > STALL_SECONDS:
                stalled = ", ".join(f"partition {p.partition} at offset {p.next_offset} of "
                                    f"{'an end not yet known' if p.end_offset is None else p.end_offset}"
                                    for p in self.active.values())
                raise ReplayRefused(f"{self.topic} gave nothing for {STALL_SECONDS:.0f}s before its end ({stalled})")

    def _learn_ends(self) -> None:
        for tp, replay in self.active.items():
            if replay.end_offset is None and (highwater := self.consumer.highwater(tp)) is not None:
                replay.end_offset = highwater

    def _take(self, replay: PartitionReplay, records: Sequence[ConsumerRecord]) -> list[ConsumerRecord]:
        """The records of the range among those fetched, counted; those within the time range returned."""
        end = replay.end_offset
        in_range = [r for r in records if r.offset >= replay.start_offset and (end is None or r.offset < end)]
        replay.read += len(in_range)
        wanted = [r for r in in_range if self.selection.takes(r.timestamp)]
        replay.replayed += len(wanted)
        if records:
            replay.next_offset = max(replay.next_offset, records[-1].offset + 1)
        return wanted

    async def _feed(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        batches = {tp: records for tp, records in batches.items() if records}
        if not batches:
            return
        results = await asyncio.gather(*(self.pipeline.process(records) for records in batches.values()),
                                       return_exceptions=True)
        failure: BaseException | None = None
        for tp, result in zip(batches, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                continue
            replay = next(p for p in self.report.partitions if p.partition == tp.partition)
            replay.outcomes.update({k: v for k, v in result.items() if k in _OUTCOMES})
        if failure is not None:
            raise failure

    async def _update_positions(self) -> bool:
        """Move each partition to where the client stands; finish those at their end. True when any moved."""
        moved = False
        for tp, replay in list(self.active.items()):
            before = replay.next_offset, replay.end_offset
            replay.next_offset = max(replay.next_offset, await self.consumer.position(tp))
            moved = moved or (replay.next_offset, replay.end_offset) != before
            if replay.finished:
                del self.active[tp]
                self.consumer.pause(tp)
            self.on_progress(replay)
        return moved

    async def _step_past_undecodable(self, error: BaseException) -> None:
        """The client could not decode a record (a header name that is not UTF-8): as the service's
        consume loop does, go back to where each partition stands and read one record at a time
        until the culprit is found; it is dead-lettered by its place, and reading goes on."""
        log.error("the Kafka client could not decode a record; finding it", error=describe(error))
        for tp, replay in self.active.items():
            self.consumer.seek(tp, replay.next_offset)  # the failed poll may have moved past records it dropped
        for tp, replay in list(self.active.items()):
            good: list[ConsumerRecord] = []
            while len(good) < self.settings.consumer_batch_size and not replay.finished:
                try:
                    fetched = await self.consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=1)
                except Exception as culprit_error:
                    if isinstance(culprit_error, kafka_errors.KafkaError) and classify(culprit_error) == "transient":
                        break
                    await self._feed({tp: good})
                    good = []
                    await self._dead_letter_undecodable(tp, replay, culprit_error)
                    continue
                self._learn_ends()
                records = fetched.get(tp, [])
                if not records:
                    break
                good.extend(self._take(replay, records))
            await self._feed({tp: good})
        await self._update_positions()

    async def _dead_letter_undecodable(self, tp: TopicPartition, replay: PartitionReplay, error: BaseException) -> None:
        offset = await self.consumer.position(tp)
        # As the consume loop keeps it, so a dead letter it kept is recognised, not kept again.
        culprit, reason = await undecodable_culprit(self.consumer, tp, offset, error)
        await self._keep_dead_letter(replay, culprit, reason, offset)
        # The rest of its record batch would fail with it: read from the raw batch, as the consume loop does.
        rest = [r for r in await rest_of_undecodable_batch(self.consumer, tp, offset) or []
                if replay.end_offset is None or r.offset < replay.end_offset]
        for run in runs_of(rest):
            if not isinstance(run, UnreadableRest):
                await self._feed({tp: self._take(replay, run)})
            elif self.selection.takes(run.raw.timestamp):
                await self._keep_dead_letter(replay, run.raw, run.reason, run.offset)
            else:  # outside the replay's time range: read, not replayed
                replay.read += 1
                replay.next_offset = run.offset + 1
        self.consumer.seek(tp, replay.next_offset)

    async def _keep_dead_letter(self, replay: PartitionReplay, record: object, reason: str, offset: int) -> None:
        async with self.pipeline.pool.acquire() as connection, connection.transaction():
            [kept_now] = await self.pipeline.dead_letters.write(connection, [(record, reason)])
        replay.read += 1
        replay.replayed += 1
        replay.outcomes["dead_lettered" if kept_now else "duplicate"] += 1
        replay.next_offset = offset + 1
