"""What `porting dead-letters show` lets an operator see without --reveal."""

from __future__ import annotations

import json

import pytest

from porting_cli.dead_letters import REDACTED, redacted_body
from porting_runtime.secret_fields import redact_secret_fields as redact_secrets


def test_pins_and_account_numbers_are_redacted_at_any_depth_and_in_lists():
    document = {
        "phone_numbers": [{"phone_number": "+14155550100", "pin": "7261"}, {"pin": 1234}],
        "losing_carrier_information": {"account_number": "ACC-99", "address": {"nested": [{"pin": None}]}},
        "pin": {"value": "9876"},
    }
    redacted = redact_secrets(document)
    text = json.dumps(redacted)
    assert "7261" not in text and "1234" not in text and "ACC-99" not in text and "9876" not in text
    assert redacted["phone_numbers"][0] == {"phone_number": "+14155550100", "pin": REDACTED}
    assert redacted["losing_carrier_information"]["address"]["nested"][0]["pin"] == REDACTED


def test_spellings_of_the_secret_fields_other_than_the_contracts_are_redacted_too():
    redacted = redact_secrets({"PIN": "1", "accountNumber": "2", "Account-Number": "3", "pinned": "kept"})
    assert redacted == {"PIN": REDACTED, "accountNumber": REDACTED, "Account-Number": REDACTED, "pinned": "kept"}


def test_a_json_body_is_shown_with_its_other_fields_and_its_secrets_redacted():
    body = redacted_body(b'{"port_in_request_sid": "KW1", "phone_numbers": [{"pin": "7261"}]}')
    assert "KW1" in body and "7261" not in body and REDACTED in body


def test_a_json_body_with_a_repeated_secret_field_shows_neither_copy():
    body = redacted_body(b'{"pin": "1111", "pin": "2222"}')
    assert "1111" not in body and "2222" not in body


def test_a_body_that_is_not_json_is_not_shown_only_its_size():
    body = redacted_body(b'pin=7261; account_number=ACC-99 \xff')
    assert "7261" not in body and "ACC-99" not in body
    assert "33 bytes" in body


def test_json_nested_deeper_than_the_parser_allows_is_not_shown_and_does_not_crash():
    body = redacted_body(b"[" * 100_000 + b"]" * 100_000)
    assert "not shown" in body


def test_deep_but_parseable_nesting_is_redacted_without_exhausting_the_stack():
    deep = '{"pin": "7261"}'
    for _ in range(900):
        deep = f'{{"a": {deep}}}'
    body = redacted_body(deep.encode())
    assert "7261" not in body


def test_a_dead_letters_topic_copy_has_every_pin_and_account_number_value_replaced():
    from porting_runtime.secret_fields import REDACTED_NOTE, topic_copy

    original = json.dumps({"port_in_request_sid": "KW1", "phone_numbers": [{"phone_number": "+14155550100", "pin": "4321"}],
                           "losing_carrier_information": {"accountNumber": "ACC-7", "customer_name": "Ada"},
                           "note": "pin", "Account-Number": "ACC-8", "PIN": "9876", "city": "Montréal"}).encode()
    value, note = topic_copy(original)
    copied = json.loads(value)
    assert copied["phone_numbers"][0] == {"phone_number": "+14155550100", "pin": REDACTED}
    assert copied["losing_carrier_information"] == {"accountNumber": REDACTED, "customer_name": "Ada"}
    assert (copied["note"], copied["Account-Number"], copied["PIN"], copied["city"]) == ("pin", REDACTED, REDACTED, "Montréal")
    assert note == REDACTED_NOTE and not any(secret in value for secret in (b"4321", b"ACC-7", b"ACC-8", b"9876"))
    assert len(value) < len(original), "non-ASCII text stays UTF-8, not six-byte escapes"


@pytest.mark.parametrize("original", [
    b'{"x":{"pin":"1234"},"x":1}',                                      # a repeat overwrites the secret's object
    b'{"losing_carrier_information":{"account_number":"ACC9"},"losing_carrier_information":{}}',
    b'{"x":{"\\u0070in":"1234"},"x":1}',                             # an escaped name
    b'{"pin":"1234","pin":"5678"}',
    '{"pin": "1234"}'.encode("utf-16"),                                  # JSON in UTF-16
    b'{"pin": "1234", "name": "\\ud800 lone"}',                        # a lone surrogate
])
def test_json_with_a_secret_anywhere_in_its_text_never_reaches_the_topic_with_it(original):
    from porting_runtime.secret_fields import topic_copy

    value, note = topic_copy(original)
    assert note is not None and b"1234" not in value and b"ACC9" not in value and b"5678" not in value


@pytest.mark.parametrize("original", [
    b'{"phone_numbers": [{"phone_number": "+14155550100", "pin": "1234"}], "losing_carr',  # cut short
    b"{'pin': '1234'}", b"pin=1234&account_number=ACC9", b"<pin>1234</pin>", b"pin 1234 in plain garbage",
    b'{"\\u0070in":"1234","n":' + b"9" * 5000 + b"}",                  # past Python's int digits
    b'{"accountNumber" : "A1", ' + b"[" * 100_000,
    b"\xff\xfe not json",
])
def test_a_value_that_is_not_json_is_withheld_from_the_topic_as_show_withholds_it(original):
    from porting_runtime.secret_fields import WITHHELD, WITHHELD_NOTE, topic_copy

    assert topic_copy(original) == (WITHHELD, WITHHELD_NOTE)


def test_json_without_secret_fields_goes_byte_for_byte_and_nothing_fails():
    import sys

    from porting_runtime.secret_fields import WITHHELD, topic_copy

    for value in (b'{"a":  1, "b": [2]}', b'"pin"', b"[1e999, NaN]", b"", None):
        assert topic_copy(value) == (value, None)
    depth = sys.getrecursionlimit() - 50
    deep, note = topic_copy(b'{"pin": "1234", "x": ' + b"[" * depth + b"]" * depth + b"}")
    assert note is not None and b"1234" not in deep
    assert WITHHELD.startswith(b'"withheld')


def test_a_header_named_as_a_secret_has_its_value_replaced_on_the_topic():
    from porting_runtime.secret_fields import topic_copy_headers

    copied, found = topic_copy_headers([(b"ce_id", b"e1"), (b"pin", b"1234"), (b"Account-Number", b"A9"),
                                        (b"no-value", None)])
    assert found and copied == [(b"ce_id", b"e1"), (b"pin", REDACTED.encode()), (b"Account-Number", REDACTED.encode()),
                                (b"no-value", None)]
    assert topic_copy_headers([(b"ce_id", b"e1")]) == ([(b"ce_id", b"e1")], False)


@pytest.mark.parametrize("name", [b"pin", b"p\x00in", b"p\xffin", b"P-I-N", b"account\x1b_number", b"Account Number",
                                  b"x-pin", b"X-Account-Number", b"portPin", b"XPin", b"x-accountnumber", b"pin-code"])
def test_show_and_the_topic_copy_redact_the_same_odd_header_names(name):
    """One rule for both: a name `show` escapes for printing (`p\\x00in`) was once printed there
    with its value while the topic's copy redacted it."""
    from datetime import UTC, datetime

    from porting_cli.dead_letters import _described
    from porting_runtime.dead_letters import DeadLetter
    from porting_runtime.secret_fields import topic_copy_headers

    letter = DeadLetter(id=1, consumer="c", source_topic="t", source_partition=0, source_offset=0, event_id=None,
                        error="e", dead_lettered_at=datetime(2027, 1, 1, tzinfo=UTC), redriven_at=None,
                        original_kept=True, original_size=2, published_truncated=False, key=None, value=b"{}",
                        headers=[(name, b"secret-4412")])
    copied, found = topic_copy_headers([(name, b"secret-4412")])
    assert found and b"secret-4412" not in copied[0][1]
    assert "secret-4412" not in "\n".join(_described(letter, reveal=False))
    assert "secret-4412" in "\n".join(_described(letter, reveal=True))


@pytest.mark.parametrize("name", [b"ce_id", b"spin", b"shipping", b"x-pinned", b"account", b"number", b"traceparent"])
def test_header_names_that_only_contain_the_letters_of_a_secret_are_kept(name):
    from porting_runtime.secret_fields import is_secret_header

    assert not is_secret_header(name)
