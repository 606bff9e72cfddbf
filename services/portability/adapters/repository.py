"""The portability database: accounts, inventory, number blocks, and every check made."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import asyncpg

from schemas import NumberPortability, is_e164

from ..domain.accounts import AccountHierarchy
from ..domain.numbers import NumberBlock, candidate_prefixes
from ..domain.portability import Holding


# The contract bounds a number as given to 32 characters; this bounds what any caller can store.
MAX_NUMBER_AS_GIVEN_BYTES = 256


def as_given(phone_number: str) -> bytes:
    """The number exactly as given, as bytes that Postgres stores whatever they hold (bytea)."""
    return phone_number.encode("utf-8", "surrogatepass")[:MAX_NUMBER_AS_GIVEN_BYTES]


class PortabilityRepository:
    def __init__(self, connection: asyncpg.Connection | asyncpg.Pool) -> None:
        self.db = connection

    async def hierarchy_around(self, account_sids: Iterable[str]) -> AccountHierarchy:
        """These accounts and all their ancestors: enough to find roots and who may act for whom."""
        rows = await self.db.fetch(
            """WITH RECURSIVE lineage AS (
                   SELECT account_sid, parent_sid FROM accounts WHERE account_sid = ANY($1::text[])
                   UNION
                   SELECT a.account_sid, a.parent_sid FROM accounts a JOIN lineage l ON a.account_sid = l.parent_sid)
               SELECT account_sid, parent_sid FROM lineage""",
            list(set(account_sids)),
        )
        return AccountHierarchy({r["account_sid"]: r["parent_sid"] for r in rows})

    async def holdings(self, numbers: Sequence[str]) -> dict[str, Holding]:
        rows = await self.db.fetch(
            "SELECT phone_number, account_sid, port_in_request_sid FROM inventory WHERE phone_number = ANY($1::text[])",
            list(numbers),
        )
        return {r["phone_number"]: Holding(r["account_sid"], r["port_in_request_sid"]) for r in rows}

    async def blocks_for(self, numbers: Sequence[str]) -> dict[str, NumberBlock]:
        prefixes = {p for n in numbers for p in candidate_prefixes(n)}
        rows = await self.db.fetch(
            "SELECT prefix, carrier_name, carrier_id, wireless, rate_center FROM number_blocks WHERE prefix = ANY($1::text[])",
            list(prefixes),
        )
        return {r["prefix"]: NumberBlock(**dict(r)) for r in rows}

    async def record_checks(self, results: Sequence[NumberPortability], *, target_account_sid: str,
                            requested_by: str, port_in_request_sid: str | None = None) -> None:
        await self.db.execute(
            """INSERT INTO portability_checks (port_in_request_sid, requested_by, target_account_sid, phone_number,
                                               phone_number_given, portable, reason_code, result)
               SELECT $1, $2, $3, c.number, c.given, c.portable, c.reason_code, c.result::jsonb
               FROM unnest($4::text[], $5::bytea[], $6::boolean[], $7::integer[], $8::text[])
                    AS c(number, given, portable, reason_code, result)""",
            port_in_request_sid, requested_by, target_account_sid,
            [r.phone_number if is_e164(r.phone_number) else None for r in results],
            [as_given(r.phone_number) for r in results],
            [r.portable for r in results],
            [r.not_portable_reason_code for r in results],
            # The number is in its own columns; a NUL in it would make jsonb refuse the whole row.
            [json.dumps(r.model_dump(mode="json", exclude={"phone_number"})) for r in results],
        )

    async def token_hash(self, account_sid: str) -> str | None:
        return await self.db.fetchval("SELECT auth_token_hash FROM accounts WHERE account_sid = $1", account_sid)

    async def add_account(self, account_sid: str, token_hash: str, parent_sid: str | None) -> None:
        await self.db.execute(
            """INSERT INTO accounts (account_sid, parent_sid, auth_token_hash) VALUES ($1, $2, $3)
               ON CONFLICT (account_sid) DO UPDATE SET parent_sid = EXCLUDED.parent_sid,
                                                       auth_token_hash = EXCLUDED.auth_token_hash""",
            account_sid, parent_sid, token_hash,
        )

    # The inventory, kept true by the workflow's status changes and by operator imports.

    async def hold(self, numbers: Sequence[str], account_sid: str) -> None:
        """The numbers belong to the account (a completed port, or an operator import)."""
        await self.db.execute(
            """INSERT INTO inventory (phone_number, account_sid)
               SELECT n, $2 FROM unnest($1::text[]) AS n
               ON CONFLICT (phone_number) DO UPDATE
                   SET account_sid = EXCLUDED.account_sid, port_in_request_sid = NULL, updated_at = now()""",
            list(numbers), account_sid,
        )

    async def reserve(self, numbers: Sequence[str], account_sid: str, port_in_request_sid: str) -> None:
        """Reserve numbers for a port under way; a number already held or reserved elsewhere stays as it is."""
        await self.db.execute(
            """INSERT INTO inventory (phone_number, account_sid, port_in_request_sid)
               SELECT n, $2, $3 FROM unnest($1::text[]) AS n
               ON CONFLICT (phone_number) DO NOTHING""",
            list(numbers), account_sid, port_in_request_sid,
        )

    async def release(self, numbers: Sequence[str] | None, port_in_request_sid: str) -> None:
        """Drop the request's reservations (of these numbers, or of all when None); holdings stay."""
        await self.db.execute(
            """DELETE FROM inventory WHERE port_in_request_sid = $1
                   AND ($2::text[] IS NULL OR phone_number = ANY($2::text[]))""",
            port_in_request_sid, list(numbers) if numbers is not None else None,
        )

    async def import_blocks(self, blocks: Sequence[NumberBlock]) -> None:
        await self.db.executemany(
            """INSERT INTO number_blocks (prefix, carrier_name, carrier_id, wireless, rate_center)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (prefix) DO UPDATE SET carrier_name = EXCLUDED.carrier_name,
                   carrier_id = EXCLUDED.carrier_id, wireless = EXCLUDED.wireless, rate_center = EXCLUDED.rate_center""",
            [(b.prefix, b.carrier_name, b.carrier_id, b.wireless, b.rate_center) for b in blocks],
        )
