"""The workflow's own settings, read from the environment like the runtime's."""

from __future__ import annotations

from porting_runtime import ServiceSettings


class WorkflowSettings(ServiceSettings):
    """PIN and account number are sealed at rest (AES-256-GCM-SIV, `cryptography`; porting_runtime.sealing) under the keys of
    DATA_ENCRYPTION_KEYS (`data_encryption_keys`: comma-separated, newest first), which the
    runtime already requires and `porting up` makes. No re-sealing on rotation is needed:
    a request keeps its secrets only until it ends."""
