"""Session-wide broker and database; each test gets its own database and topic prefix."""

from __future__ import annotations

import contextlib
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from porting_runtime import ServiceSettings, event_loop

from .infrastructure import Infrastructure, provide

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Every async test and fixture runs on the loop the services run on (porting_runtime.event_loop)."""
    return {"uvloop": event_loop.new_event_loop}


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    with provide() as infra:
        yield infra


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@contextlib.asynccontextmanager
async def fresh_database(infrastructure: Infrastructure) -> AsyncIterator[str]:
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


# One key for the whole test session: stored copies of events are sealed with it.
TEST_DATA_ENCRYPTION_KEY = "2lXNjgC3WcVN4r5U1P4Vtmo1zOe0dCBJ8_jmI0N6bEs="


def _settings(infrastructure: Infrastructure, database_url: str) -> ServiceSettings:
    fresh = f"t{uuid.uuid4().hex[:10]}."
    return ServiceSettings(
        data_encryption_keys=TEST_DATA_ENCRYPTION_KEY,
        consumer_group_prefix=fresh,
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap_servers,
        database_url=database_url,
        topic_prefix=fresh,  # fresh topic names and consumer groups
        outbox_poll_interval_seconds=0.2,
        http_port=0,
    )


@pytest.fixture
async def database_url(infrastructure: Infrastructure) -> AsyncIterator[str]:
    """A fresh, empty database for this test alone."""
    async with fresh_database(infrastructure) as url:
        yield url


@pytest.fixture
def settings(infrastructure: Infrastructure, database_url: str) -> ServiceSettings:
    """Settings with this test's own database and topics."""
    return _settings(infrastructure, database_url)


@pytest.fixture(scope="module")
async def module_settings(infrastructure: Infrastructure) -> AsyncIterator[ServiceSettings]:
    """Settings shared by one module's tests, for a service they all read from without changing."""
    async with fresh_database(infrastructure) as url:
        yield _settings(infrastructure, url)
