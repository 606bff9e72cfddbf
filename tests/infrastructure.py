"""Where the tests' broker and database come from.

PORTING_TEST_INFRA=embedded (default): Tansu and PostgreSQL from PyPI wheels, started here.
PORTING_TEST_INFRA=containers: testcontainers with the Apache Kafka and PostgreSQL images (needs Docker).
PORTING_TEST_INFRA=external: the servers named by KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KAFKA_IMAGE = "apache/kafka:3.9.1"
POSTGRES_IMAGE = "postgres:17"


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap_servers: str
    admin_database_url: str  # a superuser: tests create a fresh database each


@contextlib.contextmanager
def embedded() -> Iterator[Infrastructure]:
    from porting_cli.embedded import EmbeddedKafka, EmbeddedPostgres, free_port

    root = Path(tempfile.mkdtemp(prefix="porting-tests-"))
    postgres = EmbeddedPostgres(root / "pgdata", port=free_port(), durable=False).start()
    kafka = EmbeddedKafka(port=free_port(), log_file=root / "kafka.log").start()
    try:
        yield Infrastructure(kafka.bootstrap_servers, postgres.dsn())
    finally:
        kafka.stop()
        postgres.stop()


@contextlib.contextmanager
def containers() -> Iterator[Infrastructure]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka, PostgresContainer(POSTGRES_IMAGE, driver=None) as pg:
        yield Infrastructure(kafka.get_bootstrap_server(), pg.get_connection_url())


@contextlib.contextmanager
def external() -> Iterator[Infrastructure]:
    yield Infrastructure(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"])


def provide() -> contextlib.AbstractContextManager[Infrastructure]:
    mode = os.environ.get("PORTING_TEST_INFRA", "embedded")
    providers = {"embedded": embedded, "containers": containers, "external": external}
    if mode not in providers:
        raise ValueError(f"PORTING_TEST_INFRA={mode!r}: use one of {', '.join(providers)}")
    return providers[mode]()
