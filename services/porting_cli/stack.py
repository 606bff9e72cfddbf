"""`porting up`: the embedded broker, PostgreSQL (a database and role per service), and every service."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from porting_runtime import stack_record
from porting_runtime.kafka import ensure_topics
from porting_runtime.sealing import LOCAL_KEY_FILE, ensure_local_key, kept_secret
from porting_runtime.settings import ServiceSettings
from porting_runtime.stack_record import ServiceEndpoint, StackRecord, StackUnavailable
from schemas import ALL_TOPICS, dead_letter_topic

from .embedded import EmbeddedKafka, EmbeddedPostgres, die_with_parent, port_is_free, stop_process, wait_for_port

LOCAL_WEBHOOK_SECRET_FILE = "webhook-signing.secret"
# A service that exits is started again, as a deployment's supervisor would (the broker keeps its
# messages only while it runs, so stopping everything would lose them); one that exits this often
# in this long is broken, and the stack stops instead of restarting it forever.
RESTARTS_ALLOWED = 5
RESTART_WINDOW_SECONDS = 120.0


@dataclass
class Supervision:
    """What one look at the stack's processes found: services started again (name, exit code),
    and what cannot be (the stack must stop)."""

    restarted: list[tuple[str, int]]
    fatal: list[str]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    http_offset: int

    @property
    def exists(self) -> bool:
        return importlib.util.find_spec(self.name) is not None and \
            importlib.util.find_spec(f"{self.name}.__main__") is not None


SERVICES = (ServiceSpec("portability", 0), ServiceSpec("workflow", 1), ServiceSpec("notifier", 2))


def _local_webhook_secret(root: Path) -> str:
    """The local stack's webhook signing secret (Standard Webhooks `whsec_` form), made once and kept."""
    return kept_secret(root / LOCAL_WEBHOOK_SECRET_FILE,
                       lambda: "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii"))


class LocalStack:
    def __init__(self, root: Path, *, host: str = "127.0.0.1", kafka_port: int = 9092,
                 postgres_port: int = 5433, http_port: int = 8080, smtp_port: int = 1025) -> None:
        self.root, self.host, self.http_port, self.smtp_port = root, host, http_port, smtp_port
        self.logs = root / "logs"
        self.stack_id = stack_record.new_stack_id()
        self.postgres = EmbeddedPostgres(root / "postgres", host, postgres_port)
        self.kafka = EmbeddedKafka(host, kafka_port, log_file=self.logs / "kafka.log", cluster_id=self.stack_id)
        self.services = [s for s in SERVICES if s.exists]
        self.processes: dict[str, subprocess.Popen] = {}
        # The notifier's e-mail goes to a local catcher that keeps it in a Maildir (`porting mail`).
        self.maildir = root / "mail"
        self.mail_catcher: subprocess.Popen | None = None
        self.data_encryption_key_file = root / LOCAL_KEY_FILE
        self.data_encryption_key: str | None = None
        self.record: StackRecord | None = None
        self.restarts: dict[str, list[float]] = {}

    def service_url(self, service: ServiceSpec) -> str:
        return f"http://{self.host}:{self.http_port + service.http_offset}"

    def database_url(self, service: str) -> str:
        return self.postgres.dsn(database=service, user=service, password=service)

    def start(self, timeout: float = 60.0) -> None:
        self._refuse_a_running_stack()
        self._refuse_taken_ports()
        self.logs.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        # Made once and kept: dead letters sealed before a restart still open after it.
        self.data_encryption_key = ensure_local_key(self.root)
        self.webhook_signing_secret = _local_webhook_secret(self.root)
        try:
            self.postgres.start()
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"PostgreSQL: {error}; see {self.postgres.data_dir / 'server.log'}") from None
        try:
            asyncio.run(self._provision_databases())
        except (OSError, asyncpg.PostgresError) as error:
            raise RuntimeError(f"PostgreSQL: cannot provision the services' databases: {error}") from None
        try:
            self.kafka.start()
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"the Kafka broker: {error}; see {self.logs / 'kafka.log'}") from None
        topics = [*ALL_TOPICS, *(dead_letter_topic(s.name) for s in SERVICES)]
        asyncio.run(ensure_topics(ServiceSettings(kafka_bootstrap_servers=self.kafka.bootstrap_servers), topics))
        if self._catches_mail:
            self._start_mail_catcher()
        for service in self.services:
            self._start_service(service)
        for service in self.services:
            self._wait_healthy(service, deadline)
        self.record = self._record()
        self.record.write()

    def _refuse_a_running_stack(self) -> None:
        # Two launchers on one data directory would share (and break) one PostgreSQL data directory.
        try:
            running = stack_record.running(self.root)
        except StackUnavailable:
            return
        raise RuntimeError(f"a stack is already running from {self.root} (porting up, pid {running.pid}); "
                           "stop it first, or use another --data-dir")

    def _refuse_taken_ports(self) -> None:
        # A server already on a port would answer in our servers' place (the readiness checks
        # only see that something listens): this repo's docker-compose PostgreSQL holds 5433.
        wanted = [("Kafka", self.kafka.port), ("PostgreSQL", self.postgres.port),
                  *((s.name, self.http_port + s.http_offset) for s in self.services)]
        if self._catches_mail:
            wanted.append(("the mail catcher", self.smtp_port))
        flags = {"Kafka": "--kafka-port (make run KAFKA_PORT=...)",
                 "PostgreSQL": "--postgres-port (make run POSTGRES_PORT=...)",
                 "the mail catcher": "--smtp-port (make run SMTP_PORT=...)"}
        for what, port in wanted:
            if not port_is_free(self.host, port):
                raise RuntimeError(f"{self.host}:{port}, wanted for {what}, is taken by another program; choose "
                                   f"another with {flags.get(what, '--http-port (make run HTTP_PORT=...)')}")

    @property
    def _catches_mail(self) -> bool:
        return any(s.name == "notifier" for s in self.services)

    def _start_mail_catcher(self) -> None:
        log = open(self.logs / "mail-catcher.log", "ab")  # noqa: SIM115
        self.mail_catcher = subprocess.Popen(
            [sys.executable, "-m", "notifier.entrypoints.smtp_catcher", "--maildir", str(self.maildir),
             "--host", self.host, "--port", str(self.smtp_port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent(),
        )
        try:
            wait_for_port(self.host, self.smtp_port, 15, self.mail_catcher)
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"the mail catcher: {error}; see {self.logs / 'mail-catcher.log'}") from None

    def _record(self) -> StackRecord:
        return StackRecord(
            stack_id=self.stack_id, pid=os.getpid(), data_dir=self.root,
            kafka_bootstrap_servers=self.kafka.bootstrap_servers,
            postgres_host=self.host, postgres_port=self.postgres.port, admin_database_url=self.postgres.dsn(),
            services={s.name: ServiceEndpoint(self.service_url(s), self.database_url(s.name)) for s in self.services},
            logs=self.logs, data_encryption_key_file=self.data_encryption_key_file,
            smtp_server=f"{self.host}:{self.smtp_port}" if self.mail_catcher else None,
            maildir=self.maildir if self.mail_catcher else None,
        )

    async def _provision_databases(self) -> None:
        """One database and one role per service; a role cannot connect to the others' databases."""
        admin = await asyncpg.connect(self.postgres.dsn())
        try:
            await stack_record.claim_postgres(admin, self.stack_id)
            for service in (s.name for s in SERVICES):
                if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service):
                    await admin.execute(f"CREATE ROLE {service} LOGIN PASSWORD '{service}'")
                if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", service):
                    await admin.execute(f"CREATE DATABASE {service} OWNER {service}")
                await admin.execute(f"REVOKE ALL ON DATABASE {service} FROM PUBLIC")
        finally:
            await admin.close()

    def _start_service(self, service: ServiceSpec) -> None:
        environment = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "DATABASE_URL": self.database_url(service.name),
            "HTTP_HOST": self.host,
            "HTTP_PORT": str(self.http_port + service.http_offset),
        }
        if self.mail_catcher:
            environment |= {"SMTP_HOST": self.host, "SMTP_PORT": str(self.smtp_port)}
        if self.data_encryption_key and not os.environ.get("DATA_ENCRYPTION_KEYS"):  # the caller's keys win
            environment["DATA_ENCRYPTION_KEYS"] = self.data_encryption_key
        # Locally, webhooks are signed with a secret kept under the data directory, and ops alerts
        # land in the catcher like the rest of the mail; the caller's own values win.
        environment.setdefault("WEBHOOK_SIGNING_SECRET", self.webhook_signing_secret)
        environment.setdefault("OPS_ALERT_EMAILS", "ops@localhost")
        # The notifier refuses webhooks to anything but public https addresses; locally the
        # receiver is on this machine, over http.
        environment.setdefault("WEBHOOK_ALLOW_HTTP", "true")
        environment.setdefault("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8,::1/128")
        log = open(self.logs / f"{service.name}.log", "ab")  # noqa: SIM115
        self.processes[service.name] = subprocess.Popen(
            [sys.executable, "-m", service.name], env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent(),
        )

    def _wait_healthy(self, service: ServiceSpec, deadline: float) -> None:
        url = f"{self.service_url(service)}/health"
        while time.monotonic() < deadline:
            process = self.processes[service.name]
            if process.poll() is not None:
                raise RuntimeError(f"{service.name} exited ({process.returncode}); see {self.logs / service.name}.log")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{service.name} was not healthy in time; see {self.logs / service.name}.log")

    def supervise(self) -> Supervision:
        """Start again each service (and the mail catcher) that exited; the broker or PostgreSQL
        gone, or a service exiting again and again, is fatal. Call it every moment the stack runs."""
        fatal = [what for what, process in (("the Kafka broker (its messages are gone)", self.kafka.process),
                                            ("PostgreSQL", self.postgres.process))
                 if process is not None and process.poll() is not None]
        if fatal:
            return Supervision([], fatal)
        now, restarted = time.monotonic(), []
        exited = [(s.name, self.processes[s.name], lambda s=s: self._start_service(s)) for s in self.services]
        if self.mail_catcher is not None:
            exited.append(("mail catcher", self.mail_catcher, self._start_mail_catcher))
        for name, process, start in exited:
            if process.poll() is None:
                continue
            recent = [t for t in self.restarts.get(name, []) if now - t < RESTART_WINDOW_SECONDS]
            if len(recent) >= RESTARTS_ALLOWED:
                fatal.append(f"{name} (exited {len(recent) + 1} times within {RESTART_WINDOW_SECONDS:.0f} s)")
                continue
            self.restarts[name] = [*recent, now]
            try:
                start()
            except (RuntimeError, TimeoutError, OSError) as error:
                fatal.append(f"{name} (exited {process.returncode}, and did not start again: {error})")
                continue
            restarted.append((name, process.returncode))
        return Supervision(restarted, fatal)

    def stop(self) -> None:
        if self.record:
            self.record.remove()  # first: from here on, commands say the stack is down
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            stop_process(process, signal.SIGTERM, timeout=20)
        stop_process(self.mail_catcher, signal.SIGTERM)  # after the notifier: it may still be sending
        self.kafka.stop()
        self.postgres.stop()

    def endpoints(self) -> list[tuple[str, str]]:
        rows = [("Kafka broker (Tansu, in memory)", self.kafka.bootstrap_servers),
                ("PostgreSQL (superuser postgres/postgres)", f"{self.host}:{self.postgres.port}")]
        for service in self.services:
            rows.append((f"{service.name} (health, metrics)", self.service_url(service)))
        if self.mail_catcher:
            rows.append(("mail catcher (SMTP; porting mail list)", f"{self.host}:{self.smtp_port}"))
        rows.append(("logs", str(self.logs)))
        rows.append(("stack record (porting commands read it)", str(stack_record.record_path(self.root))))
        return rows
