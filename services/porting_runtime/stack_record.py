"""The local stack's record: where `porting up` listens, and the identity a command checks.

`porting up` writes `<data dir>/stack.json` once everything is healthy and removes it when it
stops. The record carries a random stack id that the stack also keeps in its PostgreSQL
(table `porting_stack` of the superuser's `postgres` database) and gives its broker as the
cluster id, so a command can tell the stack it was told about from another server that took
the same port (this repo's docker-compose PostgreSQL holds 5433, for one).

Operator commands do not use this module directly: `porting_runtime.operator_cli` does.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

RECORD_NAME = "stack.json"
DEFAULT_DATA_DIR = Path(".porting")
FORMAT = 1
IDENTITY_TABLE = "porting_stack"


class StackUnavailable(Exception):
    """Why a command cannot use the stack; the message is one line that says what to do."""


def new_stack_id() -> str:
    return f"porting-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class ServiceEndpoint:
    url: str
    database_url: str


@dataclass(frozen=True)
class StackRecord:
    stack_id: str
    pid: int  # the `porting up` process: gone means the stack is down
    data_dir: Path
    kafka_bootstrap_servers: str
    postgres_host: str
    postgres_port: int
    admin_database_url: str
    services: dict[str, ServiceEndpoint]
    logs: Path
    data_encryption_key_file: Path | None = None
    smtp_server: str | None = None  # host:port of the local mail catcher, when the notifier runs
    maildir: Path | None = None  # where that catcher keeps the mail
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def path(self) -> Path:
        return record_path(self.data_dir)

    def to_json(self) -> str:
        document: dict[str, Any] = {"format": FORMAT, **asdict(self)}
        for key in ("data_dir", "logs", "data_encryption_key_file", "maildir"):
            document[key] = str(document[key]) if document[key] is not None else None
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: Path) -> StackRecord:
        try:
            document = json.loads(text)
            if document.pop("format") != FORMAT:
                raise ValueError("an unknown format")
            key_file = document.pop("data_encryption_key_file", None)
            maildir = document.pop("maildir", None)
            return cls(
                **{k: v for k, v in document.items() if k not in ("services", "data_dir", "logs")},
                maildir=Path(maildir) if maildir else None,
                data_dir=Path(document["data_dir"]),
                logs=Path(document["logs"]),
                services={name: ServiceEndpoint(**spec) for name, spec in document["services"].items()},
                data_encryption_key_file=Path(key_file) if key_file else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StackUnavailable(
                f"{source} is not a stack record this version understands ({error}); "
                "stop that stack and start it again with `make run`") from None

    def write(self) -> Path:
        """Atomically, readable by its owner only (it holds the local passwords)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(self.to_json())
        temporary.chmod(0o600)
        temporary.replace(self.path)
        return self.path

    def remove(self) -> None:
        """Remove the record if it is still this stack's (never another's that replaced it)."""
        try:
            if read(self.data_dir).stack_id == self.stack_id:
                self.path.unlink(missing_ok=True)
        except (StackUnavailable, OSError):
            pass

    def is_running(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, another user's
            return True
        return True


def record_path(data_dir: Path) -> Path:
    return Path(data_dir) / RECORD_NAME


def read(data_dir: Path) -> StackRecord:
    path = record_path(data_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StackUnavailable(
            f"no local stack is running (no {path}): start one with `make run`, point at one with "
            "--data-dir or PORTING_DATA_DIR, or name servers with KAFKA_BOOTSTRAP_SERVERS and "
            "<SERVICE>_DATABASE_URL") from None
    return StackRecord.from_json(text, source=path)


def find_data_dir(start: Path) -> Path:
    """The nearest `.porting` holding a record, from `start` up; `start/.porting` when none does."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if record_path(directory / DEFAULT_DATA_DIR).exists():
            return directory / DEFAULT_DATA_DIR
    return start / DEFAULT_DATA_DIR


def running(data_dir: Path) -> StackRecord:
    """The record of a stack whose `porting up` is alive, or StackUnavailable saying why not."""
    record = read(data_dir)
    if not record.is_running():
        raise StackUnavailable(
            f"the local stack recorded in {record.path} is not running (its `porting up`, pid {record.pid}, "
            "has exited): start it with `make run`")
    return record


# The identity inside PostgreSQL: one row, readable by every role.
_CLAIM = f"""
CREATE TABLE IF NOT EXISTS {IDENTITY_TABLE} (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    stack_id text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON {IDENTITY_TABLE} TO PUBLIC;
"""


async def claim_postgres(admin: asyncpg.Connection, stack_id: str) -> None:
    """Mark this PostgreSQL as the stack's (the superuser's `postgres` database, by `porting up`)."""
    await admin.execute(_CLAIM)
    await admin.execute(
        f"INSERT INTO {IDENTITY_TABLE} (stack_id) VALUES ($1) "
        "ON CONFLICT (one) DO UPDATE SET stack_id = excluded.stack_id, started_at = now()",
        stack_id,
    )


async def postgres_stack_id(admin_database_url: str, *, timeout: float = 10.0) -> str | None:
    """The stack id the PostgreSQL at this URL holds, None when it holds none."""
    connection = await asyncpg.connect(admin_database_url, timeout=timeout)
    try:
        if not await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", IDENTITY_TABLE):
            return None
        return await connection.fetchval(f"SELECT stack_id FROM {IDENTITY_TABLE}")
    finally:
        await connection.close()


async def broker_cluster_id(settings: Any, *, timeout_ms: int = 10_000) -> str:
    """The cluster id the broker in `settings` reports (`porting up` gives its broker the stack id)."""
    from aiokafka.admin import AIOKafkaAdminClient

    from .kafka import connection_options

    admin = AIOKafkaAdminClient(**connection_options(settings), request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        return (await admin.describe_cluster())["cluster_id"]
    finally:
        await admin.close()
