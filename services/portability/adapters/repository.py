"""The portability database: accounts, inventory, number blocks, and every check made.

Reads take every number of a batch at once, and writes are one statement for any number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from porting_runtime.statement import Writes

from schemas import NumberPortability, is_e164

from ..domain.accounts import AccountHierarchy
from ..domain.numbers import NumberBlock, candidate_prefixes
from ..domain.portability import Holding

# The contract bounds a number as given to 32 characters; this bounds what any caller can store.
MAX_NUMBER_AS_GIVEN_BYTES = 256


def as_given(phone_number: str) -> bytes:
    """The number exactly as given, as bytes that Postgres stores whatever they hold (bytea)."""
    return phone_number.encode("utf-8", "surrogatepass")[:MAX_NUMBER_AS_GIVEN_BYTES]


@dataclass(frozen=True)
class RecordedCheck:
    """A check to keep: the answer, for which account, and who asked (an event id or an account)."""

    result: NumberPortability
    target_account_sid: str
    requested_by: str
    port_in_request_sid: str | None = None


class PortabilityRepository:
    def __init__(self, connection: asyncpg.Connection | asyncpg.Pool) -> None:
        self.db = connection

    async def lookups(self, numbers: Sequence[str], account_sids: Iterable[str]
                      ) -> tuple[dict[str, Holding], AccountHierarchy, dict[str, NumberBlock]]:
        """What the rules read for these normalised numbers, in one round trip: who holds each, the
        lineage of those holders and of the given accounts, and every block a number could be in."""
        prefixes = sorted({p for n in numbers for p in candidate_prefixes(n)})
        rows = await self.db.fetch(
            """WITH RECURSIVE held AS (
                   SELECT phone_number, account_sid, port_in_request_sid FROM inventory
                   WHERE phone_number = ANY($1::text[])),
               lineage AS (
                   SELECT account_sid, parent_sid FROM accounts
                   WHERE account_sid = ANY($2::text[]) OR account_sid IN (SELECT account_sid FROM held)
                   UNION
                   SELECT a.account_sid, a.parent_sid FROM accounts a JOIN lineage l ON a.account_sid = l.parent_sid)
               SELECT 'held' AS kind, phone_number AS a, account_sid AS b, port_in_request_sid AS c,
                      NULL AS d, NULL::boolean AS wireless FROM held
               UNION ALL SELECT 'account', account_sid, parent_sid, NULL, NULL, NULL FROM lineage
               UNION ALL SELECT 'block', prefix, carrier_name, carrier_id, rate_center, wireless
                         FROM number_blocks WHERE prefix = ANY($3::text[])""",
            list(numbers), sorted(set(account_sids)), prefixes,
        )
        holdings, parents, blocks = {}, {}, {}
        for row in rows:
            if row["kind"] == "held":
                holdings[row["a"]] = Holding(row["b"], row["c"])
            elif row["kind"] == "account":
                parents[row["a"]] = row["b"]
            else:
                blocks[row["a"]] = NumberBlock(prefix=row["a"], carrier_name=row["b"], carrier_id=row["c"],
                                               wireless=row["wireless"], rate_center=row["d"])
        return holdings, AccountHierarchy(parents), blocks

    async def token_hash(self, account_sid: str) -> str | None:
        return await self.db.fetchval("SELECT auth_token_hash FROM accounts WHERE account_sid = $1", account_sid)

    async def add_account(self, account_sid: str, token_hash: str, parent_sid: str | None) -> None:
        await self.db.execute(
            """INSERT INTO accounts (account_sid, parent_sid, auth_token_hash) VALUES ($1, $2, $3)
               ON CONFLICT (account_sid) DO UPDATE SET parent_sid = EXCLUDED.parent_sid,
                                                       auth_token_hash = EXCLUDED.auth_token_hash""",
            account_sid, parent_sid, token_hash,
        )

    # The inventory, kept true by the workflow's status changes and by operator imports. Numbers are
    # normalised E.164; each statement takes any number of rows.

    async def hold(self, numbers: Sequence[str], account_sid: str) -> None:
        """The numbers belong to the account (a completed port, or an operator import)."""
        await self.hold_each([(n, account_sid) for n in numbers])

    async def hold_each(self, holdings: Sequence[tuple[str, str]]) -> None:
        """Each (number, account): the number belongs to the account; of a number given twice, the last."""
        if not holdings:
            return
        # One row per number: an upsert may not touch a row twice in one statement.
        holdings = list(dict(holdings).items())
        await self.db.execute(
            """INSERT INTO inventory (phone_number, account_sid)
               SELECT * FROM unnest($1::text[], $2::text[])
               ON CONFLICT (phone_number) DO UPDATE
                   SET account_sid = EXCLUDED.account_sid, port_in_request_sid = NULL, updated_at = now()""",
            [n for n, _ in holdings], [a for _, a in holdings],
        )

    async def reserve_each(self, reservations: Sequence[tuple[str, str, str]]) -> None:
        """Each (number, account, request): reserved for a port under way; a number already held or
        reserved stays as it is."""
        if not reservations:
            return
        await self.db.execute(
            """INSERT INTO inventory (phone_number, account_sid, port_in_request_sid)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
               ON CONFLICT (phone_number) DO NOTHING""",
            [n for n, _, _ in reservations], [a for _, a, _ in reservations], [r for _, _, r in reservations],
        )

    async def release_each(self, releases: Sequence[tuple[str | None, str]]) -> None:
        """Each (number, request): drop the request's reservation of the number, or of all its numbers
        when the number is None; holdings stay."""
        if not releases:
            return
        await self.db.execute(
            """DELETE FROM inventory i USING unnest($1::text[], $2::text[]) AS r(number, request)
               WHERE i.port_in_request_sid = r.request AND (r.number IS NULL OR i.phone_number = r.number)""",
            [n for n, _ in releases], [r for _, r in releases],
        )

    async def import_blocks(self, blocks: Sequence[NumberBlock]) -> None:
        await self.db.executemany(
            """INSERT INTO number_blocks (prefix, carrier_name, carrier_id, wireless, rate_center)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (prefix) DO UPDATE SET carrier_name = EXCLUDED.carrier_name,
                   carrier_id = EXCLUDED.carrier_id, wireless = EXCLUDED.wireless, rate_center = EXCLUDED.rate_center""",
            [(b.prefix, b.carrier_name, b.carrier_id, b.wireless, b.rate_center) for b in blocks],
        )


_CHECKS = """
checks AS (
    INSERT INTO portability_checks (port_in_request_sid, requested_by, target_account_sid, phone_number,
                                    phone_number_given, portable, reason_code, result)
    SELECT c.request, c.requested_by, c.target, c.number, c.given, c.portable, c.reason_code, c.result::jsonb
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::boolean[], $7::integer[], $8::text[])
         AS c(request, requested_by, target, number, given, portable, reason_code, result))
"""


def checks_written(checks: Sequence[RecordedCheck]) -> Writes | None:
    """Every check as one part of a statement: a consumer's batch sends it with its
    PortabilityChecked follow-ups (`unit.write`); None when there is none."""
    if not checks:
        return None
    return Writes(_CHECKS, [
        [c.port_in_request_sid for c in checks],
        [c.requested_by for c in checks],
        [c.target_account_sid for c in checks],
        [c.result.phone_number if is_e164(c.result.phone_number) else None for c in checks],
        [as_given(c.result.phone_number) for c in checks],
        [c.result.portable for c in checks],
        [c.result.not_portable_reason_code for c in checks],
        # The number is in its own columns; a NUL in it would make jsonb refuse the whole row.
        [c.result.model_dump_json(exclude={"phone_number"}) for c in checks],
    ])
