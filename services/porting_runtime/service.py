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

from .consumer import AfterCommit, EventConsumer, Route
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
            if not is_transient(error):
                raise
            log.warning(f"{what} unavailable; retrying", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.next_delay())
            if stop.is_set():
                raise SystemExit(0) from error


class RunningService:
    """A service started in this process: the entrypoint runs one, and so do the tests."""

    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings, *,
                 serve_http: bool = True, after_commit: AfterCommit | None = None) -> None:
        self.definition, self.settings = definition, settings
        self.serve_http, self.after_commit = serve_http, after_commit
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[object]] = []

    async def start(self) -> None:
        definition, settings = self.definition, self.settings
        self.pool: asyncpg.Pool = await _until_available(
            "database", lambda: create_pool(settings.database_url, max_size=settings.database_pool_size),
            self.stopping,
        )  # type: ignore[assignment]
        await apply_migrations(self.pool, definition.name, definition.migrations)
        self.pipeline = EventConsumer(
            name=definition.name, pool=self.pool, routes=definition.routes(self.pool, settings),
            topic_prefix=settings.topic_prefix, after_commit=self.after_commit,
        )
        topics = service_topics(settings, self.pipeline, definition.publishes)
        await _until_available("broker", lambda: ensure_topics(settings, topics), self.stopping)
        self.broker = build_broker(settings)
        self.subscriber = subscribe(self.broker, self.pipeline, settings)
        self.relay = OutboxRelay(
            service=definition.name, database_url=settings.database_url, pool=self.pool,
            producer_factory=lambda: build_producer(settings), batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval_seconds,
        )
        await _until_available("broker", self.broker.start, self.stopping)
        self.tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self.serve_http:
            self.tasks.append(asyncio.create_task(self._serve_http(), name="http"))
        self.tasks += [asyncio.create_task(task(self.pool, settings, self.stopping)) for task in definition.background]
        log.info("service started", http=f"http://{settings.http_host}:{settings.http_port}",
                 topics=self.pipeline.topics, kafka=settings.kafka_bootstrap_servers)

    async def _serve_http(self) -> None:
        definition, settings = self.definition, self.settings
        app = definition.http_app(self.pool, settings) if definition.http_app else FastAPI(title=definition.name)

        async def components() -> dict[str, object]:
            return {"outbox_relay": "leader" if self.relay.is_leader else "standby",
                    "consumer": "running" if self.broker.running else "stopped"}

        add_operational_routes(app, service=definition.name, pool=self.pool, components=components)
        self.server = uvicorn.Server(uvicorn.Config(app, host=settings.http_host, port=settings.http_port,
                                                    log_config=None, access_log=False, lifespan="off"))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours handle SIGTERM
        await self.server.serve()

    async def stop(self) -> None:
        log.info("stopping")
        self.stopping.set()
        self.pipeline.stop()
        await self.broker.stop()  # waits up to graceful_timeout for the batch in flight
        self.relay.stop()
        if self.serve_http and hasattr(self, "server"):
            self.server.should_exit = True
        await asyncio.wait(self.tasks, timeout=10)
        for task in self.tasks:
            task.cancel()
        await self.pool.close()
        log.info("stopped")


async def run_service(definition: ServiceDefinition, settings: ServiceSettings | None = None,
                      after_commit: AfterCommit | None = None) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    settings = settings or ServiceSettings()
    configure_logging(definition.name, settings.log_level)
    service = RunningService(definition, settings, after_commit=after_commit)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stopping.set)
    await service.start()
    await service.stopping.wait()
    await service.stop()


def main(definition: ServiceDefinition, after_commit: AfterCommit | None = None) -> None:
    asyncio.run(run_service(definition, after_commit=after_commit))
