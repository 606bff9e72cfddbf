"""A unit of work's writes composed into one statement: one round trip for a batch's state,
timers and follow-ups.

On two cores shared by PostgreSQL, the broker and the services, every round trip of a batch
waits for a core (2-11 ms each at half the peak rate in `make bench`), and a workflow batch had
three write statements of its own. Each writer gives its data-modifying CTEs with parameters
numbered from $1; `one_statement` renumbers them after each other and joins them under one
WITH. PostgreSQL runs every data-modifying CTE to completion, referenced or not, all on one
snapshot and in an order it does not promise: the parts write different tables (the handler's
own, `timers`, `outbox`) and none may depend on another's effects or order; the only locks a
part takes are the outbox's per-key ones, in sorted order.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

_PARAMETER = re.compile(r"\$(\d+)")
# A CTE's name: at the start of a part, or after the `),` that ends the one before it.
_CTE_NAME = re.compile(r"(?:\A|\)\s*,)\s*([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class Writes:
    """Data-modifying CTEs (`name AS (...)`, comma-separated, names unique among the parts that
    are composed together) and their arguments ($1 upwards); `result`, when given, is an
    expression of the final SELECT (a wake-up NOTIFY), in the same numbering. SQL text here is
    the service's own, never dollar-quoted: `$n` always means a parameter."""

    ctes: str
    arguments: Sequence[Any]
    result: str = ""


def _shifted(sql: str, offset: int) -> str:
    return _PARAMETER.sub(lambda m: f"${int(m.group(1)) + offset}", sql) if offset else sql


def one_statement(parts: Sequence[Writes]) -> tuple[str, list[Any]]:
    """The statement and its arguments that run every part at once. A part whose parameters and
    arguments disagree, or two parts naming a CTE alike, is a bug of the code composing them:
    ValueError, rather than arguments bound to the next part's parameters."""
    sql = _composed(tuple((part.ctes, part.result, len(part.arguments)) for part in parts))
    return sql, [argument for part in parts for argument in part.arguments]


@functools.lru_cache(maxsize=128)
def _composed(shape: tuple[tuple[str, str, int], ...]) -> str:
    """The statement for parts of this SQL and these argument counts: checked and renumbered
    once per shape (the SQL is the services' constants; only the parts present vary)."""
    ctes: list[str] = []
    results: list[str] = []
    names: set[str] = set()
    offset = 0
    for part_ctes, result, count in shape:
        used = {int(n) for n in _PARAMETER.findall(part_ctes + result)}
        if used != set(range(1, count + 1)):
            raise ValueError(f"a part uses parameters up to ${max(used, default=0)} for {count} arguments")
        for name in _CTE_NAME.findall(part_ctes.strip()):
            if name.lower() in names:
                raise ValueError(f"two parts of one statement name a CTE {name!r}")
            names.add(name.lower())
        ctes.append(_shifted(part_ctes.strip(), offset))
        if result:
            results.append(_shifted(result.strip(), offset))
        offset += count
    # Joined on a new line each: a part ending in a `--` comment cannot swallow the next.
    return "WITH " + ",\n".join(ctes) + f"\nSELECT {', '.join(results) or 'NULL'}"


async def write_all(connection: asyncpg.Connection, parts: Sequence[Writes]) -> None:
    """Run every part in one statement (nothing when there is none)."""
    if parts:
        sql, arguments = one_statement(parts)
        await connection.execute(sql, *arguments)
