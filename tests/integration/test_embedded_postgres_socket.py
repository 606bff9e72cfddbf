"""The embedded PostgreSQL's Unix socket: what `porting bench` reaches it through, with a password."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from porting_cli.embedded import EmbeddedPostgres, free_port


@pytest.fixture(scope="module")
def postgres() -> Iterator[EmbeddedPostgres]:
    # A short root: the socket's path must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="pgsock-", dir="/tmp"))
    server = EmbeddedPostgres(root / "pgdata", port=free_port(), durable=False).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_the_local_address_reaches_postgresql_over_its_unix_socket(postgres: EmbeddedPostgres) -> None:
    dsn = postgres.dsn(local=True)
    assert postgres.socket_dir is not None and f"host={postgres.socket_dir}" in dsn
    connection = await asyncpg.connect(dsn)
    try:
        # A Unix-socket session has no client address.
        assert await connection.fetchval("SELECT inet_client_addr()") is None
    finally:
        await connection.close()


async def test_the_socket_refuses_a_wrong_password(postgres: EmbeddedPostgres) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(postgres.dsn(password="not-the-password", local=True))


def test_only_the_servers_owner_gets_through_the_socket_directory(postgres: EmbeddedPostgres) -> None:
    assert postgres.socket_dir is not None
    assert postgres.socket_dir.stat().st_mode & 0o077 == 0


async def test_a_socket_path_with_a_comma_leaves_tcp_only(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "a,b" / "pgdata", port=free_port(), durable=False).start()
    try:
        assert server.socket_dir is None
        connection = await asyncpg.connect(server.dsn(local=True))
        await connection.close()
    finally:
        server.stop()


async def test_a_socket_path_too_long_for_the_system_leaves_tcp_only(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / ("d" * 100) / "pgdata", port=free_port(), durable=False).start()
    try:
        assert server.socket_dir is None
        assert server.dsn(local=True) == server.dsn()
        connection = await asyncpg.connect(server.dsn(local=True))
        await connection.close()
    finally:
        server.stop()
