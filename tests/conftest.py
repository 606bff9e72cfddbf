"""Session-wide broker and database; each test gets its own database and topic prefix."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from porting_runtime import ServiceSettings

from .infrastructure import Infrastructure, provide

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide() as infra:
        yield infra


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture
async def database_url(infrastructure: Infrastructure) -> AsyncIterator[str]:
    """A fresh, empty database for this test alone."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infrastructure.admin_database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _with_database(infrastructure.admin_database_url, name)
    admin = await asyncpg.connect(infrastructure.admin_database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def topic_prefix() -> str:
    """Fresh topic names for this test alone."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def settings(infrastructure: Infrastructure, database_url: str, topic_prefix: str) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap_servers,
        database_url=database_url,
        topic_prefix=topic_prefix,
        outbox_poll_interval_seconds=0.2,
        http_port=0,
    )
