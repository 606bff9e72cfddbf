"""Encryption at rest for stored copies of whole events and other secrets (PIN and account number).

Dead letters, sealed outbox rows (their copies, redrives, PortSubmitted), the workflow's
`secrets` and its parked events' originals may hold PINs and account numbers. They are sealed
under the keys of DATA_ENCRYPTION_KEYS: comma-separated, newest first, each a Fernet-format key
(32 random bytes, url-safe base64; `generate_key`). New data is sealed with the newest key; any
listed key opens old data, so a key is rotated by prepending a new one and dropping the old one
once the retention period has passed (nothing older is kept).

Format: AES-256-GCM-SIV (`cryptography`'s AESGCMSIV, RFC 8452). A token is
    b"\x01" (format marker) + 12-byte random nonce (os.urandom) + ciphertext + 16-byte tag,
with the marker as associated data, so a token cannot be relabelled as another format. The
AES key is not the configured key itself: it is derived from each configured key's 32 bytes
with HKDF-SHA256 (no salt: the input is already uniformly random) and the fixed info
b"porting-platform sealing aes-256-gcm-siv v1", once, when the Sealer is made. A changed format
takes a new marker and a new info. GCM-SIV rather than GCM because keys are rotated by hand, not
by count: with random 96-bit nonces, plain GCM must stay under 2**32 values a key (about a week
of the throughput target, several seals a request), and a repeated nonce there gives away the
authentication key; under GCM-SIV a repeat only shows that two equal values are equal.

Why not Fernet (AES-128-CBC, HMAC-SHA256, base64) as before: it cost about 6.5 us to seal and
8.5 us to open a 600-byte value, several times per port request in the workflow (PIN and
account number at rest, sealed outbox rows, dead letters): about 7% of its CPU under load.
AES-GCM-SIV does each in about 2.5 us, and its tokens are smaller (raw bytes, no base64).

Fernet tokens sealed by earlier versions still open: they are url-safe base64 text, always
beginning b"gAAAAA", never with the marker, and anything without the marker is opened with
Fernet (MultiFernet: each configured key, newest first) under the same keys. Whatever fails,
wrong key, damaged or truncated, in either format, raises SealedDataUnreadable.

Upgrading instances one at a time, or rolling back: a version before this one opens only
Fernet tokens, so SEALING_FORMAT=fernet keeps sealing the old way (while still opening both)
until no older instance runs (or while a rollback stays possible); then the default.
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LOCAL_KEY_FILE = "data-encryption.key"

# The first byte of every AES-GCM-SIV token; a Fernet token's first byte is always b"g" (version 0x80).
_MARKER = b"\x01"
_HKDF_INFO = b"porting-platform sealing aes-256-gcm-siv v1"
SEALING_FORMATS = ("aes-gcm-siv", "fernet")
_NONCE_BYTES = 12
_TAG_BYTES = 16
_UNREADABLE = ("sealed data cannot be opened with the configured DATA_ENCRYPTION_KEYS "
               "(sealed under a key since removed, or damaged)")


class SealingKeyMissing(RuntimeError):
    """No usable key: the service must not start, or it would keep secrets in clear."""


class SealedDataUnreadable(RuntimeError):
    """Sealed with a key that is not configured (any more), or damaged."""


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


class Sealer:
    def __init__(self, keys: Sequence[str], seal_with: str = "aes-gcm-siv") -> None:
        if seal_with not in SEALING_FORMATS:
            raise ValueError(f"SEALING_FORMAT must be one of {', '.join(SEALING_FORMATS)}, not {seal_with!r}")
        if not keys:
            raise SealingKeyMissing(
                "no data encryption key: set DATA_ENCRYPTION_KEYS to one or more Fernet keys, newest first "
                "(make one with: python -c 'from porting_runtime.sealing import generate_key; print(generate_key())')"
            )
        fernets, aeads = [], []
        for position, key in enumerate(keys, start=1):
            try:
                encoded = key.strip().encode("ascii")
                fernets.append(Fernet(encoded))  # checks the form: 32 bytes, url-safe base64
            except (ValueError, UnicodeError):
                # Never echo the key itself: it is the secret.
                raise SealingKeyMissing(
                    f"DATA_ENCRYPTION_KEYS: key number {position} is not a Fernet key "
                    "(32 bytes, url-safe base64)") from None
            # The same 32 bytes Fernet decoded; the AES key is derived from them, never them.
            derived = HKDF(algorithm=SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
                base64.urlsafe_b64decode(encoded))
            aeads.append(AESGCMSIV(derived))
        self._fernet = MultiFernet(fernets)  # opens tokens sealed by earlier versions
        self._aeads = tuple(aeads)  # newest first
        self._newest = aeads[0]
        self._with_fernet = seal_with == "fernet"

    @classmethod
    def from_settings(cls, settings: Any) -> Sealer:
        """From `ServiceSettings.data_encryption_keys` and `sealing_format`; raises
        SealingKeyMissing when no key is set."""
        secret = settings.data_encryption_keys
        return cls.from_text(secret.get_secret_value() if secret is not None else None,
                             getattr(settings, "sealing_format", "aes-gcm-siv"))

    @classmethod
    def from_text(cls, keys: str | None, seal_with: str = "aes-gcm-siv") -> Sealer:
        """From DATA_ENCRYPTION_KEYS' form: comma-separated, newest first."""
        return cls([k for k in (keys or "").split(",") if k.strip()], seal_with)

    def seal(self, data: bytes) -> bytes:
        """`data` sealed under the newest key: marker, nonce, ciphertext and tag (AES-256-GCM-SIV),
        or a Fernet token while SEALING_FORMAT=fernet."""
        if self._with_fernet:
            return self._fernet.encrypt(data)
        nonce = os.urandom(_NONCE_BYTES)
        return _MARKER + nonce + self._newest.encrypt(nonce, data, _MARKER)

    def unseal(self, token: bytes) -> bytes:
        """The data of a token from `seal`, or of a Fernet token from an earlier version."""
        token = bytes(token)  # a memoryview or bytearray too
        if token[:1] == _MARKER:
            if len(token) >= 1 + _NONCE_BYTES + _TAG_BYTES:
                nonce, sealed = token[1:1 + _NONCE_BYTES], token[1 + _NONCE_BYTES:]
                for aead in self._aeads:
                    try:
                        return aead.decrypt(nonce, sealed, _MARKER)
                    except InvalidTag:
                        continue
        else:
            try:
                return self._fernet.decrypt(token)
            except InvalidToken:
                pass
        raise SealedDataUnreadable(_UNREADABLE)

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
