"""Broker setup: client options (SASL/TLS through FastStream's security settings), the relay's producer, topics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka.security import parse_security

from .consumer import EventConsumer
from .partitioning import KeyPartitioner
from .settings import ServiceSettings

DEFAULT_PARTITIONS = 6


def connection_options(settings: ServiceSettings) -> dict[str, Any]:
    """aiokafka keyword arguments: bootstrap servers and SASL/TLS from the settings."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, **parse_security(settings.kafka_security())}


def build_producer(settings: ServiceSettings) -> AIOKafkaProducer:
    # acks=all and no idempotence: the embedded broker refuses the idempotent producer,
    # and consumers dedupe on ce_id anyway.
    return AIOKafkaProducer(
        **connection_options(settings),
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=1024 * 1024,
        max_request_size=settings.max_message_bytes + 64 * 1024,
        request_timeout_ms=15_000,
        partitioner=KeyPartitioner(),
    )


def build_consumer(settings: ServiceSettings, topics: Sequence[str], group_id: str) -> AIOKafkaConsumer:
    # Offsets are committed by the pipeline, per partition, after the database transaction:
    # never automatically (at-most-once), never before.
    return AIOKafkaConsumer(
        *topics,
        **connection_options(settings),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        max_partition_fetch_bytes=max(1024 * 1024, settings.max_message_bytes + 64 * 1024),
    )


async def ensure_topics(settings: ServiceSettings, topics: Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(t, partitions, 1) for t in sorted(set(topics)) if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def service_topics(settings: ServiceSettings, pipeline: EventConsumer, publishes: Sequence[str]) -> list[str]:
    return [*pipeline.topics, pipeline.dead_letter_topic, *(settings.topic(t) for t in publishes)]
