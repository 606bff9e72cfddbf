"""A keyed record goes to the partition Kafka's own clients would choose."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from porting_runtime.partitioning import KeyPartitioner, murmur2


def test_murmur2_agrees_with_aiokafkas_for_keys_of_every_length_and_byte():
    rng = random.Random(20261123)
    keys = [bytes(rng.randrange(256) for _ in range(length)) for length in range(0, 70) for _ in range(40)]
    keys += [b"PN" + bytes(f"{i:032x}", "ascii") for i in range(500)]  # request sids
    keys += [b"\xff" * n for n in range(9)] + [b"\x00" * n for n in range(9)]
    assert [murmur2(k) for k in keys] == [aiokafka_murmur2(k) & 0xFFFFFFFF for k in keys]


def test_murmur2_matches_the_java_clients_known_values():
    # From Apache Kafka's UtilsTest.testMurmur2 (signed Java ints, here as unsigned).
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    assert {k: murmur2(k) for k in cases} == {k: v & 0xFFFFFFFF for k, v in cases.items()}


def test_a_keyed_record_goes_where_aiokafkas_default_partitioner_sends_it():
    rng = random.Random(7)
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    for partitions in (1, 3, 6, 7, 64):
        every = list(range(partitions))
        for _ in range(300):
            key = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            assert ours(key, every, every) == theirs(key, every, every)


def test_a_record_without_a_key_goes_to_an_available_partition():
    chosen = {KeyPartitioner()(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}
    assert chosen == {1, 3}
