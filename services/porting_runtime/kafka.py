"""Broker setup: the FastStream broker and subscriber, the relay's producer, topic creation."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import FAKE_CONSUMER, KafkaMessage
from faststream.kafka.security import parse_security
from faststream.kafka.subscriber.usecase import BatchSubscriber

from .consumer import EventConsumer
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
        request_timeout_ms=15_000,
    )


def build_broker(settings: ServiceSettings) -> KafkaBroker:
    # graceful_timeout: on SIGTERM an in-flight batch gets this long to finish before it is abandoned.
    # Its logs go through the root logger, so they come out as JSON like the rest.
    return KafkaBroker(
        settings.kafka_bootstrap_servers, security=settings.kafka_security(), graceful_timeout=15.0,
        logger=logging.getLogger("faststream.porting"),
    )


async def _records_as_they_are(records: tuple[ConsumerRecord, ...]) -> KafkaMessage:
    # Headers and bodies stay raw bytes: the pipeline validates them, so a malformed
    # message becomes a dead letter instead of an error before any handler runs.
    return KafkaMessage(
        body=[r.value for r in records],
        headers={},
        raw_message=records,
        consumer=FAKE_CONSUMER,
    )


async def _no_decoding(message: KafkaMessage) -> Any:
    return message.body


def subscribe(broker: KafkaBroker, pipeline: EventConsumer, settings: ServiceSettings) -> BatchSubscriber:
    """One batch subscriber for all of a service's topics, committing offsets only through the pipeline."""
    subscriber = broker.subscriber(
        *pipeline.topics,
        group_id=pipeline.name,
        batch=True,
        max_records=settings.consumer_batch_size,
        batch_timeout_ms=100,
        # FastStream's Kafka default (ACK_FIRST) is at-most-once; offsets are committed
        # by the pipeline, per partition, after the database transaction.
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        parser=_records_as_they_are,
        decoder=_no_decoding,
    )

    @subscriber
    async def consume_batch(message: KafkaMessage = Context("message")) -> None:
        await pipeline.process(message.raw_message, subscriber.consumer)

    return subscriber


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
