"""What only this project knows about its deployment files, checked on the project as the real
Compose implementation resolves docker-compose.yml (anchors merged, long forms), since no Docker
engine runs here. The tools' own checks are in test_deployment_tools.py."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from porting_cli.stack import SERVICES
from porting_runtime.sealing import Sealer

from ..deployment_tools import ROOT, resolved_compose

COMPOSE = resolved_compose()
APPLICATION_SERVICES = [s.name for s in SERVICES]
HTTP_OFFSETS = {s.name: s.http_offset for s in SERVICES}


def _healthcheck(name: str) -> str:
    return " ".join(COMPOSE["services"][name]["healthcheck"]["test"])


def test_kafka_runs_apache_kafka_in_kraft_mode_on_a_single_node():
    kafka = COMPOSE["services"]["kafka"]
    environment = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", environment["CLUSTER_ID"]), "KRaft formats its storage with it"
    assert "INTERNAL://kafka:19092" in environment["KAFKA_ADVERTISED_LISTENERS"].split(",")
    listeners = {entry.split("://")[0] for entry in environment["KAFKA_LISTENERS"].split(",")}
    protocols = dict(pair.split(":") for pair in environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert listeners == set(protocols)
    assert "localhost:19092" in _healthcheck("kafka")


def test_postgres_creates_one_database_and_one_role_per_service_and_is_healthy_only_over_tcp():
    postgres = COMPOSE["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    [init] = [v for v in postgres["volumes"] if v["target"].startswith("/docker-entrypoint-initdb.d/")]
    assert init["read_only"]
    script = Path(init["source"]).read_text()
    for service in APPLICATION_SERVICES:
        assert f"CREATE ROLE {service} LOGIN PASSWORD '{service}'" in script
        assert f"CREATE DATABASE {service} OWNER {service}" in script
        assert f"REVOKE ALL ON DATABASE {service} FROM PUBLIC" in script
    # The image's init server listens on the socket only: a socket check passes before init.sql is done.
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "-h 127.0.0.1" in _healthcheck("postgres")


def test_mailpit_catches_the_mail_with_a_web_inbox_and_smtp_on_1025():
    mailpit = COMPOSE["services"]["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit")
    assert {p["target"] for p in mailpit["ports"]} == {8025, 1025}
    assert "healthcheck" in mailpit


def test_the_compose_file_runs_exactly_the_services_porting_up_runs():
    declared = [name for name, spec in COMPOSE["services"].items() if "build" in spec]
    assert sorted(declared) == sorted(APPLICATION_SERVICES) == ["notifier", "portability", "workflow"]


@pytest.mark.parametrize("name", APPLICATION_SERVICES)
def test_a_service_is_built_from_the_image_and_runs_its_own_package(name):
    service = COMPOSE["services"][name]
    assert Path(service["build"]["context"]) == ROOT
    assert service["build"]["dockerfile"] == "Dockerfile"
    assert service["command"] == ["python", "-m", name]
    assert importlib.util.find_spec(name) is not None
    packaged = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert f"{name}*" in packaged, "the image installs it"


@pytest.mark.parametrize("name", APPLICATION_SERVICES)
def test_a_service_has_its_broker_its_own_database_and_role_and_its_dependencies(name):
    service = COMPOSE["services"][name]
    environment = service["environment"]
    assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
    database = re.fullmatch(r"postgresql://(\w+):(\w+)@postgres:5432/(\w+)", environment["DATABASE_URL"])
    assert database and database.group(1) == database.group(3) == name, "its own role and database"
    for dependency in ("kafka", "postgres"):
        assert service["depends_on"][dependency]["condition"] == "service_healthy"
    assert service["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", APPLICATION_SERVICES)
def test_a_service_is_healthy_on_the_port_it_listens_on_published_where_porting_up_puts_it(name):
    service = COMPOSE["services"][name]
    port = int(service["environment"]["HTTP_PORT"])
    assert service["environment"]["HTTP_HOST"] == "0.0.0.0", "reachable through the published port"
    assert f"http://127.0.0.1:{port}/health" in _healthcheck(name)
    [published] = service["ports"]
    assert published["target"] == port
    assert int(published["published"]) == 8080 + HTTP_OFFSETS[name]


@pytest.mark.parametrize("name", APPLICATION_SERVICES)
def test_a_service_seals_with_a_key_the_sealer_accepts(name):
    keys = COMPOSE["services"][name]["environment"]["DATA_ENCRYPTION_KEYS"]
    Sealer(keys.split(","))  # raises on a key that is not a Fernet key


def test_the_notifier_mails_through_mailpit_and_signs_webhooks_with_a_valid_secret():
    from notifier.settings import NotifierSettings

    notifier = COMPOSE["services"]["notifier"]
    environment = notifier["environment"]
    assert (environment["SMTP_HOST"], int(environment["SMTP_PORT"])) == ("mailpit", 1025)
    assert notifier["depends_on"]["mailpit"]["condition"] == "service_healthy"
    settings = NotifierSettings(webhook_signing_secret=environment["WEBHOOK_SIGNING_SECRET"])
    assert settings.webhook_signing_secret is not None


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", dockerfile)
    return [(line.split()[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfile_installs_dependencies_before_it_copies_the_source_and_runs_as_a_numeric_user():
    steps = _instructions((ROOT / "Dockerfile").read_text())
    position = {f"{kind} {argument}": index for index, (kind, argument) in enumerate(steps)}
    dependencies = next(i for i, (kind, arg) in enumerate(steps) if kind == "RUN" and "-r /tmp/requirements.txt" in arg)
    source = min(i for i, (kind, arg) in enumerate(steps) if kind == "COPY" and ("services" in arg or "schemas" in arg))
    assert position["COPY pyproject.toml ./"] < dependencies < source, "the dependency layer is cached across source edits"
    project = next(arg for kind, arg in steps[source:] if kind == "RUN" and "pip install" in arg)
    assert "--no-deps ." in project, "the project alone, its dependencies already there"
    [user] = [arg for kind, arg in steps if kind == "USER"]
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", user), "numeric, for runAsNonRoot"
    assert f"--uid {user.split(':')[0]}" in project


def test_the_build_context_leaves_out_the_local_state():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1:][:3] == ["!pyproject.toml", "!schemas/", "!services/"]
