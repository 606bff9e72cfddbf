"""The systems the benchmark measures: the real pipeline and a naive per-message worker.

Both run in a process of their own by default (`serve` is the child's entry point), as they
would in production, so the benchmark's own producer and follow-up collector neither steal
their event loop nor wait behind it. `start_system` runs either in the caller's loop instead.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import asyncpg
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from porting_runtime import BackgroundContext, RunningService, ServiceDefinition, ServiceSettings, event_loop
from porting_runtime.clock import WALL_CLOCK
from porting_runtime.database import apply_migrations, create_pool
from porting_runtime.health import ProgressBoard
from porting_runtime.logs import configure_logging
from porting_runtime.service import settle_collector

from schemas import decode

from .bench_scenarios import Scenario, scenario_named
from .embedded import die_with_parent

PIPELINE, NAIVE = "pipeline", "naive"

# The runtime's inbox row, written the way the runtime writes it (EventConsumer._claim), one at a time.
NAIVE_INBOX_INSERT = """
    INSERT INTO inbox (consumer, event_source, event_id, event_type, topic, partition, "offset")
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (consumer, event_source, event_id) DO NOTHING
    RETURNING 1"""


class System(Protocol):
    async def stop(self) -> None: ...


class Pipeline:
    """The scenario's services, each a RunningService with its own database (no HTTP server)."""

    def __init__(self, services: Sequence[RunningService]) -> None:
        self.services = list(services)

    @classmethod
    async def start(cls, scenario: Scenario, settings: Mapping[str, ServiceSettings]) -> Pipeline:
        started: list[RunningService] = []
        for definition in scenario.definitions():
            if definition.name not in settings:  # another process runs it
                continue
            service = RunningService(definition, settings[definition.name], serve_http=False)
            await service.start()
            started.append(service)
        return cls(started)

    async def stop(self) -> None:
        for service in reversed(self.services):
            await service.stop()


class NaiveWorker:
    """The same work written the straightforward way, for comparison.

    A FastStream KafkaBroker subscriber per route of each service, one message at a time
    (FastStream's default). Per message: one PostgreSQL transaction holding the inbox row and
    the service's own handler (the same queries and writes), its follow-ups produced with
    FastStream (acks=all, awaited) before the commit, then one commit; the offset is committed
    after the handler returns (AckPolicy.ACK), so it keeps the pipeline's at-least-once and
    dedupe guarantees. No outbox: the follow-up is produced directly.
    """

    def __init__(self) -> None:
        self.brokers: list[Any] = []
        self.pools: list[asyncpg.Pool] = []
        self.stopping = asyncio.Event()
        self.background: list[asyncio.Task[None]] = []

    @classmethod
    async def start(cls, scenario: Scenario, settings: Mapping[str, ServiceSettings]) -> NaiveWorker:
        worker = cls()
        for definition in scenario.definitions():
            if definition.name not in settings:  # another process runs it
                continue
            await worker._start_service(definition, settings[definition.name])
        return worker

    async def _start_service(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        # Two connections for the handlers, more for a service's background work (the notifier's sender).
        pool = await create_pool(settings.database_url, max_size=2 + 2 * len(definition.background))
        self.pools.append(pool)
        await apply_migrations(pool, definition.name, definition.migrations)
        broker = KafkaBroker(settings.kafka_bootstrap_servers, acks="all", enable_idempotence=False,
                             logger=None)  # no access log per message: the naive worker is not made slower by it
        options = definition.unit_options(settings)
        for route in definition.routes(pool, settings):
            topic = settings.topic(route.event.event_type)
            handler = _naive_handler(definition.name, route, pool, broker, options)
            # A group per subscriber and run (its topics' prefix): FastStream makes a consumer per
            # subscriber; one group for all of them rebalances at every join on the embedded broker.
            broker.subscriber(topic, group_id=f"{settings.topic_prefix}naive-{definition.name}-{route.event.__name__}",
                              auto_offset_reset="earliest",
                              ack_policy=AckPolicy.ACK)(handler)
        await broker.start()
        self.brokers.append(broker)
        # What the service does besides consuming (the notifier sends its deliveries), as the runtime runs it.
        context = BackgroundContext(definition, settings, pool, WALL_CLOCK, ProgressBoard(), self.stopping)
        for task in definition.background:
            self.background.append(asyncio.create_task(task(context)))

    async def stop(self) -> None:
        self.stopping.set()
        for task in self.background:
            # Whatever the task ended with is not this stop's concern; a cancelled stop still is.
            done, _ = await asyncio.wait({task}, timeout=10)
            if not done:
                task.cancel()
            elif not task.cancelled():
                task.exception()  # retrieved: not reported as never retrieved
        for broker in self.brokers:
            await broker.stop()
        for pool in self.pools:
            await pool.close()


def _naive_handler(consumer: str, route: Any, pool: asyncpg.Pool, broker: Any, options: Any) -> Any:
    async def handle(message: KafkaMessage) -> None:
        record = message.raw_message
        event = decode(record.headers or (), record.value, expected_type=route.event.event_type)
        attributes = event.attributes
        async with pool.acquire() as connection, connection.transaction():
            fresh = await connection.fetchval(NAIVE_INBOX_INSERT, consumer, attributes.source, attributes.id,
                                              attributes.type, record.topic, record.partition, record.offset)
            if fresh is None:
                return  # a duplicate
            unit = options.unit(connection, cause=attributes)
            if route.batch:
                await route.handler([event], unit)
            else:
                await route.handler(event, unit)
            # Every follow-up, the sealed PortSubmitted too, is produced directly: no outbox.
            follow_ups = [record for record, _ in unit.take_follow_ups()]
            await unit.flush()  # the handler's writes, follow-ups and timers, in one statement
            for follow_up in follow_ups:
                await broker.publish(follow_up.value, topic=follow_up.topic, key=follow_up.key,
                                     headers={name: value.decode() for name, value in follow_up.headers})

    handle.__name__ = f"naive_{consumer}_{route.event.__name__}"
    return handle


async def start_system(kind: str, scenario: Scenario, settings: Mapping[str, ServiceSettings]) -> System:
    if kind == PIPELINE:
        return await Pipeline.start(scenario, settings)
    if kind == NAIVE:
        return await NaiveWorker.start(scenario, settings)
    raise ValueError(f"unknown system {kind!r}")


# --- in a process of its own ----------------------------------------------------------------------


def serve(kind: str, scenario_name: str, settings: Mapping[str, dict[str, Any]], ready: Any, stop: Any,
          log_level: str) -> None:
    """The child process: start the system, say so, run until told to stop."""
    if (arrange := die_with_parent()) is not None:  # if the benchmark is killed, the system under test stops too
        arrange()
    configure_logging(f"bench-{kind}", log_level)
    scenario = scenario_named(scenario_name)
    definitions = {d.name: d for d in scenario.definitions()}
    typed = {name: definitions[name].settings(**values) for name, values in settings.items()}

    async def main() -> None:
        system = await start_system(kind, scenario, typed)
        settle_collector()
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        await system.stop()

    event_loop.run(main())


class ChildSystem:
    """A system under test in a child process (multiprocessing, spawn)."""

    def __init__(self, kind: str, scenario: Scenario, settings: Mapping[str, ServiceSettings],
                 log_level: str = "WARNING") -> None:
        """Runs the services named in `settings` (all of the scenario's, or one of them)."""
        context = multiprocessing.get_context("spawn")
        self.ready, self.stopping = context.Event(), context.Event()
        values = {name: s.model_dump() for name, s in settings.items()}
        self.services = list(settings)
        self.process = context.Process(target=serve, name=f"bench-{kind}-{'+'.join(settings)}", daemon=True,
                                       args=(kind, scenario.name, values, self.ready, self.stopping, log_level))

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    async def start(self, timeout: float = 60.0) -> ChildSystem:
        self.process.start()
        deadline = time.monotonic() + timeout
        while not self.ready.is_set():
            if not self.process.is_alive():
                raise RuntimeError(f"{self.process.name} exited ({self.process.exitcode}) before it was ready")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.process.name} was not ready after {timeout}s")
            await asyncio.sleep(0.05)
        return self

    async def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        deadline = time.monotonic() + timeout
        while self.process.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


class ChildGroup:
    """Each service of a scenario in a process of its own, as in production: started together,
    stopped in reverse order (downstream first)."""

    def __init__(self, kind: str, scenario: Scenario, settings: Mapping[str, ServiceSettings],
                 log_level: str = "WARNING", instances: int = 1) -> None:
        """`instances` of each service: processes in one consumer group, sharing its partitions
        (and one relay leading), as a deployment scales a service out."""
        self.instances = instances
        self.children = [ChildSystem(kind, scenario, {name: service}, log_level)
                         for name, service in settings.items() for _ in range(instances)]

    @property
    def pids(self) -> dict[str, int]:
        """Service name (with the instance's number when there are several) -> its process's pid."""
        if self.instances == 1:
            return {child.services[0]: child.pid for child in self.children}
        return {f"{child.services[0]}.{index % self.instances + 1}": child.pid
                for index, child in enumerate(self.children)}

    async def start(self, timeout: float = 90.0) -> ChildGroup:
        started = await asyncio.gather(*(child.start(timeout) for child in self.children), return_exceptions=True)
        failures = [outcome for outcome in started if isinstance(outcome, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]
        return self

    async def stop(self) -> None:
        for child in reversed(self.children):
            if child.process.pid is not None:
                await child.stop()
