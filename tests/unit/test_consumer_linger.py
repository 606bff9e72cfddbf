"""A small poll waits once for more records; a full one, or a linger of 0, does not."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from porting_runtime.consume_loop import ConsumeLoop
from porting_runtime.settings import ServiceSettings

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


def _records(tp: TopicPartition, offsets: range) -> list[ConsumerRecord]:
    return [ConsumerRecord(tp.topic, tp.partition, o, 0, 0, b"k", b"v", None, 1, 1, []) for o in offsets]


class _Polls:
    """A consumer whose getmany answers from a script, recording how it was asked."""

    def __init__(self, *answers: dict[TopicPartition, list[ConsumerRecord]] | Exception) -> None:
        self.answers, self.calls, self.seeks = list(answers), [], []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        self.calls.append((timeout_ms, max_records))
        answer = self.answers.pop(0) if self.answers else {}
        if isinstance(answer, Exception):
            raise answer
        return answer

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


def _loop(**settings: object) -> ConsumeLoop:
    return ConsumeLoop(ServiceSettings(**settings), pipeline=None, board=None)  # type: ignore[arg-type]


async def test_a_small_poll_takes_what_arrived_while_it_lingered_each_partition_in_order():
    polls = _Polls({A: _records(A, range(0, 2))}, {A: _records(A, range(2, 4)), B: _records(B, range(0, 1))})

    fetched = await _loop(consumer_linger_ms=1, consumer_batch_size=500)._poll(polls)  # type: ignore[arg-type]

    assert {tp: [r.offset for r in records] for tp, records in fetched.items()} == {A: [0, 1, 2, 3], B: [0]}
    assert polls.calls == [(200, 500), (0, 498)], "the second look waits no more and stays within the batch size"


async def test_a_full_poll_an_empty_one_or_a_linger_of_zero_is_handled_as_it_came():
    full = _Polls({A: _records(A, range(0, 100))})
    assert len((await _loop(consumer_linger_ms=1)._poll(full))[A]) == 100  # type: ignore[arg-type]
    assert len(full.calls) == 1

    empty = _Polls({})
    assert await _loop(consumer_linger_ms=1)._poll(empty) == {}  # type: ignore[arg-type]
    assert len(empty.calls) == 1

    never = _Polls({A: _records(A, range(0, 2))}, {A: _records(A, range(2, 3))})
    assert [r.offset for r in (await _loop(consumer_linger_ms=0)._poll(never))[A]] == [0, 1]  # type: ignore[arg-type]
    assert len(never.calls) == 1


async def test_when_the_second_look_fails_the_first_looks_records_are_read_again_by_the_next_poll():
    polls = _Polls({A: _records(A, range(5, 7)), B: _records(B, range(3, 4))}, UnicodeDecodeError("utf-8", b"", 0, 1, "x"))

    with pytest.raises(UnicodeDecodeError):
        await _loop(consumer_linger_ms=1)._poll(polls)  # type: ignore[arg-type]

    assert sorted(polls.seeks) == [(A, 5), (B, 3)]
