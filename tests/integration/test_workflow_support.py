"""Running the workflow in a test: its handlers and timers on a real PostgreSQL fed fabricated
records (no broker), or the whole service on the real broker; and the events to feed it (made by
tests/unit/workflow/builders.py from this module's numbers, secrets and time).

(Kept in a test_workflow_* module so the workflow's tests stay within their own files; it holds
no tests itself.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg

from porting_runtime import EventConsumer, MovableClock, RunningService, ServiceSettings
from porting_runtime.database import apply_migrations
from porting_runtime.dead_letter_writer import DeadLetterWriter
from porting_runtime.health import ProgressBoard
from porting_runtime.sealed_outbox import open_outbox_row
from porting_runtime.sealing import Sealer
from porting_runtime.timer_loop import TimerLoop
from schemas import (
    KafkaRecord,
    PortabilityChecked,
    PortabilityReason,
    PortingEvent,
    PortRequested,
    dead_letter_topic,
    decode,
    encode,
)
from workflow.service import WORKFLOW
from workflow.settings import WorkflowSettings

from ..kafka_support import running_service
from ..unit.workflow import builders
from ..unit.workflow.builders import CA, INTERNATIONAL, US, carrier, documents, portable
from ..unit.workflow.builders import cancel  # noqa: F401 (the workflow's tests take it from here)
from .portability_support import consumer_records

# Monday 1 February 2027, 09:00 UTC: a business day in the US, Canada and Britain.
START = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
US_NUMBER, US_NUMBER_2, CA_NUMBER, GB_NUMBER = "+12015550123", "+12015550124", "+15145550100", "+442071234567"
PIN, ACCOUNT_NUMBER = "80417733", "ACCT-55120937"
COUNTRY = {US_NUMBER: "US", US_NUMBER_2: "US", CA_NUMBER: "CA", GB_NUMBER: "GB"}
REQUIREMENTS = {"US": US, "CA": CA, "GB": INTERNATIONAL}
ADDRESSES = {
    "US": {"street": "1 Market St", "city": "Newark", "state": "NJ", "zip": "07102", "country": "US"},
    "CA": {"street": "C.P. 1234", "city": "Montréal", "state": "QC", "zip": "H3A 3R2", "country": "CA"},
    "GB": {"street": "10 Downing St", "city": "London", "state": "London", "zip": "SW1A 2AA", "country": "GB"},
}


def workflow_settings(settings: ServiceSettings, **overrides: Any) -> WorkflowSettings:
    return WorkflowSettings(**{**settings.model_dump(), **overrides})


def port_requested(*numbers: str, sid: str | None = None, account: str = "AC" + "1" * 32, revision: int = 1,
                   country: str = "US", pin: str = PIN, **overrides: Any) -> PortRequested:
    numbers = numbers or (US_NUMBER,)
    return builders.port_requested(
        *numbers, country=country, sid=sid, account=account, revision=revision,
        pins=dict.fromkeys(numbers, pin), account_number=ACCOUNT_NUMBER, target=None,
        **{"address": ADDRESSES[country], "documents": documents(), **overrides})


def checked(request: PortRequested, *, revision: int | None = None,
            not_portable: dict[str, PortabilityReason] | None = None) -> PortabilityChecked:
    results = []
    for number in dict.fromkeys(n.phone_number for n in request.phone_numbers):
        country = COUNTRY.get(number, "US")
        results.append(portable(number, country=country, requirements=REQUIREMENTS[country],
                                reason=(not_portable or {}).get(number)))
    return builders.checked(request, *results, revision=revision, at=START)


answered = partial(carrier, losing_carrier="Verizon")
rejected = partial(builders.rejected, text="The PIN does not match our records")
scheduled = partial(builders.scheduled, zone="America/New_York")


def record(settings: ServiceSettings, event: PortingEvent, event_id: str | None = None) -> KafkaRecord:
    return encode(event, source="tests", topic=settings.topic(event.event_type), event_id=event_id)


@dataclass
class Workflow:
    """The workflow's routes and timers on its real database, without a broker."""

    settings: WorkflowSettings
    pool: asyncpg.Pool
    consumer: EventConsumer
    timers: TimerLoop
    clock: MovableClock
    sealer: Sealer
    statements: list[str] = field(default_factory=list)

    async def feed(self, *events: PortingEvent) -> None:
        """Each event as its own partition batch, in this order."""
        for event in events:
            await self.consumer.process(consumer_records([record(self.settings, event)]))

    async def feed_batch(self, records: list[KafkaRecord]) -> None:
        await self.consumer.process(consumer_records(records))

    async def fire_due_timers(self) -> int:
        return await self.timers.fire_due()

    async def published(self, event_type: type[PortingEvent] | None = None, sid: str | None = None) -> list[Any]:
        """Every follow-up in the outbox (sealed ones opened), in commit order."""
        rows = await self.pool.fetch("SELECT topic, key, value, header_names, header_values, sealed FROM outbox "
                                     "ORDER BY id")
        events = []
        for row in rows:
            message = open_outbox_row(row, self.sealer)
            event = decode(message.headers, message.value).data
            if (event_type is None or isinstance(event, event_type)) and (sid is None or event.subject == sid):
                events.append(event)
        return events

    async def status(self, sid: str) -> tuple[str | None, dict[str, str]]:
        request = await self.pool.fetchval("SELECT status FROM port_in_requests WHERE port_in_request_sid = $1", sid)
        numbers = await self.pool.fetch("SELECT phone_number, status FROM port_in_numbers "
                                        "WHERE port_in_request_sid = $1 ORDER BY position", sid)
        return request, {r["phone_number"]: r["status"] for r in numbers}


@contextlib.asynccontextmanager
async def workflow_handlers(settings: ServiceSettings, start: datetime = START) -> AsyncIterator[Workflow]:
    settings = workflow_settings(settings)
    statements: list[str] = []

    async def log_statements(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda query: statements.append(query.query))

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4, init=log_statements)
    clock, sealer = MovableClock(start), Sealer.from_settings(settings)
    try:
        await apply_migrations(pool, WORKFLOW.name, WORKFLOW.migrations)
        options = WORKFLOW.unit_options(settings, clock)
        consumer = EventConsumer(
            name=WORKFLOW.name, pool=pool, routes=WORKFLOW.routes(pool, settings), topic_prefix=settings.topic_prefix,
            unit_options=options,
            dead_letters=DeadLetterWriter(WORKFLOW.name, settings.topic(dead_letter_topic(WORKFLOW.name)), sealer,
                                          settings.max_message_bytes),
        )
        assert WORKFLOW.timers is not None
        timers = TimerLoop(service=WORKFLOW.name, pool=pool, database_url=settings.database_url,
                           routes=WORKFLOW.timers(pool, settings), unit_options=options, board=ProgressBoard())
        statements.clear()
        yield Workflow(settings, pool, consumer, timers, clock, sealer, statements)
    finally:
        await pool.close()


def running_workflow(settings: ServiceSettings, clock: MovableClock,
                     ) -> contextlib.AbstractAsyncContextManager[RunningService]:
    return running_service(WORKFLOW, workflow_settings(settings), serve_http=False, clock=clock,
                           timer_poll_interval=0.2)
