"""What every service's operator commands share: running work against the service's database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import typer
from rich.console import Console

from .database import apply_migrations

T = TypeVar("T")


def run_with_database(
    database_url: str,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    console: Console,
    service: str | None = None,
    migrations: Sequence[Path] = (),
) -> T:
    """Run `work` on one connection (after the service's migrations, when named); a database
    that cannot be reached or refuses is reported plainly and exits 1."""

    async def run() -> Any:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        try:
            if service:
                await apply_migrations(pool, service, *migrations)
            async with pool.acquire() as connection:
                return await work(connection)
        finally:
            await pool.close()

    try:
        return asyncio.run(run())
    except (OSError, asyncpg.PostgresError) as error:
        console.print(f"[red]cannot use the database at {database_url}: {error}[/red]")
        raise typer.Exit(1) from None
