"""`porting up` as a person runs it: on ports other than the defaults, everything up, every command
finding it without flags, an event consumed, Ctrl-C leaves nothing behind and commands then refuse."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from porting_cli.embedded import free_port
from schemas import PortabilityChecked

from ..factories import port_requested_payload

PORTING = [sys.executable, "-m", "porting_cli"]
# Whatever would point commands elsewhere than the stack's record is left out, as on a fresh shell.
OVERRIDES = ("PORTING_DATA_DIR", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "PORTABILITY_DATABASE_URL",
             "WORKFLOW_DATABASE_URL", "NOTIFIER_DATABASE_URL", "DATA_ENCRYPTION_KEYS")


def _porting(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*PORTING, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_porting_up_starts_everything_consumes_a_published_event_and_ctrl_c_leaves_nothing_behind(tmp_path):
    first = free_port(block=6)  # one block: the three services listen on http, http+1 and http+2
    kafka, postgres, smtp, http = first, first + 1, first + 2, first + 3
    env = {**{k: v for k, v in os.environ.items() if k not in OVERRIDES}, "COLUMNS": "300"}
    checkout = tmp_path / "checkout"  # where `make run` runs: the stack keeps .porting here
    (checkout / "services").mkdir(parents=True)
    stack = subprocess.Popen(
        [*PORTING, "up", "--kafka-port", str(kafka), "--postgres-port", str(postgres), "--http-port", str(http),
         "--smtp-port", str(smtp)],
        cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    started = time.monotonic()
    output = ""
    try:
        for line in stack.stdout:  # type: ignore[union-attr]
            output += line
            if "Press Ctrl-C" in line or stack.poll() is not None:
                break
        assert "porting stack up" in output, output
        assert time.monotonic() - started < 30, "up within 30 seconds"
        assert f"127.0.0.1:{kafka}" in output and f"http://127.0.0.1:{http}" in output
        health = httpx.get(f"http://127.0.0.1:{http}/health", timeout=5).json()
        assert health["status"] == "ok" and health["database"] == "ok"
        children = psutil.Process(stack.pid).children(recursive=True)
        assert children, "the broker, PostgreSQL and the services run as child processes"

        assert _role_cannot_open_another_services_database(postgres)
        record = json.loads((checkout / ".porting" / "stack.json").read_text())
        assert record["kafka_bootstrap_servers"] == f"127.0.0.1:{kafka}" and record["postgres_port"] == postgres
        assert record["services"]["portability"]["url"] == f"http://127.0.0.1:{http}"
        assert record["smtp_server"] == f"127.0.0.1:{smtp}", "the notifier's mail catcher"
        assert record["maildir"] == str(checkout / ".porting" / "mail")

        # From a subdirectory, with no flag and no variable, every command finds the stack.
        here = checkout / "services"
        account = "AC" + "5" * 32
        added = _porting("accounts", "add", account, "--token", "t", env=env, cwd=here)
        assert added.returncode == 0, added.stdout + added.stderr
        payload = tmp_path / "request.json"
        payload.write_text(json.dumps(port_requested_payload(account_sid=account,
                                                             phone_numbers=[{"phone_number": "+12015550123"}])))
        published = _porting("publish", "porting.port-requested.v1", str(payload), env=env, cwd=here)
        assert published.returncode == 0, published.stdout + published.stderr
        assert _wait_for_portability_checked(kafka, account)
        for command in (["dead-letters", "list", "portability"], ["mail", "list"]):
            listed = _porting(*command, env=env, cwd=here)
            assert listed.returncode == 0, listed.stdout + listed.stderr

        # A record naming these very ports but another stack: the servers there are not its own.
        impostor = tmp_path / "impostor"
        impostor.mkdir()
        (impostor / "stack.json").write_text(json.dumps({**record, "stack_id": "porting-0000000000000000"}))
        for command in (["accounts", "add", account, "--token", "t"], ["publish", "porting.port-requested.v1", str(payload)]):
            refused = _porting("--data-dir", str(impostor), *command, env=env, cwd=here)
            assert refused.returncode == 1
            assert "is not the stack recorded in" in refused.stderr and "expected porting-0000000000000000" in refused.stderr
            assert "Traceback" not in refused.stdout + refused.stderr
        metrics = httpx.get(f"http://127.0.0.1:{http}/metrics", timeout=5).text
        assert 'porting_events_total{consumer="portability",outcome="handled",topic="porting.port-requested.v1"} 1.0' in metrics

        # A service killed outright is started again; the broker, its messages and the rest stay up.
        [portability] = [c for c in psutil.Process(stack.pid).children(recursive=True)
                         if c.cmdline()[-2:] == ["-m", "portability"]]
        portability.kill()
        portability.wait(10)
        later = "AC" + "6" * 32
        assert _porting("accounts", "add", later, "--token", "t", env=env, cwd=here).returncode == 0
        payload.write_text(json.dumps(port_requested_payload(account_sid=later,
                                                             phone_numbers=[{"phone_number": "+12015550124"}])))
        published = _porting("publish", "porting.port-requested.v1", str(payload), env=env, cwd=here)
        assert published.returncode == 0, published.stdout + published.stderr
        assert _wait_for_portability_checked(kafka, later, timeout=60), "the restarted service consumed it"
        assert stack.poll() is None
        children = psutil.Process(stack.pid).children(recursive=True)
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(60)
    rest = stack.stdout.read()  # type: ignore[union-attr]
    assert "portability exited (-9); started it again" in rest and "nothing left running" in rest
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not (checkout / ".porting" / "stack.json").exists()
    for command in (["accounts", "add", account, "--token", "t"], ["publish", "porting.port-requested.v1", str(payload)],
                    ["dead-letters", "list", "portability"]):
        refused = _porting(*command, env=env, cwd=checkout)
        assert refused.returncode == 1
        assert refused.stderr.strip().startswith("no local stack is running"), refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stdout


def _wait_for_portability_checked(kafka_port: int, account: str, timeout: float = 30.0) -> bool:
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def read() -> bool:
        consumer = AIOKafkaConsumer(PortabilityChecked.event_type, bootstrap_servers=f"127.0.0.1:{kafka_port}",
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    if any(PortabilityChecked.model_validate_json(r.value).account_sid == account for r in records):
                        return True
            return False
        finally:
            await consumer.stop()

    return asyncio.run(read())


def _role_cannot_open_another_services_database(postgres_port: int) -> bool:
    import asyncio

    import asyncpg

    async def attempt() -> bool:
        own = await asyncpg.connect(f"postgresql://portability:portability@127.0.0.1:{postgres_port}/portability")
        await own.close()
        try:
            other = await asyncpg.connect(f"postgresql://portability:portability@127.0.0.1:{postgres_port}/workflow")
        except asyncpg.InsufficientPrivilegeError:
            return True
        await other.close()
        return False

    return asyncio.run(attempt())


def test_porting_up_killed_outright_leaves_no_server_behind_and_the_next_one_starts(tmp_path):
    first = free_port(block=6)
    ports = ["--kafka-port", str(first), "--postgres-port", str(first + 1), "--smtp-port", str(first + 2),
             "--http-port", str(first + 3)]
    env = {**{k: v for k, v in os.environ.items() if k not in OVERRIDES}, "COLUMNS": "300"}
    (tmp_path / "checkout").mkdir()
    for attempt in ("killed", "next"):
        stack = subprocess.Popen([*PORTING, "up", *ports], cwd=tmp_path / "checkout", env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = ""
        for line in stack.stdout:  # type: ignore[union-attr]
            output += line
            if "Press Ctrl-C" in line or stack.poll() is not None:
                break
        assert "porting stack up" in output, output
        children = psutil.Process(stack.pid).children(recursive=True)
        if attempt == "next":
            stack.send_signal(signal.SIGINT)
            stack.wait(60)
            break
        stack.kill()  # no chance to stop anything in order
        stack.wait(10)
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], \
            [" ".join(p.cmdline()[:3]) for p in alive]
