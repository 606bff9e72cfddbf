"""A command checks the servers on the recorded ports are the recorded stack's, on real servers:
the tests' PostgreSQL and broker stand for "another server took that port"."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import typer

from porting_runtime import operator_cli, stack_record
from porting_runtime.stack_record import ServiceEndpoint, StackRecord

from ..infrastructure import Infrastructure


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch, tmp_path):
    for name in ("PORTING_DATA_DIR", "KAFKA_BOOTSTRAP_SERVERS", "PORTABILITY_DATABASE_URL", "DATA_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    operator_cli.use_data_dir(tmp_path / ".porting")
    yield
    operator_cli.use_data_dir(None)


def record_for(tmp_path: Path, infrastructure: Infrastructure, admin_database_url: str, stack_id: str) -> StackRecord:
    """A record of a stack that would run on the tests' servers, its `porting up` this very process."""
    where = urlsplit(admin_database_url)
    record = StackRecord(
        stack_id=stack_id, pid=os.getpid(), data_dir=tmp_path / ".porting",
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap_servers,
        postgres_host=where.hostname or "", postgres_port=where.port or 5432, admin_database_url=admin_database_url,
        services={"portability": ServiceEndpoint("http://127.0.0.1:1", admin_database_url)},
        logs=tmp_path / "logs",
    )
    record.write()
    return record


def claim(admin_database_url: str, stack_id: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(admin_database_url)
        try:
            await stack_record.claim_postgres(connection, stack_id)
        finally:
            await connection.close()

    asyncio.run(run())


def test_the_stacks_own_postgres_is_used(tmp_path, infrastructure, database_url):
    claim(database_url, "porting-aaaaaaaaaaaaaaaa")
    record_for(tmp_path, infrastructure, database_url, "porting-aaaaaaaaaaaaaaaa")
    assert operator_cli.database_url_for("portability") == database_url


def test_a_postgres_holding_another_stacks_id_is_refused(tmp_path, infrastructure, database_url, capsys):
    claim(database_url, "porting-bbbbbbbbbbbbbbbb")  # a later `porting up` took the port
    record = record_for(tmp_path, infrastructure, database_url, "porting-aaaaaaaaaaaaaaaa")
    with pytest.raises(typer.Exit):
        operator_cli.database_url_for("portability")
    error = capsys.readouterr().err
    assert f"is not the stack recorded in {record.path}" in error
    assert "it holds stack porting-bbbbbbbbbbbbbbbb, expected porting-aaaaaaaaaaaaaaaa" in error


def test_a_postgres_that_is_no_stacks_at_all_is_refused_and_left_unchanged(tmp_path, infrastructure, database_url, capsys):
    record_for(tmp_path, infrastructure, database_url, "porting-aaaaaaaaaaaaaaaa")
    with pytest.raises(typer.Exit):
        operator_cli.database_url_for("portability")
    assert "(it holds no stack id, expected porting-aaaaaaaaaaaaaaaa)" in capsys.readouterr().err

    async def tables() -> int:
        connection = await asyncpg.connect(database_url)
        try:
            return await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await connection.close()

    assert asyncio.run(tables()) == 0, "nothing was written there"


def test_a_broker_of_another_cluster_is_refused(tmp_path, infrastructure, database_url, capsys):
    record_for(tmp_path, infrastructure, database_url, "porting-aaaaaaaaaaaaaaaa")
    with pytest.raises(typer.Exit):
        operator_cli.kafka_settings()
    error = capsys.readouterr().err
    assert f"the Kafka broker at {infrastructure.kafka_bootstrap_servers} is not the stack recorded in" in error
    assert "expected porting-aaaaaaaaaaaaaaaa" in error
