"""The consume loop: poll, hand each partition's batch to the pipeline, survive any record.

The runtime polls aiokafka itself instead of through FastStream's subscriber, because the
hostile case lives inside the poll: a record whose header key is not UTF-8 makes the client
raise from `getmany`, and FastStream's task restarts into the same record forever (and the
other partitions' records drained in that call are lost from memory). Here such a failure
rewinds every partition to what was committed and steps through record by record until the
culprit is found; it is dead-lettered with what can be had (its place and the error), and
the partition moves on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka import errors as kafka_errors

from . import metrics
from .consumer import EventConsumer, ProcessingAbandoned, commit_offsets
from .dead_letters import UndecodableRecord
from .failures import Backoff, classify, describe
from .health import ProgressBoard
from .kafka import build_consumer
from .logs import get_logger
from .raw_records import RawConsumerRecord, fetch_raw_record, fetch_rest_of_batch
from .settings import ServiceSettings

log = get_logger(__name__)
CONSUMER_PART = "consumer"  # its name on the progress board (/health)
NARROWING_LIMIT = 500  # records stepped through one by one before polling normally again
SMALL_POLL = 100  # a poll with fewer records lingers once for more (ConsumeLoop._poll)


async def undecodable_culprit(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int,
                              error: BaseException) -> tuple[object, str]:
    """What to dead-letter for the record at `offset` that the client could not decode: its raw
    bytes read again when the broker gives them, else its place only; with the reason. The
    service and `porting replay` both use this, so each recognises the other's dead letter."""
    try:
        culprit = await fetch_raw_record(consumer, tp, offset)
    except Exception as fetch_error:  # the broker away, or bytes nobody can walk: keep its place
        log.warning("could not read the undecodable record's bytes", error=describe(fetch_error))
        culprit = None
    if culprit is not None:
        return culprit, f"the Kafka client could not decode this record: {describe(error)}"
    return (UndecodableRecord(tp.topic, tp.partition, offset),
            f"the Kafka client could not decode this record ({describe(error)}); its bytes are not available")


class UnreadableRest(NamedTuple):
    """A record after the culprit that cannot be decoded either, and why."""

    raw: RawConsumerRecord
    reason: str

    @property
    def offset(self) -> int:
        return self.raw.offset


def runs_of(rest: Sequence[ConsumerRecord | UnreadableRest]) -> Iterator[list[ConsumerRecord] | UnreadableRest]:
    """The rest in order: each run of readable records as one list, each unreadable record alone."""
    readable: list[ConsumerRecord] = []
    for record in rest:
        if isinstance(record, UnreadableRest):
            if readable:
                yield readable
                readable = []
            yield record
        else:
            readable.append(record)
    if readable:
        yield readable


async def rest_of_undecodable_batch(consumer: AIOKafkaConsumer, tp: TopicPartition,
                                    culprit: int) -> list[ConsumerRecord | UnreadableRest] | None:
    """The records after the undecodable one at `culprit` in its own record batch, read from the
    raw batch: aiokafka decodes a whole batch before it skips to the position, so each of them
    would fail with the culprit, again and again. Each comes as the client would have given it,
    or with the reason it cannot be decoded either. None when the broker did not give the batch
    (the next poll finds out, one record on). The service and `porting replay` both use this."""
    try:
        rest = (await fetch_rest_of_batch(consumer, tp, culprit))[1:]
    except Exception as fetch_error:
        log.warning("could not read the rest of the undecodable record's batch", error=describe(fetch_error))
        return None
    records: list[ConsumerRecord | UnreadableRest] = []
    for raw in rest:
        try:
            records.append(_as_consumer_record(raw))
        except UnicodeDecodeError as error:
            records.append(UnreadableRest(raw, f"the Kafka client could not decode this record: {describe(error)}"))
    return records


class ConsumeLoop:
    def __init__(self, settings: ServiceSettings, pipeline: EventConsumer, board: ProgressBoard) -> None:
        self.settings, self.pipeline, self.board = settings, pipeline, board
        self.consumer: AIOKafkaConsumer | None = None
        self.stopping = asyncio.Event()
        # Where each partition's next unprocessed record is: the rewind point after a bad poll.
        self.committed: dict[TopicPartition, int] = {}

    def stop(self) -> None:
        self.stopping.set()

    @property
    def running(self) -> bool:
        return self.consumer is not None

    async def run(self) -> None:
        group = f"{self.settings.consumer_group_prefix}{self.pipeline.name}"
        consumer = build_consumer(self.settings, self.pipeline.topics, group)
        self.board.starting(CONSUMER_PART, f"joining consumer group {group}")
        try:
            await consumer.start()  # returns once the group has assigned this member its partitions
        except BaseException:  # failed or stopped while joining: its connections are closed either way
            await consumer.stop()
            raise
        self.board.started(CONSUMER_PART)
        self.consumer = consumer
        backoff = Backoff(maximum=5.0)
        try:
            while not self.stopping.is_set():
                try:
                    fetched = await self._poll(consumer)
                except Exception as error:
                    if classify(error) == "transient":
                        log.warning("polling failed; retrying", error=describe(error))
                        self.board.failing("consumer poll", describe(error))
                        await self._sleep(backoff.next_delay())
                        continue
                    await self._step_past_undecodable(consumer, error)
                    continue
                backoff.reset()
                if fetched:
                    records = [r for batch in fetched.values() for r in batch]
                    if not await self._handle(consumer, records):
                        return
                self._report_lag(consumer)
        finally:
            self.consumer = None
            await consumer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[ConsumerRecord]]:
        """One poll. A small one waits `consumer_linger_ms` once and takes what arrived meanwhile:
        below the peak, records trickle in and each poll's batch pays a transaction's round trips,
        an offset commit and a relay pass for a handful of events, so half the peak rate kept two
        cores busy and the queues long. Paced at 640 requests/s through portability and workflow
        (make bench's latency phase): p50 318/319 -> 208/216 ms, p99 1,149/962 -> 346/385 ms with
        a 10 ms linger. A full poll does not wait. Each partition's records stay in order."""
        batch_size = self.settings.consumer_batch_size
        fetched = await consumer.getmany(timeout_ms=200, max_records=batch_size)
        count = sum(len(records) for records in fetched.values())
        if not fetched or not self.settings.consumer_linger_ms or count >= min(SMALL_POLL, batch_size):
            return fetched
        await asyncio.sleep(self.settings.consumer_linger_ms / 1000)
        try:
            more = await consumer.getmany(timeout_ms=0, max_records=batch_size - count)
        except BaseException:
            # The first look's records are not handled: the next poll reads them again, whatever
            # the caller does with this failure (retry, or step past an undecodable record).
            for tp, records in fetched.items():
                consumer.seek(tp, records[0].offset)
            raise
        for tp, records in more.items():
            fetched.setdefault(tp, []).extend(records)
        return fetched

    async def _handle(self, consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord]) -> bool:
        try:
            await self.pipeline.process(records, consumer)
        except ProcessingAbandoned:
            return False  # shutting down: nothing of it was committed, it comes again
        for record in records:
            self.committed[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return True

    def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = self.committed.get(tp)
            lag = max(0, highwater - position) if position is not None else 0
            name = f"partition {tp.topic}[{tp.partition}]"
            self.board.waiting(name, lag)
            metrics.CONSUMER_LAG.labels(self.pipeline.name, tp.topic, tp.partition).set(lag)

    async def _step_past_undecodable(self, consumer: AIOKafkaConsumer, error: BaseException) -> None:
        log.error("the Kafka client could not decode a record; finding it", error=describe(error))
        metrics.PIPELINE_FAILURES.labels(self.pipeline.name, "undecodable").inc()
        partitions = sorted(consumer.assignment())
        await self._rewind(consumer, partitions)
        for tp in partitions:
            await self._narrow(consumer, tp)

    async def _rewind(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        # The failed poll may have moved other partitions' positions past records it then dropped.
        for tp in partitions:
            if tp in self.committed:
                consumer.seek(tp, self.committed[tp])
                continue
            committed = await consumer.committed(tp)
            if committed is not None:
                consumer.seek(tp, committed)
            else:
                await consumer.seek_to_beginning(tp)  # the inbox skips what was already handled

    async def _narrow(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """One record at a time, until the culprit is found or the partition has nothing more buffered."""
        good: list[ConsumerRecord] = []
        while len(good) < NARROWING_LIMIT and not self.stopping.is_set():
            try:
                fetched = await consumer.getmany(tp, timeout_ms=200, max_records=1)
            except kafka_errors.KafkaError as error:
                if classify(error) == "transient":
                    break
                await self._skip_culprit(consumer, tp, good, error)
                good = []
                continue
            except Exception as error:
                await self._skip_culprit(consumer, tp, good, error)
                good = []
                continue
            records = fetched.get(tp, [])
            if not records:
                break
            good.extend(records)
        if good:
            await self._handle(consumer, good)

    async def _skip_culprit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, good: list[ConsumerRecord],
                            error: BaseException) -> None:
        if good and not await self._handle(consumer, good):
            return
        offset = await consumer.position(tp)
        culprit, reason = await undecodable_culprit(consumer, tp, offset, error)
        await self.pipeline.record_undecodable(culprit, reason)
        await commit_offsets(consumer, self.pipeline.name, {tp: offset + 1})
        self.committed[tp] = offset + 1
        after = await self._rest_of_batch(consumer, tp, offset)
        consumer.seek(tp, after)

    async def _rest_of_batch(self, consumer: AIOKafkaConsumer, tp: TopicPartition, culprit: int) -> int:
        """The rest of the culprit's record batch, each record handled, or dead-lettered when it
        cannot be decoded either. Returns the offset to go on from."""
        rest = await rest_of_undecodable_batch(consumer, tp, culprit)
        if rest is None:
            return culprit + 1
        for run in runs_of(rest):
            if isinstance(run, UnreadableRest):
                await self.pipeline.record_undecodable(run.raw, run.reason)
                await commit_offsets(consumer, self.pipeline.name, {tp: run.offset + 1})
                self.committed[tp] = run.offset + 1
            elif not await self._handle(consumer, run):
                return run[0].offset  # shutting down: from the first one not committed
        return self.committed[tp]

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            pass


def _as_consumer_record(raw: RawConsumerRecord) -> ConsumerRecord:
    """A raw record as the client would have given it; UnicodeDecodeError for a header name it cannot take."""
    headers = tuple((name.decode("utf-8"), value) for name, value in raw.headers)
    return ConsumerRecord(raw.topic, raw.partition, raw.offset, raw.timestamp, 0, raw.key, raw.value, None,
                          -1 if raw.key is None else len(raw.key), -1 if raw.value is None else len(raw.value),
                          headers)  # type: ignore[arg-type]
