"""Auth tokens are kept only as salted scrypt hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_N, _R, _P = 2**14, 8, 1
# Printable ASCII, bounded: scrypt's HMAC pads a password with NULs ("token\x00" would match "token"),
# and scrypt over a megabyte of "token" would only burn CPU.
_TOKEN = re.compile(r"[\x20-\x7e]{1,256}")


def is_plausible_token(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


def hash_token(token: str) -> str:
    if not is_plausible_token(token):
        raise ValueError("an auth token is 1 to 256 printable ASCII characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def token_matches(token: str, stored: str) -> bool:
    if not is_plausible_token(token):
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(token.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))
