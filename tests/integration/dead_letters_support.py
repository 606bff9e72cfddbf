"""What the dead-letter tests share: a migrated database, a sealer, records as the consumer has them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from porting_runtime.database import apply_migrations
from porting_runtime.sealed_outbox import OutboxMessage, open_outbox_row
from porting_runtime.sealing import Sealer

PIN = "7261"
ACCOUNT_NUMBER = "ACC-5550199"
DLT = "porting.dead-letter.tests.v1"
SOURCE = "porting.port-requested.v1"
MAX_MESSAGE_BYTES = 1_000_000


@contextlib.asynccontextmanager
async def migrated(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await apply_migrations(pool, "tests")
        async with pool.acquire() as connection:
            yield connection
    finally:
        await pool.close()


def secret_payload(**extra: Any) -> bytes:
    return json.dumps({
        "port_in_request_sid": "KW0123456789abcdef0123456789abcdef",
        "phone_numbers": [{"phone_number": "+14155550199", "pin": PIN}],
        "losing_carrier_information": {"customer_name": "Ada", "account_number": ACCOUNT_NUMBER},
        **extra,
    }).encode()


def record(offset: int, value: bytes | None = b"{}", *, key: bytes | None = b"KW1",
           headers: Sequence[tuple[str | bytes, bytes | None]] = (("ce_id", b"e1"),),
           partition: int = 0, timestamp: int = 1_700_000_000_000, topic: str = SOURCE) -> ConsumerRecord:
    return ConsumerRecord(topic=topic, partition=partition, offset=offset, timestamp=timestamp, timestamp_type=0,
                          key=key, value=value, checksum=None, serialized_key_size=len(key or b""),
                          serialized_value_size=len(value or b""), headers=list(headers))


async def outbox_messages(connection: asyncpg.Connection, sealer: Sealer) -> list[OutboxMessage]:
    rows = await connection.fetch(
        "SELECT topic, key, value, header_names, header_values, sealed FROM outbox ORDER BY id")
    return [open_outbox_row(row, sealer) for row in rows]
