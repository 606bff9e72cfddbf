"""Text taken from a hostile record, made safe to store and to show: valid UTF-8, no NUL or
control characters (escaped as \\xNN), bounded."""

from __future__ import annotations

import re

# Unicode's direction embeddings, overrides and isolates (a character class's body): they make a
# reader see text in another order than it is stored ("Trojan Source").
DIRECTION_CONTROLS = "\u202a-\u202e\u2066-\u2069"
# C0 but tab and newline, DEL, C1, and the Unicode line separators and direction marks and
# controls that can disguise what a terminal shows.
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029{DIRECTION_CONTROLS}]")


def safe_text(text: str, limit: int) -> str:
    # Lone surrogates (from decoding with surrogateescape) cannot be encoded for Postgres.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _UNSAFE.sub(lambda match: f"\\x{ord(match.group()):02x}" if ord(match.group()) < 0x100
                       else f"\\u{ord(match.group()):04x}", text)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} more characters)"
    return text


def visible(text: str) -> str:
    """The text with each of those characters shown as U+FFFD, one for one: for output whose
    layout is already measured (a terminal table), where escaping would change the widths."""
    return _UNSAFE.sub("\ufffd", text)


def safe_bytes_text(data: bytes, limit: int) -> str:
    return safe_text(data.decode("utf-8", "backslashreplace"), limit)


def name_bytes(name: str | bytes) -> bytes:
    """A header name as the bytes it was on the wire, whether the caller kept bytes or str."""
    if isinstance(name, bytes | bytearray | memoryview):
        return bytes(name)
    try:
        return name.encode("utf-8", "surrogateescape")  # undoes a surrogateescape decode
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogatepass")
