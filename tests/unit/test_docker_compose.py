"""docker-compose.yml cannot run here (no Docker engine), so check everything a parser can."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from porting_cli.stack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APPLICATION_SERVICES = [s.name for s in SERVICES if s.exists]


def test_kafka_runs_apache_kafka_in_kraft_mode_on_a_single_node():
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "kafka:19092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "healthcheck" in kafka


def test_postgres_creates_one_database_and_one_role_per_service():
    postgres = COMPOSE["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    mounted = [v.split(":")[0] for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in v]
    script = (ROOT / mounted[0]).read_text()
    for service in ("portability", "workflow", "notifier"):
        assert f"CREATE ROLE {service} LOGIN" in script
        assert f"CREATE DATABASE {service} OWNER {service}" in script
        assert f"REVOKE ALL ON DATABASE {service} FROM PUBLIC" in script
    assert "healthcheck" in postgres


def test_mailpit_catches_the_mail_with_a_web_inbox():
    assert COMPOSE["services"]["mailpit"]["image"].startswith("axllent/mailpit")


def test_every_service_that_exists_is_in_the_compose_file_and_nothing_else():
    declared = [name for name, spec in COMPOSE["services"].items() if "build" in spec]
    assert sorted(declared) == sorted(APPLICATION_SERVICES)


@pytest.mark.parametrize("name", APPLICATION_SERVICES)
def test_a_service_has_its_build_its_broker_its_own_database_its_healthcheck_and_its_dependencies(name):
    service = COMPOSE["services"][name]
    assert service["build"] == "."
    assert (ROOT / "Dockerfile").exists()
    assert service["command"] == ["python", "-m", name]
    assert importlib.util.find_spec(f"{name}.__main__") is not None
    environment = service["environment"]
    assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
    database = re.fullmatch(r"postgresql://(\w+):(\w+)@postgres:5432/(\w+)", environment["DATABASE_URL"])
    assert database and database.group(1) == database.group(3) == name, "its own role and database"
    assert "/health" in " ".join(service["healthcheck"]["test"])
    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_dockerfile_installs_the_project_and_runs_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    assert re.search(r"^USER \w+", dockerfile, re.MULTILINE)
