"""What every operator command shares: finding the stack, and running work against it.

Every `porting` command finds its servers here, and only here:

- by default from the record `porting up` writes (`<data dir>/stack.json`; the data directory
  is `--data-dir` on `porting`, else `PORTING_DATA_DIR`, else the nearest `.porting` from the
  current directory up), checked to be that very stack before anything is done;
- overridden, per server, by `KAFKA_BOOTSTRAP_SERVERS` (the broker) and `<SERVICE>_DATABASE_URL`
  or a command's `--database-url` (one service's database). An override is taken as it is: it
  names servers on purpose (docker-compose, production), so no record is needed or checked.

Nothing found, nothing running, another server on the recorded port, or a server that cannot
be reached: one line saying what to do on stderr, exit 1, no traceback.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import asyncpg
import typer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from pydantic import SecretStr
from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from . import stack_record
from .database import apply_migrations
from .record_text import visible
from .settings import ServiceSettings
from .stack_record import StackRecord, StackUnavailable

T = TypeVar("T")
S = TypeVar("S", bound=ServiceSettings)

DATA_DIR_ENV = "PORTING_DATA_DIR"
KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"



def operator_console(*, stderr: bool = False, soft_wrap: bool = False) -> Console:
    """The console every operator command prints with. Never markup: what it prints (sids, phone
    numbers, carriers' reasons, e-mail addresses, timer keys) came from outside, and rich would
    read "[/]" in it as a tag and crash, or "[link=...]" as a live hyperlink in the operator's
    terminal. Style goes by `style=` or `Text`, never by tags in the text. Nor control
    characters: see _OperatorConsole."""
    return _OperatorConsole(stderr=stderr, soft_wrap=soft_wrap, markup=False, emoji=False, highlight=False)


class _OperatorConsole(Console):
    """Rich passes ESC and the other control characters through: a subject or a reason could
    clear the operator's screen, retitle the terminal, plant a hyperlink or, with a direction
    override, show a sentence other than the one stored. Every string and Text printed, in a
    table or not, shows them as U+FFFD (record_text.visible), strings before they are measured;
    Rich's own styling and cursor controls are untouched."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)

    def render(self, renderable: Any, options: Any = None) -> Any:
        for segment in super().render(renderable, options):
            if segment.control is None and segment.text:
                shown = visible(segment.text)
                if shown != segment.text:
                    segment = Segment(shown, segment.style, segment.control)
            yield segment


_errors = operator_console(stderr=True, soft_wrap=True)
_data_dir_flag: Path | None = None
_verified: set[tuple[str, str, str]] = set()  # (server, its address, stack id) checked in this process


def database_env(service: str) -> str:
    """The environment variable naming one service's database: PORTABILITY_DATABASE_URL, ..."""
    return f"{service.upper().replace('-', '_')}_DATABASE_URL"


def refuse(message: str) -> NoReturn:
    """One line on stderr, exit 1: for a stack or server the command cannot use."""
    _errors.print(Text(message, style="red"))  # Text: brackets in an error are not markup
    raise typer.Exit(1)


def use_data_dir(path: Path | None) -> None:
    """`porting --data-dir DIR`: which stack's record every command reads."""
    global _data_dir_flag
    _data_dir_flag = path


def chosen_data_dir() -> Path | None:
    """The data directory named by `--data-dir` or PORTING_DATA_DIR, None when neither names one."""
    if _data_dir_flag is not None:
        return _data_dir_flag.resolve()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).resolve()
    return None


def data_dir() -> Path:
    """The data directory commands read the stack record from (see the module's docstring)."""
    return chosen_data_dir() or stack_record.find_data_dir(Path.cwd())


def current_stack() -> StackRecord:
    """The record of the running local stack, or refuse (nothing found, or not running)."""
    try:
        return stack_record.running(data_dir())
    except StackUnavailable as problem:
        refuse(str(problem))


def database_url_for(service: str, override: str | None = None) -> str:
    """The database URL of `service`: `override` (a --database-url), else <SERVICE>_DATABASE_URL,
    else the running stack's, checked to be that stack's PostgreSQL."""
    if override:
        return override
    if os.environ.get(database_env(service)):
        return os.environ[database_env(service)]
    record = current_stack()
    if service not in record.services:
        refuse(f"the local stack in {record.data_dir} runs no {service!r} service "
               f"(it runs: {', '.join(record.services) or 'none'})")
    _verify_postgres(record)
    return record.services[service].database_url


def service_url_for(service: str) -> str:
    """The HTTP base URL (health, metrics, API) of `service` in the running stack."""
    record = current_stack()
    if service not in record.services:
        refuse(f"the local stack in {record.data_dir} runs no {service!r} service "
               f"(it runs: {', '.join(record.services) or 'none'})")
    return record.services[service].url


def kafka_settings(settings_class: type[S] = ServiceSettings, **fields: Any) -> S:  # type: ignore[assignment]
    """Settings (`settings_class`, a service's own subclass if need be) for talking to the broker
    as operator code: the environment (SASL/TLS, TOPIC_PREFIX, ...), `fields`, and the bootstrap
    servers from KAFKA_BOOTSTRAP_SERVERS or else the running stack's, checked to be that stack's
    broker. DATA_ENCRYPTION_KEYS, when not set, comes from the stack's key file."""
    settings = settings_class(**fields)
    named = "kafka_bootstrap_servers" in settings.model_fields_set
    keys_named = "data_encryption_keys" in settings.model_fields_set
    if named and keys_named:
        return settings
    record: StackRecord | None = None
    if not named:
        record = current_stack()
        settings = settings.model_copy(update={"kafka_bootstrap_servers": record.kafka_bootstrap_servers})
        _verify_broker(record, settings)
    if not keys_named and (keys := data_encryption_keys(record)):
        settings = settings.model_copy(update={"data_encryption_keys": SecretStr(keys)})
    return settings


def data_encryption_keys(record: StackRecord | None = None) -> str | None:
    """DATA_ENCRYPTION_KEYS, else the key file `porting up` recorded; None when neither exists."""
    if os.environ.get("DATA_ENCRYPTION_KEYS"):
        return os.environ["DATA_ENCRYPTION_KEYS"]
    if record is None:
        try:
            record = stack_record.running(data_dir())
        except StackUnavailable:
            return None
    if record.data_encryption_key_file and record.data_encryption_key_file.exists():
        return record.data_encryption_key_file.read_text().strip() or None
    return None


def run_with_database(
    database_url: str,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    console: Console | None = None,
    service: str | None = None,
    migrations: Sequence[Path] = (),
) -> T:
    """Run `work` on one connection (after the service's migrations, when named); a database
    that cannot be reached or refuses is reported in one line on stderr and exits 1.
    (`console` is accepted for older callers; errors always go to stderr.)"""

    async def run() -> Any:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, timeout=10)
        try:
            if service:
                await apply_migrations(pool, service, *migrations)
            async with pool.acquire() as connection:
                return await work(connection)
        finally:
            await pool.close()

    try:
        return asyncio.run(run())
    except (OSError, asyncpg.PostgresError, asyncpg.ClientConfigurationError) as error:
        refuse(f"cannot use the database at {redact(database_url)}: {_reason(error)}; "
               f"is the stack running (`make run`)? {database_env(service) if service else '<SERVICE>_DATABASE_URL'} "
               "names another")


def run_with_broker(work: Callable[[ServiceSettings], Awaitable[T]], *, settings: ServiceSettings | None = None) -> T:
    """Run `work` with broker settings (`kafka_settings()` unless given); a broker that cannot be
    reached or refuses is reported in one line and exits 1."""
    settings = settings or kafka_settings()
    _quiet_kafka_client()
    try:
        return asyncio.run(work(settings))  # type: ignore[arg-type]
    except (KafkaConnectionError, KafkaTimeoutError, OSError) as error:
        refuse(f"cannot reach the Kafka broker at {settings.kafka_bootstrap_servers}: {_reason(error)}; "
               f"is the stack running (`make run`)? {KAFKA_ENV} names another")
    except KafkaError as error:
        refuse(f"the Kafka broker at {settings.kafka_bootstrap_servers} refused: {_reason(error)}")


def redact(url: str) -> str:
    """A database URL fit to print: the password replaced."""
    return re.sub(r"(://[^:/@]+):[^/]*@", r"\1:***@", url)  # to the authority's last @


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) < 300 else text[:297] + "..."


def _verify_postgres(record: StackRecord) -> None:
    where = f"{record.postgres_host}:{record.postgres_port}"
    if ("postgres", record.admin_database_url, record.stack_id) in _verified:
        return
    try:
        found = _run_sync(stack_record.postgres_stack_id(record.admin_database_url))
    except (OSError, asyncpg.PostgresError) as error:
        refuse(f"cannot reach PostgreSQL at {where}, recorded in {record.path}: {_reason(error)}; "
               "is its `porting up` still running? Start it with `make run`")
    if found != record.stack_id:
        refuse(f"the PostgreSQL at {where} is not the stack recorded in {record.path} "
               f"(it holds {'stack ' + found if found else 'no stack id'}, expected {record.stack_id}): "
               "another server has that port; start the stack again with `make run`")
    _verified.add(("postgres", record.admin_database_url, record.stack_id))


def _verify_broker(record: StackRecord, settings: ServiceSettings) -> None:
    where = settings.kafka_bootstrap_servers
    if ("kafka", where, record.stack_id) in _verified:
        return
    _quiet_kafka_client()
    try:
        found = _run_sync(stack_record.broker_cluster_id(settings))
    except (KafkaError, OSError) as error:
        refuse(f"cannot reach the Kafka broker at {where}, recorded in {record.path}: {_reason(error)}; "
               "is its `porting up` still running? Start it with `make run`")
    if found != record.stack_id:
        refuse(f"the Kafka broker at {where} is not the stack recorded in {record.path} "
               f"(cluster id {found}, expected {record.stack_id}): another broker has that port; "
               "start the stack again with `make run`")
    _verified.add(("kafka", where, record.stack_id))


def _quiet_kafka_client() -> None:
    # aiokafka logs each failed connection attempt at ERROR; a command reports the failure once, itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def _run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    # Callable from a command's async code too: a running loop cannot nest asyncio.run.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
