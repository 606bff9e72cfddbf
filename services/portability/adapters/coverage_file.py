"""Reads the coverage file ops edit, again whenever it changes."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..domain.coverage import Coverage

DEFAULT_COVERAGE_FILE = Path(__file__).resolve().parents[1] / "coverage.yaml"


class CoverageUnavailable(RuntimeError):
    """The coverage file cannot be read or makes no sense: checks answer 22135 until it is fixed."""


class CoverageFile:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or os.environ.get("PORTABILITY_COVERAGE_FILE") or DEFAULT_COVERAGE_FILE)
        self._loaded: tuple[float, Coverage] | None = None

    def current(self) -> Coverage:
        try:
            modified = self.path.stat().st_mtime
        except OSError as error:
            raise CoverageUnavailable(f"coverage file {self.path}: {error.strerror}") from None
        if self._loaded and self._loaded[0] == modified:
            return self._loaded[1]
        try:
            document = yaml.safe_load(self.path.read_text()) or {}
            coverage = Coverage.model_validate({"countries": document.get("countries", {})})
        except (yaml.YAMLError, ValidationError, AttributeError) as error:
            raise CoverageUnavailable(f"coverage file {self.path} is invalid: {error}") from None
        self._loaded = (modified, coverage)
        return coverage
