"""PORTING_TEST_INFRA=containers: the definitions the installed testcontainers accepts.

There is no Docker engine here, so the containers are built and inspected, never started; the
Docker client is given an API version so that building it does not ask an engine for one.
"""

from __future__ import annotations

import re

import pytest
import testcontainers

from porting_cli.embedded import free_port

from ..infrastructure import (
    KAFKA_IMAGE,
    KAFKA_READY,
    POSTGRES_IMAGE,
    kafka_container,
    postgres_container,
    provide,
)

NO_ENGINE = {"version": "1.44"}


@pytest.fixture
def kafka():
    return kafka_container(39_092, docker_client_kw=NO_ENGINE)


def properties(kafka) -> dict[str, str]:
    """The server properties the apache/kafka image makes of its KAFKA_* variables."""
    return {k.removeprefix("KAFKA_").lower().replace("_", "."): v for k, v in kafka.env.items() if k.startswith("KAFKA_")}


def test_the_installed_testcontainers_is_the_one_these_definitions_are_written_for():
    from importlib.metadata import version

    assert version("testcontainers") == "4.15.0", testcontainers


def test_kafka_is_the_official_apache_image_in_kraft_mode_as_one_broker_and_controller(kafka):
    assert kafka.image == KAFKA_IMAGE and KAFKA_IMAGE.startswith("apache/kafka:")
    config = properties(kafka)
    assert config["process.roles"] == "broker,controller"
    assert config["node.id"] == "1"
    assert config["controller.quorum.voters"] == "1@localhost:9093"
    assert config["controller.listener.names"] == "CONTROLLER"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kafka.env["CLUSTER_ID"]), "a KRaft cluster id: 16 bytes, base64"
    for replicated in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                       "transaction.state.log.min.isr"):
        assert config[replicated] == "1", "one node cannot hold more copies"


def test_every_kafka_listener_has_a_protocol_and_the_broker_talks_to_itself_inside_the_container(kafka):
    config = properties(kafka)
    protocols = dict(pair.split(":") for pair in config["listener.security.protocol.map"].split(","))
    listeners = {entry.split("://")[0] for entry in config["listeners"].split(",")}
    assert listeners == set(protocols)
    assert config["inter.broker.listener.name"] in listeners
    assert "BROKER://localhost:19092" in config["advertised.listeners"]


def test_kafka_advertises_the_host_port_it_is_published_on_chosen_before_start():
    port = free_port()
    kafka = kafka_container(port, docker_client_kw=NO_ENGINE)
    assert kafka.ports == {"9092": port}, "container port 9092 published on the chosen host port"
    assert f"EXTERNAL://127.0.0.1:{port}" in kafka.env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "EXTERNAL://:9092" in kafka.env["KAFKA_LISTENERS"].split(",")


def test_kafka_is_ready_when_the_image_logs_that_the_server_started(kafka):
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    strategy = kafka._wait_strategy
    assert isinstance(strategy, LogMessageWaitStrategy)
    assert strategy._message.search("[2025-01-01 00:00:00,000] INFO [KafkaRaftServer nodeId=1] Kafka Server started")
    assert strategy._message.pattern == KAFKA_READY
    assert strategy._startup_timeout >= 60


def test_postgres_is_the_official_image_with_a_superuser_and_room_for_many_pools():
    postgres = postgres_container(docker_client_kw=NO_ENGINE)
    assert postgres.image == POSTGRES_IMAGE
    assert (postgres.username, postgres.password, postgres.dbname) == ("postgres", "postgres", "postgres")
    assert postgres.driver == "", "a plain postgresql:// URL, as asyncpg takes it"
    assert "max_connections=300" in postgres._command
    postgres._configure()
    assert postgres.env["POSTGRES_USER"] == "postgres"


def test_an_unknown_infrastructure_mode_is_refused_with_the_known_ones(monkeypatch):
    monkeypatch.setenv("PORTING_TEST_INFRA", "docker")
    with pytest.raises(ValueError, match="use one of embedded, containers, external"):
        provide()
