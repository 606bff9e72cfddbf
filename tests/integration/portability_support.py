"""Running the portability service in a test, with accounts, inventory and blocks in place."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import asyncpg
import httpx
from aiokafka import ConsumerRecord

from porting_cli.embedded import free_port
from porting_runtime import EventConsumer, RunningService, ServiceSettings
from porting_runtime.database import apply_migrations
from porting_runtime.dead_letter_writer import DeadLetterWriter
from porting_runtime.sealing import Sealer
from portability.adapters.credentials import hash_token
from portability.adapters.repository import PortabilityRepository
from portability.domain.numbers import NumberBlock
from portability.service import PORTABILITY
from schemas import KafkaRecord, PortabilityChecked, PortStatusChanged, dead_letter_topic, encode

from ..factories import port_requested, request_sid
from ..kafka_support import collect, publish

PARENT, TARGET, SIBLING, STRANGER = ("AC" + secrets.token_hex(16) for _ in range(4))
TOKENS = {PARENT: "parent-token", TARGET: "target-token", SIBLING: "sibling-token", STRANGER: "stranger-token"}
HELD_BY_TARGET, HELD_BY_SIBLING, HELD_BY_STRANGER = "+14155562601", "+14155562602", "+14155562603"
WIRELESS = "+14155552671"  # in a wireless block: MOBILE, needs a PIN and account number
PORTABLE = "+12015550123"


async def _seed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        repository = PortabilityRepository(connection)
        for sid, parent in ((PARENT, None), (TARGET, PARENT), (SIBLING, PARENT), (STRANGER, None)):
            await repository.add_account(sid, hash_token(TOKENS[sid]), parent)
        await repository.hold_each([(HELD_BY_TARGET, TARGET), (HELD_BY_SIBLING, SIBLING), (HELD_BY_STRANGER, STRANGER)])
        await repository.import_blocks([NumberBlock("1415555", "Pacific Wireless", "PW-1", True, "SNFC")])


@contextlib.asynccontextmanager
async def portability_service(settings: ServiceSettings) -> AsyncIterator[RunningService]:
    settings = settings.model_copy(update={"http_port": free_port()})
    service = RunningService(PORTABILITY, settings, serve_http=True)
    await service.start()
    try:
        await _seed(service.pool)
        yield service
    finally:
        await service.stop()


@contextlib.asynccontextmanager
async def portability_handlers(settings: ServiceSettings) -> AsyncIterator[tuple[EventConsumer, list[str]]]:
    """The service's own routes on its real database, fed fabricated records (no broker), with every
    statement its connections run."""
    statements: list[str] = []

    async def log_statements(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda query: statements.append(query.query))

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4, init=log_statements)
    try:
        await apply_migrations(pool, PORTABILITY.name, PORTABILITY.migrations)
        await _seed(pool)
        consumer = EventConsumer(
            name=PORTABILITY.name, pool=pool, routes=PORTABILITY.routes(pool, settings),
            topic_prefix=settings.topic_prefix, unit_options=PORTABILITY.unit_options(settings),
            dead_letters=DeadLetterWriter(PORTABILITY.name, settings.topic(dead_letter_topic(PORTABILITY.name)),
                                          Sealer.from_settings(settings), settings.max_message_bytes),
        )
        statements.clear()
        yield consumer, statements
    finally:
        await pool.close()


def consumer_records(records: Sequence[KafkaRecord], partition: int = 0) -> list[ConsumerRecord]:
    """As the consumer would fetch them: one partition, in this order."""
    return [ConsumerRecord(topic=r.topic, partition=partition, offset=offset, timestamp=1_700_000_000_000,
                           timestamp_type=0, key=r.key, value=r.value, checksum=None,
                           serialized_key_size=len(r.key or b""), serialized_value_size=len(r.value or b""),
                           headers=list(r.headers))
            for offset, r in enumerate(records)]


@contextlib.asynccontextmanager
async def portability_api(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The service with its HTTP API answering, and a client authenticated as TARGET."""
    async with portability_service(settings) as service:
        base = f"http://127.0.0.1:{service.settings.http_port}"
        async with httpx.AsyncClient(base_url=base, auth=(TARGET, TOKENS[TARGET])) as client:
            for _ in range(100):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            yield client


def request_for(settings: ServiceSettings, numbers: list[str], account: str = TARGET, **overrides) -> tuple[str, KafkaRecord]:
    sid = overrides.pop("port_in_request_sid", request_sid())
    event = port_requested(port_in_request_sid=sid, account_sid=account,
                           phone_numbers=[{"phone_number": n} for n in numbers], **overrides)
    return sid, encode(event, source="tests", topic=settings.topic(event.event_type))


def status_change(settings: ServiceSettings, sid: str, number: str, status_to: str, request_status: str,
                  account: str = TARGET) -> KafkaRecord:
    event = PortStatusChanged(
        port_in_request_sid=sid, account_sid=account, status_from=None, status_to=request_status,
        phone_numbers=[{"phone_number": number, "status_from": None, "status_to": status_to}],
        changed_at=datetime.now(UTC),
    )
    return encode(event, source="workflow", topic=settings.topic(event.event_type))


async def checked(settings: ServiceSettings, sids: list[str], timeout: float = 30.0) -> dict[str, PortabilityChecked]:
    """The PortabilityChecked of each request, waiting until all arrived."""
    records = await collect(settings, settings.topic(PortabilityChecked.event_type), expect=len(sids),
                            timeout=timeout, settle=0.5)
    answers = {}
    for record in records:
        event = PortabilityChecked.model_validate_json(record.value)
        answers.setdefault(event.port_in_request_sid, []).append(event)
    assert all(len(answers.get(s, [])) == 1 for s in sids), f"one PortabilityChecked per request: {answers.keys()}"
    return {sid: answers[sid][0] for sid in sids}


async def answers_for(settings: ServiceSettings, records: list[KafkaRecord], sids: list[str]) -> dict[str, PortabilityChecked]:
    await publish(settings, records)
    return await checked(settings, sids)
