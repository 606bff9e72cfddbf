"""Runs one service: database, migrations, topics, consumer, outbox relay, HTTP; stops on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import uvicorn
from fastapi import FastAPI

from .consumer import EventConsumer, Route
from .database import apply_migrations, create_pool
from .failures import Backoff, is_transient
from .http import add_operational_routes
from .kafka import build_broker, build_producer, ensure_topics, service_topics, subscribe
from .logs import configure_logging, get_logger
from .outbox_relay import OutboxRelay
from .settings import ServiceSettings

log = get_logger(__name__)

BackgroundTask = Callable[[asyncpg.Pool, ServiceSettings, asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class ServiceDefinition:
    """What a service brings; the runtime does the rest."""

    name: str
    migrations: Path
    routes: Callable[[asyncpg.Pool, ServiceSettings], Sequence[Route]]
    publishes: Sequence[str] = ()
    http_app: Callable[[asyncpg.Pool, ServiceSettings], FastAPI] | None = None
    background: Sequence[BackgroundTask] = field(default_factory=tuple)


async def _until_available(what: str, attempt: Callable[[], Awaitable[object]], stop: asyncio.Event) -> object:
    """Start-up waits for the database and the broker rather than crashing while they come up."""
    backoff = Backoff(maximum=5.0)
    while True:
        try:
            return await attempt()
        except Exception as error:
            if not is_transient(error) and not type(error).__module__.startswith("aiokafka"):
                raise
            log.warning(f"{what} unavailable; retrying", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.next_delay())
            if stop.is_set():
                raise SystemExit(0) from error


async def run_service(definition: ServiceDefinition, settings: ServiceSettings | None = None) -> None:
    settings = settings or ServiceSettings()
    configure_logging(definition.name, settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    pool: asyncpg.Pool = await _until_available(
        "database", lambda: create_pool(settings.database_url, max_size=settings.database_pool_size), stop
    )  # type: ignore[assignment]
    await apply_migrations(pool, definition.name, definition.migrations)
    pipeline = EventConsumer(
        name=definition.name, pool=pool, routes=definition.routes(pool, settings), topic_prefix=settings.topic_prefix
    )
    await _until_available(
        "broker", lambda: ensure_topics(settings, service_topics(settings, pipeline, definition.publishes)), stop
    )
    broker = build_broker(settings)
    subscribe(broker, pipeline, settings)
    relay = OutboxRelay(
        service=definition.name, database_url=settings.database_url, pool=pool,
        producer_factory=lambda: build_producer(settings), batch_size=settings.outbox_batch_size,
        poll_interval=settings.outbox_poll_interval_seconds,
    )
    app = definition.http_app(pool, settings) if definition.http_app else FastAPI(title=definition.name)

    async def components() -> dict[str, object]:
        return {"outbox_relay": "leader" if relay.is_leader else "standby",
                "consumer": "running" if broker.running else "stopped"}

    add_operational_routes(app, service=definition.name, pool=pool, components=components)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.http_host, port=settings.http_port,
                                           log_config=None, access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours handle SIGTERM

    await _until_available("broker", broker.start, stop)
    tasks = [asyncio.create_task(relay.run(), name="outbox-relay"),
             asyncio.create_task(server.serve(), name="http")]
    tasks += [asyncio.create_task(task(pool, settings, stop)) for task in definition.background]
    log.info("service started", http=f"http://{settings.http_host}:{settings.http_port}",
             topics=pipeline.topics, kafka=settings.kafka_bootstrap_servers)
    await stop.wait()

    log.info("stopping")
    pipeline.stop()
    await broker.stop()  # waits up to graceful_timeout for the batch in flight
    relay.stop()
    server.should_exit = True
    await asyncio.wait(tasks, timeout=10)
    for task in tasks:
        task.cancel()
    await pool.close()
    log.info("stopped")


def main(definition: ServiceDefinition) -> None:
    asyncio.run(run_service(definition))
