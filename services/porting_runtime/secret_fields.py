"""PIN and account number fields in a JSON document: found at any depth and replaced.

DESIGN 9: a PIN or account number is sent on only in PortSubmitted. A dead letter's copy on
its Kafka topic is redacted with this (the sealed original stays in the database for redrive),
and `porting dead-letters show` uses it to display a body.
"""

from __future__ import annotations

import json
import re
from typing import Any

from schemas.secrets_in_text import REDACTED

# Compared without case, underscores or dashes, so `accountNumber` or `PIN` are caught too.
SECRET_FIELDS = frozenset({"pin", "accountnumber"})
# The same names as a JSON member in bytes that do not parse (a PortRequested cut short).
_NAMES_A_SECRET_FIELD = re.compile(rb'(?i)"(?:pin|account[_-]?number)"\s*:')


def is_secret_field(name: str) -> bool:
    return re.sub(r"[^a-z0-9]", "", name.casefold()) in SECRET_FIELDS


def redact_secret_fields(document: Any) -> bool:
    """Replace the value of every `pin` and `account_number` field, at any depth, in place; True
    when there was one. Iterative, so no nesting a JSON parser accepts can exhaust the stack."""
    found = False
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                if is_secret_field(name):
                    node[name], found = REDACTED, True
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def without_secret_fields(value: bytes | None) -> bytes | None:
    """A record's value with its secret fields redacted, re-serialised; the value as it is when it
    holds none. A value that is not JSON (cut short, too deep, not JSON at all) goes as it is
    unless it names a secret field, when it is withheld: its fields cannot be found to redact."""
    if not value:
        return value
    try:
        document = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return WITHHELD if _NAMES_A_SECRET_FIELD.search(value) else value
    if not redact_secret_fields(document):
        return value
    try:
        # ASCII escapes: a lone surrogate the parser accepted ("\ud800") could not be UTF-8.
        return json.dumps(document, separators=(",", ":")).encode("ascii")
    except (ValueError, RecursionError):  # nesting the encoder cannot take back: withheld, never sent
        return WITHHELD


WITHHELD = b'"withheld: its PIN and account number fields could not be redacted"'
