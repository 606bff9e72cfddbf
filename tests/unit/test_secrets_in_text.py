"""Free text that crosses the contract never carries a PIN or an account number it quotes."""

from __future__ import annotations

import pytest

from schemas.secrets_in_text import redact_secrets


@pytest.mark.parametrize(("text", "expected"), [
    ("PIN 4412 does not match", "PIN [redacted] does not match"),
    ("wrong pin: 99887", "wrong pin: [redacted]"),
    ("account number is ACC-991-22 on file", "account number is [redacted] on file"),
    ("Acct # 55120 invalid", "Acct # [redacted] invalid"),
    ("PIN 4412 does not match account ACC-991", "PIN [redacted] does not match account [redacted]"),
    ("The PIN does not match the carrier's records.", "The PIN does not match the carrier's records."),
    ("Address 1 Market St does not match", "Address 1 Market St does not match"),
    ("the account holder's name differs", "the account holder's name differs"),
])
def test_a_value_quoted_after_a_word_naming_a_secret_is_masked(text, expected):
    assert redact_secrets(text) == expected


def test_known_values_are_masked_wherever_they_stand_alone_and_nowhere_inside_a_longer_token():
    text = "Rejected: 4412 / acc-991 given; numbers +14155554412 and ACC-9910 are fine"
    assert redact_secrets(text, ["4412", "ACC-991", None, " "]) == (
        "Rejected: [redacted] / [redacted] given; numbers +14155554412 and ACC-9910 are fine")


def test_text_without_secrets_or_without_text_is_left_as_it_is():
    assert redact_secrets(None, ["4412"]) is None and redact_secrets("", ["4412"]) == ""
    assert redact_secrets("Port date changed.", ["4412"]) == "Port date changed."
