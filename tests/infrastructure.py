"""Where the tests' broker and database come from.

PORTING_TEST_INFRA=embedded (default): Tansu and PostgreSQL from PyPI wheels, started here.
PORTING_TEST_INFRA=containers: testcontainers with the Apache Kafka and PostgreSQL images (needs a local
    Docker engine; not run on the machines this project is built on, which have none).
PORTING_TEST_INFRA=external: the servers named by KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KAFKA_IMAGE = "apache/kafka:3.9.1"
POSTGRES_IMAGE = "postgres:17"
# A fixed KRaft cluster id (base64 of 16 bytes), as `kafka-storage.sh random-uuid` makes; the
# image formats its storage with it and refuses to start in KRaft mode without one.
KAFKA_CLUSTER_ID = "bns-U-u4T5iCVd1TxY147A"
# What apache/kafka logs once the broker serves clients.
KAFKA_READY = r"Kafka Server started"
# As the embedded PostgreSQL runs for tests: many pools at once, speed over crash safety.
POSTGRES_COMMAND = "postgres -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"


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
        shutil.rmtree(root, ignore_errors=True)  # ~90 MB a run: left behind, they filled /tmp


def kafka_container(host_port: int, *, host: str = "127.0.0.1", docker_client_kw: dict[str, Any] | None = None):
    """Apache Kafka in KRaft mode (one node, broker and controller) from the official image.

    testcontainers' own KafkaContainer does not take this image (its KRaft check wants a
    Confluent tag and its start script runs Confluent's /etc/confluent/docker/*), so this is a
    generic container configured through the image's KAFKA_* variables. A client is told to
    come back on the advertised listener, which must therefore be the host port; a port Docker
    picked would be known only after start, too late for the environment, so the host port is
    chosen before (free on this machine: a local Docker engine is assumed).
    """
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    environment = {
        "CLUSTER_ID": KAFKA_CLUSTER_ID,
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        # BROKER stays inside the container (the broker's own connections); EXTERNAL is published.
        "KAFKA_LISTENERS": "BROKER://:19092,EXTERNAL://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"BROKER://localhost:19092,EXTERNAL://{host}:{host_port}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "BROKER:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_NUM_PARTITIONS": "6",
    }
    return (
        DockerContainer(KAFKA_IMAGE, env=environment, docker_client_kw=docker_client_kw)
        .with_bind_ports(9092, host_port)
        .waiting_for(LogMessageWaitStrategy(KAFKA_READY).with_startup_timeout(120))
    )


def postgres_container(docker_client_kw: dict[str, Any] | None = None):
    """PostgreSQL with the superuser postgres/postgres (tests create a database each).
    Its readiness check runs psql over TCP, so the image's socket-only init server cannot pass it."""
    from testcontainers.community.postgres import PostgresContainer

    return PostgresContainer(
        POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres", driver=None,
        docker_client_kw=docker_client_kw,
    ).with_command(POSTGRES_COMMAND)


@contextlib.contextmanager
def containers() -> Iterator[Infrastructure]:
    from porting_cli.embedded import free_port

    host, port = "127.0.0.1", free_port()
    with kafka_container(port, host=host), postgres_container() as postgres:
        yield Infrastructure(f"{host}:{port}", postgres.get_connection_url())


@contextlib.contextmanager
def external() -> Iterator[Infrastructure]:
    yield Infrastructure(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"])


def provide() -> contextlib.AbstractContextManager[Infrastructure]:
    mode = os.environ.get("PORTING_TEST_INFRA", "embedded")
    providers = {"embedded": embedded, "containers": containers, "external": external}
    if mode not in providers:
        raise ValueError(f"PORTING_TEST_INFRA={mode!r}: use one of {', '.join(providers)}")
    return providers[mode]()
