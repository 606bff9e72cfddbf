"""Helpers every service's integration tests use: publish, collect, run a service, wait, read the database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from porting_runtime import RunningService, ServiceDefinition, ServiceSettings
from porting_runtime.kafka import connection_options, ensure_topics
from schemas import KafkaRecord


async def publish(settings: ServiceSettings, records: Sequence[KafkaRecord]) -> None:
    await ensure_topics(settings, {r.topic for r in records})
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)
    finally:
        await producer.stop()


async def collect(settings: ServiceSettings, topic: str, *, expect: int, timeout: float = 30.0, settle: float = 1.0) -> list[Any]:
    """Read a topic from the start until `expect` records arrived, then `settle` seconds more for extras."""
    await ensure_topics(settings, [topic])
    consumer = AIOKafkaConsumer(topic, **connection_options(settings), auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and len(records) < expect:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        settle_until = loop.time() + settle
        while loop.time() < settle_until:
            for batch in (await consumer.getmany(timeout_ms=100)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


@contextlib.asynccontextmanager
async def running_service(definition: ServiceDefinition, settings: ServiceSettings,
                          **options: Any) -> AsyncIterator[RunningService]:
    """The service in this process as it runs in production (`options` as RunningService takes
    them), stopped on the way out."""
    service = RunningService(definition, settings, **options)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def wait_until(check: Any, *, timeout: float = 30.0, interval: float = 0.1, what: str | None = None) -> Any:
    """Poll `check` until it returns something truthy, and return that. A timeout raises:
    a wait can never pass by running out of time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            name = what or getattr(check, "__name__", repr(check))
            raise TimeoutError(f"{name} did not hold within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def fetchval(database_url: str, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def outbox_at_rest(settings: ServiceSettings) -> bool:
    """No follow-up waits in the service's outbox: each was sent (and deleted) or set aside for good."""
    return await fetchval(settings.database_url,
                          "SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL AND set_aside_at IS NULL")


async def rows_are(settings: ServiceSettings, table: str, expected: int) -> bool:
    return await rows_at_least(settings, table, expected, exactly=True)


async def rows_at_least(settings: ServiceSettings, table: str, count: int, *, exactly: bool = False) -> bool:
    try:
        rows = await fetchval(settings.database_url, f"SELECT count(*) FROM {table}")
    except asyncpg.UndefinedTableError:  # the service has not applied its migrations yet
        return False
    return rows == count if exactly else rows >= count


async def committed_offsets(settings: ServiceSettings, service: str, topic: str) -> dict[int, int | None]:
    """The offsets the service's consumer group committed on a topic."""
    group = f"{settings.consumer_group_prefix}{service}"
    consumer = AIOKafkaConsumer(**connection_options(settings), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001
            partitions = consumer.partitions_for_topic(topic) or set()
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in sorted(partitions)}
    finally:
        await consumer.stop()



def service_environment(settings: ServiceSettings, **extra: str) -> dict[str, str]:
    """Environment variables that give a service process these settings (for subprocess workers)."""
    import os

    key = settings.data_encryption_keys.get_secret_value() if settings.data_encryption_keys else ""
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "DATABASE_URL": settings.database_url, "TOPIC_PREFIX": settings.topic_prefix,
            "CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix, "DATA_ENCRYPTION_KEYS": key,
            "HTTP_PORT": "0", **extra}
