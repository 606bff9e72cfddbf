"""Why a number was refused, and the one sentence that tells the customer how to fix it.

The sentences live in `templates/rejection_fixes.yaml`, which ops edit like the templates;
`FixAdvice` is what the domain reads from it. A code without a sentence (a review reason
the workflow adds later) gets the default sentence, and the workflow's own reason text is
always shown next to it, so the customer is never left without a way forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.secrets_in_text import redact_secrets

# Free text comes from carriers and people: see schemas.secrets_in_text.


@dataclass(frozen=True)
class FixAdvice:
    """Reason code (a carrier's, a portability code's name or number, a review code) to sentence."""

    sentences: Mapping[str, str]
    default: str

    def for_code(self, code: str | None) -> str:
        return self.known(code) or self.default

    def known(self, code: str | None) -> str | None:
        return self.sentences.get(code.strip().upper()) if code else None


@dataclass(frozen=True)
class Refusal:
    """One refused number, as the e-mail shows it."""

    phone_number: str | None
    reason_code: str | None
    reason: str | None
    fix: str


def refusal(phone_number: str | None, code: str | None, reason: str | None, advice: FixAdvice) -> Refusal:
    """A code with its own sentence: the reason as given, then that sentence. A code without
    one (the workflow's review codes): the workflow's text already says how to fix it, so it
    is the fix; with no text either, the default sentence."""
    reason = redact_secrets(reason)
    sentence = advice.known(code)
    if sentence is None and reason:
        return Refusal(phone_number, code, None, reason)
    return Refusal(phone_number, code, reason, sentence or advice.default)
