"""What a phase of the benchmark is wired to: its topics' prefix, its databases' names, the
services' settings, and the broker clients the benchmark drives (a producer, a follow-up collector)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from porting_runtime.settings import ServiceSettings

from . import bench_load
from .bench_load import Collector
from .bench_scenarios import Workload


def service_settings(definition: Any, **values: Any) -> ServiceSettings:
    """The service's settings from the environment (CONSUMER_BATCH_SIZE=... make bench tries
    other values), pointed at the benchmark's broker and database."""
    settings = definition.settings(**values)
    if "data_encryption_keys" in type(settings).model_fields and settings.data_encryption_keys is None:
        from cryptography.fernet import Fernet

        settings = definition.settings(**values, data_encryption_keys=Fernet.generate_key().decode())
    return settings


def database_name(scenario: str, phase: str, service: str) -> str:
    name = f"bench_{scenario}_{phase.replace('-', '_')}_{service}"
    if len(name.encode()) > 63:  # PostgreSQL would cut it short, and the URL would name no database
        raise ValueError(f"database name {name!r} is longer than PostgreSQL's 63 bytes")
    return name


def topic_prefix(phase: str) -> str:
    return f"bench-{phase}-{uuid.uuid4().hex[:8]}."


def keyed_by_record(workload: Workload) -> Workload:
    """The raw pass-through sees the published records themselves: keyed by their Kafka key."""
    return Workload([r.key.decode() for r in workload.records], workload.records)


def completion_timeout(count: int) -> float:
    return 120 + count / 100


@contextlib.asynccontextmanager
async def collecting(settings: ServiceSettings, topics: Sequence[str], completes: Any) -> AsyncIterator[Collector]:
    collector = await Collector(settings, topics, completes).start()
    try:
        yield collector
    finally:
        await collector.stop()


@contextlib.asynccontextmanager
async def producing(settings: ServiceSettings) -> AsyncIterator[Any]:
    producer = bench_load.producer(settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
