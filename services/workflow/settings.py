"""The workflow's own settings, read from the environment like the runtime's."""

from __future__ import annotations

from pydantic import Field

from porting_runtime import ServiceSettings


class WorkflowSettings(ServiceSettings):
    # PIN and account number are sealed at rest (Fernet) under DATA_ENCRYPTION_KEYS, the keys the
    # runtime already requires (comma-separated, newest first; `porting up` makes one). Rotating
    # them re-seals nothing: a request's secrets live only until it ends.
    # The port the workflow's /health and /metrics listen on when run alone (`porting up` sets its own).
    http_port: int = Field(default=8081, ge=0, le=65535)
