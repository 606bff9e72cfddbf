"""Runs one service: database, migrations, topics, consumer, outbox relay, timers, HTTP; stops on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI

from schemas import dead_letter_topic

from . import event_loop
from .clock import WALL_CLOCK, Clock
from .consume_loop import ConsumeLoop
from .consumer import AfterCommit, EventConsumer, Route, UnitOptions
from .database import apply_migrations, create_pool
from .dead_letter_retention import purge_expired, seal_legacy_dead_letters
from .dead_letter_writer import DeadLetterWriter
from .failures import Backoff, is_transient
from .health import ProgressBoard
from .http import add_operational_routes
from .http_server import http_server
from .kafka import build_producer, ensure_topics, service_topics
from .logs import configure_logging, get_logger
from .outbox_relay import OutboxRelay
from .sealing import Sealer
from .settings import ServiceSettings
from .supervision import supervise
from .timer_loop import TimerLoop
from .timers import TimerRoute
from .unit_of_work import UnitOfWork, unit_of_work

log = get_logger(__name__)

RETENTION_INTERVAL_SECONDS = 600.0


@dataclass(frozen=True)
class ServiceDefinition:
    """What a service brings; the runtime does the rest."""

    name: str
    migrations: Path
    routes: Callable[[asyncpg.Pool, Any], Sequence[Route]]
    publishes: Sequence[str] = ()
    http_app: Callable[[asyncpg.Pool, Any], FastAPI] | None = None
    # Loops besides consuming (the notifier's sender), supervised and restarted like the runtime's own.
    background: Sequence[BackgroundTask] = field(default_factory=tuple)
    timers: Callable[[asyncpg.Pool, Any], Sequence[TimerRoute]] | None = None
    # The service's own settings class: a ServiceSettings subclass, read from the environment.
    settings: type[ServiceSettings] = ServiceSettings

    def unit_options(self, settings: ServiceSettings, clock: Clock = WALL_CLOCK) -> UnitOptions:
        sealer = Sealer.from_settings(settings) if settings.data_encryption_keys else None
        return UnitOptions(source=self.name, topic_prefix=settings.topic_prefix, publishes=frozenset(self.publishes),
                           max_message_bytes=settings.max_message_bytes, clock=clock, sealer=sealer)


@dataclass(frozen=True)
class BackgroundContext:
    """What the runtime hands each background task: the service as it runs, on its own clock
    (tests move it), so a task needs no closure over anything of its own."""

    definition: ServiceDefinition
    settings: Any  # an instance of definition.settings
    pool: asyncpg.Pool
    clock: Clock
    board: ProgressBoard
    stopping: asyncio.Event

    def unit(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return service_unit(self.pool, self.definition, self.settings, self.clock)


BackgroundTask = Callable[[BackgroundContext], Awaitable[None]]


@contextlib.asynccontextmanager
async def service_unit(pool: asyncpg.Pool, definition: ServiceDefinition, settings: ServiceSettings,
                       clock: Clock = WALL_CLOCK) -> AsyncIterator[UnitOfWork]:
    """The unit of work for HTTP handlers and operator commands of a service: state and
    follow-ups commit together, and only the event types the service declares may be published."""
    options = definition.unit_options(settings, clock)
    async with unit_of_work(pool, source=options.source, topic_prefix=options.topic_prefix,
                            publishes=options.publishes, max_message_bytes=options.max_message_bytes,
                            clock=clock, sealer=options.sealer) as unit:
        yield unit


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
                 serve_http: bool = True, after_commit: AfterCommit | None = None,
                 clock: Clock = WALL_CLOCK, timer_poll_interval: float = 5.0) -> None:
        self.definition, self.settings = definition, settings
        self.serve_http, self.after_commit = serve_http, after_commit
        self.clock, self.timer_poll_interval = clock, timer_poll_interval
        self.stopping = asyncio.Event()
        self.board = ProgressBoard()
        self.tasks: list[asyncio.Task[object]] = []

    async def start(self) -> None:
        definition, settings = self.definition, self.settings
        # Refuses to start without a key: stored copies of events (dead letters) are sealed with it.
        self.sealer = Sealer.from_settings(settings)
        self.pool: asyncpg.Pool = await _until_available(
            "database", lambda: create_pool(settings.database_url, max_size=settings.database_pool_size),
            self.stopping,
        )  # type: ignore[assignment]
        await apply_migrations(self.pool, definition.name, definition.migrations)
        self.unit_options = definition.unit_options(settings, self.clock)
        dead_letter_topic_name = settings.topic(dead_letter_topic(definition.name))
        self.pipeline = EventConsumer(
            name=definition.name, pool=self.pool, routes=definition.routes(self.pool, settings),
            topic_prefix=settings.topic_prefix, after_commit=self.after_commit,
            unit_options=self.unit_options, board=self.board,
            dead_letters=DeadLetterWriter(definition.name, dead_letter_topic_name, self.sealer,
                                          settings.max_message_bytes),
        )
        timer_routes = definition.timers(self.pool, settings) if definition.timers else ()
        self.timers = TimerLoop(service=definition.name, pool=self.pool, database_url=settings.database_url,
                                routes=timer_routes, unit_options=self.unit_options, board=self.board,
                                poll_interval=self.timer_poll_interval)
        topics = service_topics(settings, self.pipeline, definition.publishes)
        await _until_available("broker", lambda: ensure_topics(settings, topics), self.stopping)
        self.consume_loop = ConsumeLoop(settings, self.pipeline, self.board)
        self.relay = OutboxRelay(
            service=definition.name, database_url=settings.database_url, pool=self.pool,
            producer_factory=lambda: build_producer(settings), batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval_seconds, max_message_bytes=settings.max_message_bytes,
            board=self.board, sealer=self.sealer,
        )
        self._supervise("consumer", self.consume_loop.run)
        self._supervise("outbox-relay", self.relay.run)
        if timer_routes:
            self._supervise("timers", self.timers.run)
        self._supervise("retention", self._purge_expired_periodically)
        context = BackgroundContext(definition, settings, self.pool, self.clock, self.board, self.stopping)
        for index, task in enumerate(definition.background):
            name = getattr(task, "__name__", f"background-{index}")
            self._supervise(name, lambda task=task: task(context))  # type: ignore[misc]
        if self.serve_http:
            self.tasks.append(asyncio.create_task(self._serve_http(), name="http"))
        log.info("service started", http=f"http://{settings.http_host}:{settings.http_port}",
                 topics=self.pipeline.topics, kafka=settings.kafka_bootstrap_servers)

    async def _purge_expired_periodically(self) -> None:
        """Dead letters are kept for their retention, then deleted; sent outbox rows of an earlier version at once."""
        async with self.pool.acquire() as connection:
            await seal_legacy_dead_letters(connection, self.sealer)
        while not self.stopping.is_set():
            async with self.pool.acquire() as connection:
                purged = await purge_expired(connection, self.settings)
            if purged.dead_letters or purged.sent_outbox_rows:
                log.info("purged what outlived its retention", dead_letters=purged.dead_letters,
                         sent_outbox_rows=purged.sent_outbox_rows)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), RETENTION_INTERVAL_SECONDS)

    def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self.tasks.append(asyncio.create_task(
            supervise(self.definition.name, name, run, self.stopping, self.board), name=name))

    def unit(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return service_unit(self.pool, self.definition, self.settings, self.clock)

    async def _serve_http(self) -> None:
        definition, settings = self.definition, self.settings
        app = definition.http_app(self.pool, settings) if definition.http_app else FastAPI(title=definition.name, redirect_slashes=False)

        async def components() -> dict[str, object]:
            return {"outbox_relay": "leader" if self.relay.is_leader else "standby",
                    "consumer": "running" if self.consume_loop.running else "stopped"}

        add_operational_routes(app, service=definition.name, pool=self.pool, components=components,
                               board=self.board, stalled_after=settings.stalled_after_seconds)
        self.server = http_server(app, settings.http_host, settings.http_port)
        await self.server.serve()

    async def stop(self) -> None:
        log.info("stopping")
        self.stopping.set()
        self.pipeline.stop()
        self.consume_loop.stop()  # finishes the batch in flight, then leaves the group
        self.relay.stop()
        self.timers.stop()
        if self.serve_http and hasattr(self, "server"):
            self.server.should_exit = True
        await asyncio.wait(self.tasks, timeout=20)
        for task in self.tasks:
            task.cancel()
        await self.pool.close()
        log.info("stopped")


async def run_service(definition: ServiceDefinition, settings: ServiceSettings | None = None,
                      after_commit: AfterCommit | None = None) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    settings = settings or definition.settings()
    configure_logging(definition.name, settings.log_level)
    service = RunningService(definition, settings, after_commit=after_commit)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stopping.set)
    await service.start()
    settle_collector()
    await service.stopping.wait()
    await service.stop()


def settle_collector() -> None:
    """For a process that runs services and nothing else, once they started: what start-up
    allocated lives as long as the process, out of the collector's sight, and collections rarer.
    The pipeline makes almost no cycles; frequent full collections over long-lived objects cost a
    sixth of the CPU and 70 ms pauses (measured with make bench). Process-wide, so not in
    RunningService.start, which tests and the in-process benchmark call many times."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def main(definition: ServiceDefinition, after_commit: AfterCommit | None = None) -> None:
    event_loop.run(run_service(definition, after_commit=after_commit))
