"""How `porting` commands find the stack: the record `porting up` writes, the overrides, the refusals.

No server runs here; a server that cannot be reached is a closed local port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from porting_cli.embedded import free_port
from porting_cli.main import app
from porting_cli.stack import LocalStack
from porting_runtime import operator_cli, stack_record
from porting_runtime.stack_record import ServiceEndpoint, StackRecord, StackUnavailable

ACCOUNT = "AC" + "5" * 32
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "port-requested.json"
OVERRIDES = ("PORTING_DATA_DIR", "KAFKA_BOOTSTRAP_SERVERS", "PORTABILITY_DATABASE_URL", "WORKFLOW_DATABASE_URL",
             "DATA_ENCRYPTION_KEYS")


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch, tmp_path):
    """Each test starts where no stack and no override is: an empty working directory."""
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    operator_cli.use_data_dir(None)


def a_record(data_dir: Path, *, pid: int | None = None, stack_id: str = "porting-0123456789abcdef") -> StackRecord:
    return StackRecord(
        stack_id=stack_id, pid=pid or os.getpid(), data_dir=data_dir,
        kafka_bootstrap_servers="127.0.0.1:39092", postgres_host="127.0.0.1", postgres_port=35433,
        admin_database_url="postgresql://postgres:postgres@127.0.0.1:35433/postgres",
        services={"portability": ServiceEndpoint("http://127.0.0.1:38080",
                                                 "postgresql://portability:portability@127.0.0.1:35433/portability")},
        logs=data_dir / "logs", data_encryption_key_file=data_dir / "data-encryption.key",
    )


def an_exited_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300", **(env or {})})


def test_a_record_reads_back_as_written_and_only_its_owner_can_read_it(tmp_path):
    record = a_record(tmp_path / ".porting")
    path = record.write()
    assert path == tmp_path / ".porting" / "stack.json"
    assert path.stat().st_mode & 0o777 == 0o600, "it holds the local passwords"
    assert stack_record.read(tmp_path / ".porting") == record


def test_a_record_of_another_format_is_refused_with_what_to_do(tmp_path):
    (tmp_path / ".porting").mkdir()
    (tmp_path / ".porting" / "stack.json").write_text('{"format": 99}')
    with pytest.raises(StackUnavailable, match="start it again with `make run`"):
        stack_record.read(tmp_path / ".porting")


def test_without_a_record_a_command_says_no_stack_runs_and_how_to_start_one(tmp_path):
    result = invoke("accounts", "add", ACCOUNT, "--token", "t")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"no local stack is running (no {tmp_path / '.porting' / 'stack.json'}): start one with `make run`, "
        "point at one with --data-dir or PORTING_DATA_DIR, or name servers with KAFKA_BOOTSTRAP_SERVERS and "
        "<SERVICE>_DATABASE_URL"]


def test_a_record_whose_porting_up_has_exited_is_refused_as_not_running(tmp_path):
    a_record(tmp_path / ".porting", pid=an_exited_pid()).write()
    result = invoke("dead-letters", "list", "portability")
    assert result.exit_code == 1
    assert "is not running (its `porting up`, pid" in result.stderr
    assert "Traceback" not in result.output


def test_the_record_is_found_from_a_subdirectory_of_where_porting_up_ran(tmp_path, monkeypatch):
    a_record(tmp_path / ".porting").write()
    (tmp_path / "services" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "services" / "deep")
    assert operator_cli.data_dir() == tmp_path / ".porting"
    assert operator_cli.current_stack().kafka_bootstrap_servers == "127.0.0.1:39092"


def test_the_data_dir_flag_wins_over_the_environment_which_wins_over_the_search(tmp_path, monkeypatch):
    a_record(tmp_path / ".porting").write()
    monkeypatch.setenv("PORTING_DATA_DIR", str(tmp_path / "elsewhere"))
    assert operator_cli.data_dir() == tmp_path / "elsewhere"
    operator_cli.use_data_dir(tmp_path / "flagged")
    assert operator_cli.data_dir() == tmp_path / "flagged"


def test_porting_data_dir_flag_points_every_command_at_that_stack(tmp_path):
    a_record(tmp_path / "other", pid=an_exited_pid()).write()
    result = invoke("--data-dir", str(tmp_path / "other"), "check", "+14155552671")
    assert result.exit_code == 1
    assert f"recorded in {tmp_path / 'other' / 'stack.json'} is not running" in result.stderr


def test_service_and_broker_overrides_need_no_record(monkeypatch):
    monkeypatch.setenv("PORTABILITY_DATABASE_URL", "postgresql://p:p@db.example:5432/portability")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    assert operator_cli.database_url_for("portability") == "postgresql://p:p@db.example:5432/portability"
    assert operator_cli.database_url_for("portability", "postgresql://flag/x") == "postgresql://flag/x"
    assert operator_cli.kafka_settings().kafka_bootstrap_servers == "kafka.example:9092"
    with pytest.raises(typer.Exit) as refused:  # WORKFLOW_DATABASE_URL is not set and no stack runs
        operator_cli.database_url_for("workflow")
    assert refused.value.exit_code == 1


def test_a_service_the_stack_does_not_run_is_refused_by_name(tmp_path, capsys):
    a_record(tmp_path / ".porting").write()
    with pytest.raises(typer.Exit) as refused:
        operator_cli.database_url_for("workflow")
    assert refused.value.exit_code == 1
    assert "runs no 'workflow' service (it runs: portability)" in capsys.readouterr().err


def test_the_services_url_comes_from_the_record(tmp_path):
    a_record(tmp_path / ".porting").write()
    assert operator_cli.service_url_for("portability") == "http://127.0.0.1:38080"


def test_the_stacks_data_encryption_key_is_used_unless_the_environment_names_keys(tmp_path, monkeypatch):
    record = a_record(tmp_path / ".porting")
    record.write()
    record.data_encryption_key_file.write_text("local-key\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # no broker check
    assert operator_cli.kafka_settings().data_encryption_keys.get_secret_value() == "local-key"
    monkeypatch.setenv("DATA_ENCRYPTION_KEYS", "their-key")
    assert operator_cli.kafka_settings().data_encryption_keys.get_secret_value() == "their-key"


def test_an_unreachable_database_is_one_line_that_hides_the_password():
    closed = free_port()
    result = invoke("accounts", "add", ACCOUNT, "--token", "t",
                    env={"PORTABILITY_DATABASE_URL": f"postgresql://portability:hunter2@127.0.0.1:{closed}/portability"})
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"cannot use the database at postgresql://portability:***@127.0.0.1:{closed}/portability")
    assert "PORTABILITY_DATABASE_URL names another" in line
    assert "hunter2" not in result.output and "Traceback" not in result.output


def test_an_unreachable_broker_is_one_line_saying_what_to_do():
    closed = free_port()
    result = invoke("publish", "porting.port-requested.v1", str(EXAMPLE),
                    env={"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}"})
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"cannot reach the Kafka broker at 127.0.0.1:{closed}: ")
    assert "KAFKA_BOOTSTRAP_SERVERS names another" in line


def test_removing_a_record_leaves_a_newer_stacks_record_alone(tmp_path):
    old = a_record(tmp_path / ".porting", stack_id="porting-old")
    old.write()
    newer = a_record(tmp_path / ".porting", stack_id="porting-new")
    newer.write()
    old.remove()
    assert stack_record.read(tmp_path / ".porting").stack_id == "porting-new"
    newer.remove()
    assert not (tmp_path / ".porting" / "stack.json").exists()


def test_porting_up_refuses_a_port_another_program_holds_before_starting_anything(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        stack = LocalStack(tmp_path / "stack", kafka_port=free_port(), postgres_port=taken, http_port=free_port())
        with pytest.raises(RuntimeError, match=f"127.0.0.1:{taken}, wanted for PostgreSQL, is taken.*POSTGRES_PORT"):
            stack.start()
    assert not (tmp_path / "stack" / "postgres").exists(), "nothing was started"


def test_porting_up_refuses_a_data_directory_whose_stack_is_running(tmp_path):
    a_record(tmp_path / "stack").write()  # this very process stands for the running `porting up`
    stack = LocalStack(tmp_path / "stack", kafka_port=free_port(), postgres_port=free_port(), http_port=free_port())
    with pytest.raises(RuntimeError, match="a stack is already running from"):
        stack.start()


def test_printed_database_urls_never_show_the_password():
    assert operator_cli.redact("postgresql://u:s3cr@t@h:5/d") == "postgresql://u:***@h:5/d"
    assert operator_cli.redact("postgresql://u@h/d") == "postgresql://u@h/d"


def test_porting_up_refuses_a_mail_port_another_program_holds_such_as_mailpit():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        stack = LocalStack(Path("/nonexistent/stack"), kafka_port=free_port(), postgres_port=free_port(),
                           http_port=free_port(), smtp_port=taken)
        assert "notifier" in [s.name for s in stack.services]
        with pytest.raises(RuntimeError, match=f"{taken}, wanted for the mail catcher, is taken.*SMTP_PORT"):
            stack.start()
