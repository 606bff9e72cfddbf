"""Keeping PINs and account numbers out of free text that crosses the contract.

The contract keeps PINs and account numbers in their own fields (only PortSubmitted carries
them), but free text from carriers and people may still quote them ("PIN 4412 does not match
account ACC-991"). Two masks, used where such text enters a service: the values a service
knows (a request's own PINs and account number), wherever they appear as a whole token, and
any value quoted after a word that names a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"

_SECRET_AFTER_WORD = re.compile(
    r"(?P<word>\b(?:pin|passcode|password|security\s+code|account\s*(?:number|no\.?|num\.?|#)?|acct\.?\s*(?:number|no\.?|#)?)"
    r"(?:\s+(?:is|was|of|given))?\s*[:#=]?\s*)"
    r"(?P<value>(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{2,})",
    re.IGNORECASE,
)


def redact_secrets(text: str | None, known: Iterable[str | None] = ()) -> str | None:
    """The text with each known secret value masked wherever it stands as a token of its own
    (not inside a longer run of letters and digits: a PIN 4412 inside +14155554412 stays), and
    any value quoted after PIN / passcode / account number masked."""
    if not text:
        return text
    values = sorted({v.strip() for v in known if v and v.strip()}, key=len, reverse=True)
    if values:
        alternatives = "|".join(re.escape(v) for v in values)
        text = re.sub(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", REDACTED, text, flags=re.IGNORECASE)
    return _SECRET_AFTER_WORD.sub(lambda m: m.group("word") + REDACTED, text)
