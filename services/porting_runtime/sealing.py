"""Encryption at rest for stored copies of whole events (dead letters and their outbox rows).

Those copies may hold PINs and account numbers. They are sealed with Fernet (AES-128-CBC and
HMAC-SHA256, from `cryptography`) under the keys of DATA_ENCRYPTION_KEYS: comma-separated,
newest first. New data is sealed with the newest key; any listed key opens old data, so a key
is rotated by prepending a new one and dropping the old one once the retention period has
passed (nothing older is kept).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

LOCAL_KEY_FILE = "data-encryption.key"


class SealingKeyMissing(RuntimeError):
    """No usable key: the service must not start, or it would keep secrets in clear."""


class SealedDataUnreadable(RuntimeError):
    """Sealed with a key that is not configured (any more), or damaged."""


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


class Sealer:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SealingKeyMissing(
                "no data encryption key: set DATA_ENCRYPTION_KEYS to one or more Fernet keys, newest first "
                "(make one with: python -c 'from porting_runtime.sealing import generate_key; print(generate_key())')"
            )
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, UnicodeError):
                # Never echo the key itself: it is the secret.
                raise SealingKeyMissing(
                    f"DATA_ENCRYPTION_KEYS: key number {position} is not a Fernet key "
                    "(32 bytes, url-safe base64)") from None
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, settings: Any) -> Sealer:
        """From `ServiceSettings.data_encryption_keys`; raises SealingKeyMissing when unset."""
        secret = settings.data_encryption_keys
        return cls.from_text(secret.get_secret_value() if secret is not None else None)

    @classmethod
    def from_text(cls, keys: str | None) -> Sealer:
        """From DATA_ENCRYPTION_KEYS' form: comma-separated, newest first."""
        return cls([k for k in (keys or "").split(",") if k.strip()])

    def seal(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def unseal(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise SealedDataUnreadable(
                "sealed data cannot be opened with the configured DATA_ENCRYPTION_KEYS "
                "(sealed under a key since removed, or damaged)") from None

    def seal_optional(self, data: bytes | None) -> bytes | None:
        return None if data is None else self.seal(data)

    def unseal_optional(self, token: bytes | None) -> bytes | None:
        return None if token is None else self.unseal(token)


def ensure_local_key(data_dir: Path | str) -> str:
    """The local stack's key: read from `data_dir`, or made there once (owner-only) and kept,
    so dead letters sealed before a restart can still be read after it."""
    key = kept_secret(Path(data_dir) / LOCAL_KEY_FILE, generate_key)
    Sealer([key])  # fails clearly on a damaged file instead of at the first dead letter
    return key


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """A local secret read from `path`, or made once, kept there owner-only and read back.

    Written whole to a temporary file beside it and linked into place, so two stacks starting
    together never read a half-written secret: the first link wins and the other reads it."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(make() + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_text(encoding="ascii").strip()
