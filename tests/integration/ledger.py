"""A small test service on the shared runtime: it records an effect and publishes a follow-up."""

from __future__ import annotations

import asyncio
import os
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from porting_runtime import EventRejected, Route, RunningService, ServiceDefinition, ServiceSettings
from porting_runtime.kafka import connection_options, ensure_topics
from schemas import AlertKind, CloudEvent, KafkaRecord, PortAlertRaised, PortRequested, encode

REJECTED_CUSTOMER = "Rule Breaker"


async def record_effect(event: CloudEvent[PortRequested], unit: Any) -> None:
    if event.data.losing_carrier_information.customer_name == REJECTED_CUSTOMER:
        raise EventRejected("the customer name breaks a rule")
    await record_effect_without_rules(event, unit)


async def record_effect_without_rules(event: CloudEvent[PortRequested], unit: Any) -> None:
    """The ledger after a fix is deployed: the rule that rejected events is gone."""
    await unit.connection.execute(
        "INSERT INTO effects (request_sid, event_id, worker_pid) VALUES ($1, $2, $3)",
        event.data.subject, event.attributes.id, os.getpid(),
    )
    unit.publish(PortAlertRaised(
        port_in_request_sid=event.data.subject, alert=AlertKind.REVIEW_SLA_BREACHED,
        message=f"effect of {event.attributes.id}", raised_at=datetime.now(UTC),
    ))


LEDGER = ServiceDefinition(
    name="ledger",
    migrations=Path(__file__).parent / "ledger_migrations",
    routes=lambda pool, settings: [Route(PortRequested, record_effect)],
    publishes=[PortAlertRaised.event_type],
)


FIXED_LEDGER = ServiceDefinition(
    name="ledger",
    migrations=LEDGER.migrations,
    routes=lambda pool, settings: [Route(PortRequested, record_effect_without_rules)],
    publishes=LEDGER.publishes,
)


@contextlib.asynccontextmanager
async def running(settings: ServiceSettings, definition: ServiceDefinition = LEDGER, **options: Any) -> AsyncIterator[RunningService]:
    service = RunningService(definition, settings, serve_http=False, **options)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def publish(settings: ServiceSettings, records: Sequence[KafkaRecord]) -> None:
    await ensure_topics(settings, {r.topic for r in records})
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)
    finally:
        await producer.stop()


def port_requested_record(settings: ServiceSettings, event: PortRequested, **options: Any) -> KafkaRecord:
    return encode(event, source="tests", topic=settings.topic(event.event_type), **options)


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


async def wait_until(check: Any, *, timeout: float = 30.0, interval: float = 0.1) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(interval)


async def fetchval(database_url: str, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def rows_are(settings: ServiceSettings, table: str, expected: int) -> bool:
    return await rows_at_least(settings, table, expected, exactly=True)


async def rows_at_least(settings: ServiceSettings, table: str, count: int, *, exactly: bool = False) -> bool:
    try:
        rows = await fetchval(settings.database_url, f"SELECT count(*) FROM {table}")
    except asyncpg.UndefinedTableError:  # the service has not applied its migrations yet
        return False
    return rows == count if exactly else rows >= count


async def committed_offsets(settings: ServiceSettings, group: str, topic: str) -> dict[int, int | None]:
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

