"""What `porting dead-letters show` lets an operator see without --reveal."""

from __future__ import annotations

import json

from porting_cli.dead_letters import REDACTED, redact_secrets, redacted_body


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


def test_a_dead_letters_topic_copy_has_its_pin_and_account_number_replaced_and_nothing_else_changed():
    import json

    from porting_runtime.secret_fields import without_secret_fields

    original = json.dumps({"port_in_request_sid": "KW1", "phone_numbers": [{"phone_number": "+14155550100", "pin": "4321"}],
                           "losing_carrier_information": {"accountNumber": "ACC-7", "customer_name": "Ada"},
                           "note": "pin"}).encode()
    copied = json.loads(without_secret_fields(original))
    assert copied["phone_numbers"][0] == {"phone_number": "+14155550100", "pin": REDACTED}
    assert copied["losing_carrier_information"] == {"accountNumber": REDACTED, "customer_name": "Ada"}
    assert copied["note"] == "pin" and b"4321" not in without_secret_fields(original)


def test_a_value_without_secret_fields_or_not_json_is_copied_byte_for_byte():
    from porting_runtime.secret_fields import without_secret_fields

    for value in (b'{"a":  1, "b": [2]}', b"\xff\xfe not json", b"[" * 3000, b"", None, b'"pin"'):
        assert without_secret_fields(value) is value


def test_a_value_the_json_encoder_cannot_write_back_is_still_redacted_or_withheld_never_a_failure():
    import sys

    from porting_runtime.secret_fields import WITHHELD, without_secret_fields

    surrogate = without_secret_fields(b'{"pin": "1234", "name": "\\ud800 lone"}')
    assert b"1234" not in surrogate and b"\\ud800" in surrogate
    deep = b'{"pin": "1234", "x": ' + b"[" * (sys.getrecursionlimit() - 50) + b"]" * (sys.getrecursionlimit() - 50) + b"}"
    assert b"1234" not in without_secret_fields(deep)
    assert WITHHELD.startswith(b'"withheld')


def test_a_value_that_is_not_json_but_names_a_secret_field_is_withheld():
    from porting_runtime.secret_fields import WITHHELD, without_secret_fields

    cut_short = b'{"phone_numbers": [{"phone_number": "+14155550100", "pin": "1234"}], "losing_carr'
    assert without_secret_fields(cut_short) == WITHHELD
    assert without_secret_fields(b'{"accountNumber" : "A1", ' + b"[" * 100_000) == WITHHELD
    assert without_secret_fields(b"pin 1234 in plain garbage") == b"pin 1234 in plain garbage"
