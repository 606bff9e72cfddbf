"""Keeping PINs and account numbers out of free text that crosses the contract.

The contract keeps PINs and account numbers in their own fields (only PortSubmitted carries
them), but free text from carriers and people may still quote them ("PIN 4412 does not match
account ACC-991"). Two masks, used where such text enters a service: the values a service
knows (a request's own PINs and account number, in any script), also written with spaces or
punctuation between their characters ("44 12", "ACC/991") or in full-width forms, or exactly as
given when they are mostly punctuation ("#!*&^%"); and any value quoted
after a word that names a secret.

Every pattern here runs in time linear in the text: the text is hostile and as long as the
contract allows, and a pattern that backtracks over a run of spaces held an event loop for a
minute on 2,000 characters.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

REDACTED = "[redacted]"

# The word, then (atomic: matched one way only, never re-split) what may stand between it and the
# value: "number" / "no." / "#", "is" / "was", a colon, spaces.
_SECRET_AFTER_WORD = re.compile(
    r"(?P<word>\b(?:pin|passcode|password|security\s+code|account|acct\.?)"
    r"(?>(?:\s*(?:number|no\.?|num\.?|\#))?(?:\s+(?:is|was|of|given))?\s*[:#=]?\s*))"
    r"(?P<value>(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{2,})",
    re.IGNORECASE,
)
# A letter or a digit of any script ("пароль" is a PIN too), and anything else.
_ALNUM, _NOT_ALNUM = r"[^\W_]", r"[\W_]"
# Between a known value's characters: up to three of anything but a letter or a digit.
_BETWEEN = _NOT_ALNUM + "{0,3}"
# A known value shorter than this (in letters and digits) is masked only as a token of its own:
# shorter ones are everyday words and numbers too.
_SHORT = 4


def redact_secrets(text: str | None, known: Iterable[str | None] = (), *, limit: int | None = None) -> str | None:
    """The text with each known secret value masked, and any value quoted after PIN / passcode /
    account number masked. A known value inside a longer run of digits stays (a PIN 4412 inside
    +14155554412 is a phone number). `limit`: the field's length, which a mask (longer than
    what it hides) may otherwise push the text past; the end is then cut, with an ellipsis."""
    if not text:
        return text
    masked = _redacted(text, known)
    return masked if limit is None or len(masked) <= limit else masked[:limit - 1] + "\u2026"


def _redacted(text: str, known: Iterable[str | None]) -> str:
    text = unicodedata.normalize("NFKC", text)
    values = _known_values(frozenset(value for value in known if value))
    if values is not None:
        text = values.sub(REDACTED, text)
    return _SECRET_AFTER_WORD.sub(lambda m: m.group("word") + REDACTED, text)


@functools.lru_cache(maxsize=256)  # one request's values serve each of its numbers' texts
def _known_values(known: frozenset[str]) -> re.Pattern[str] | None:
    patterns = [p for p in map(_known, known) if p]
    return re.compile("|".join(patterns), re.IGNORECASE) if patterns else None


def _known(value: str) -> str | None:
    normal = unicodedata.normalize("NFKC", value)
    characters = [c for c in normal if c.isalnum()]
    if len(characters) < 2:
        # Too few letters and digits to match loosely ("#!*&^%", "a!!" are valid PINs): the value
        # exactly as given, never inside a number or a word, and a short one only as a token of
        # its own ("1-" must not cut 1-800-555-0100, nor ".." "2..3"). One character alone, or
        # blanks, cannot be told from the text around them.
        literal = normal.strip()
        if len(literal) < 2:
            return None
        body = re.escape(literal)
        if len(literal) < _SHORT:
            return rf"(?<!\S){body}(?!\S)"
        before = rf"(?<!{_ALNUM})" if literal[0].isalnum() else ""
        after = rf"(?!{_ALNUM})" if literal[-1].isalnum() else ""
        return f"{before}{body}{after}"
    body = _BETWEEN.join(re.escape(c) for c in characters)
    if len(characters) < _SHORT:
        return rf"(?<!{_ALNUM}){body}(?!{_ALNUM})"
    before = r"(?<!\d)" if characters[0].isdigit() else ""
    after = r"(?!\d)" if characters[-1].isdigit() else ""
    return f"{before}{body}{after}"
