"""PIN and account number fields: found in a JSON document at any depth and replaced.

DESIGN 9: a PIN or account number is sent on only in PortSubmitted. A dead letter's copy on
its Kafka topic goes through `topic_copy` (the sealed original stays in the database for
`show --reveal` and redrive), and `porting dead-letters show` redacts with the same rule.
"""

from __future__ import annotations

import json
import re
from typing import Any

from schemas.secrets_in_text import REDACTED

# Compared without case, underscores or dashes, so `accountNumber` or `PIN` are caught too.
SECRET_FIELDS = frozenset({"pin", "accountnumber"})
WITHHELD = b'"withheld: not JSON whose PIN and account number fields could be found and redacted"'
REDACTED_NOTE = b"pin and account_number values replaced; the kept original has them"
WITHHELD_NOTE = b"the value is withheld: it is not JSON in which a PIN or account number could be found"


def is_secret_field(name: str) -> bool:
    return re.sub(r"[^a-z0-9]", "", name.casefold()) in SECRET_FIELDS


def is_secret_header(name: bytes) -> bool:
    """A header named as a secret. A header name is free text, not the contract's field name: one
    whose letters and digits alone spell a secret field (so a NUL, an invalid byte or an escape
    inside it, `p\\x00in`, hides nothing), or with a word (split at punctuation and camelCase)
    that is one, as `x-pin`, `X-Account-Number` or `portPin`. The dead-letter topic's copy and
    `porting dead-letters show` both ask this: they disagreed once, and a header the topic
    redacted was printed by show; `x-pin` went to the topic as it came."""
    text = name.decode("utf-8", "replace")
    words = re.findall(r"[a-z0-9]+", _CAMEL_HUMP.sub(r"\1\2 ", text).casefold())
    pairs = ("".join(pair) for pair in zip(words, words[1:]))
    return is_secret_field(text) or any(word in SECRET_FIELDS for word in (*words, *pairs))


_CAMEL_HUMP = re.compile(r"([a-z0-9])(?=[A-Z])|([A-Z])(?=[A-Z][a-z])")


def redact_secret_fields(document: Any) -> Any:
    """`document` with the value of every `pin` and `account_number` field, at any depth, replaced
    in place. Iterative, so no nesting a JSON parser accepts can exhaust the stack."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                if is_secret_field(name):
                    node[name] = REDACTED
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return document


def topic_copy(value: bytes | None) -> tuple[bytes | None, bytes | None]:
    """A dead letter's value as its topic may carry it, and the note saying what was changed
    (None: nothing). JSON goes as it came when it holds no secret field, else re-serialised with
    each one's value replaced; secrets are looked for while parsing, so one under a key that a
    later repeat overwrites still counts. Anything else is withheld, as `show` withholds it."""
    if not value:
        return value, None
    found = False

    def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        document = {}
        for name, member in pairs:
            if is_secret_field(name):
                member, found = REDACTED, True
            document[name] = member
        return document

    try:
        document = json.loads(value, object_pairs_hook=members)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return WITHHELD, WITHHELD_NOTE
    if not found:
        return value, None
    try:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode(), REDACTED_NOTE
        except UnicodeEncodeError:  # a lone surrogate the parser accepted ("\ud800"): ASCII escapes
            return json.dumps(document, separators=(",", ":")).encode("ascii"), REDACTED_NOTE
    except (ValueError, RecursionError):  # nesting the encoder cannot take back
        return WITHHELD, WITHHELD_NOTE


def topic_copy_headers(headers: list[tuple[bytes, bytes | None]]) -> tuple[list[tuple[bytes, bytes | None]], bool]:
    """Headers as the topic may carry them: one named as a secret field has its value replaced,
    as `show` shows it. True when one was."""
    copied, found = [], False
    for name, value in headers:
        if value is not None and is_secret_header(name):
            value, found = REDACTED.encode(), True
        copied.append((name, value))
    return copied, found
