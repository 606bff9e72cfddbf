"""One strict E.164 rule: ASCII digits, the whole string, one canonical spelling; everywhere a number enters."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from pydantic import TypeAdapter, ValidationError

from portability.domain.accounts import AccountHierarchy
from portability.domain.numbers import NumberBlock, kind_in_region, normalised_e164, parse_e164
from portability.domain.portability import Holding, PortabilityQuestion, PortingFacts, assess
from portability.adapters.coverage_file import CoverageFile
from schemas import E164_PATTERN, PhoneNumberE164, PortabilityReason, is_e164

HELD = "+14155550199"
OWNER, TARGET = "AC" + "1" * 32, "AC" + "2" * 32
PYDANTIC_E164 = TypeAdapter(PhoneNumberE164)


def _non_ascii_digits() -> dict[str, int]:
    """Every character besides 0-9 that Unicode gives a digit value: full-width, Arabic-Indic, Devanagari,
    superscripts, circled, mathematical, ... (phonenumbers reads many of them as the ASCII digit)."""
    digits = {}
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        value = unicodedata.digit(character, None)
        if value is not None and not "0" <= character <= "9":
            digits[character] = value
    return digits


NON_ASCII_DIGITS = _non_ascii_digits()


def look_alikes(number: str) -> list[str]:
    """The number with one digit swapped for each character that has the same digit value."""
    variants = []
    for character, value in NON_ASCII_DIGITS.items():
        position = number.rfind(str(value))
        if position > 0:
            variants.append(number[:position] + character + number[position + 1:])
    return variants


def _pydantic_accepts(value: str) -> bool:
    try:
        PYDANTIC_E164.validate_python(value)
    except ValidationError:
        return False
    return True


def test_there_are_hundreds_of_non_ascii_digits_to_try():
    assert len(NON_ASCII_DIGITS) > 700 and len(look_alikes(HELD)) > 300
    assert {"４", "٤", "۴", "४", "⁴", "④", "𝟒"} <= set(NON_ASCII_DIGITS)


def test_no_look_alike_digit_passes_the_rule_in_python_or_in_pydantic():
    passing = [v for v in look_alikes(HELD) if is_e164(v) or parse_e164(v) or normalised_e164(v) or _pydantic_accepts(v)]
    assert passing == []


def test_phonenumbers_itself_would_read_a_full_width_digit_as_the_ascii_one():
    # Why the rule must come first: left to libphonenumber, the look-alike is the held number.
    import phonenumbers

    parsed = phonenumbers.parse("+1４155550199", None)
    assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == HELD


@pytest.mark.parametrize("suffix_or_prefix", [
    (HELD + "\n"), (HELD + "\r\n"), (HELD + "\r"), (HELD + " "), (" " + HELD), (HELD + "\t"), (HELD + "\x00"),
    ("\x00" + HELD), ("\ufeff" + HELD), (HELD + "\u200b"), ("+1415\u200b5550199"), ("\u202e" + HELD),
    ("＋14155550199"), ("﹢14155550199"), ("⁺14155550199"), ("0014155550199"), ("+014155550199"),
    ("+1 415 555 0199"), ("+1-415-555-0199"), ("+1(415)5550199"), ("+1.415.555.0199"), ("++14155550199"),
    ("+1415555019a"), ("+" + "1" * 16), ("+"), (""),
])
def test_whitespace_control_characters_and_other_pluses_around_a_number_are_not_e164(suffix_or_prefix):
    assert not is_e164(suffix_or_prefix)
    assert parse_e164(suffix_or_prefix) is None
    assert not _pydantic_accepts(suffix_or_prefix)


def test_a_number_followed_by_a_newline_would_pass_a_dollar_anchored_match():
    # The trap the rule avoids: `$` matches before a final newline unless the match is a full one.
    import re

    assert re.match(E164_PATTERN, HELD + "\n")
    assert not is_e164(HELD + "\n")


@pytest.mark.parametrize(("alias", "canonical"), [
    ("+4402079460000", "+442079460000"),  # the UK trunk 0 kept after the country code
])
def test_a_second_spelling_of_a_valid_number_is_not_e164(alias, canonical):
    assert normalised_e164(canonical) == canonical
    assert is_e164(alias), "the syntax alone allows it"
    assert parse_e164(alias) is None and normalised_e164(alias) is None


@pytest.mark.parametrize("number", [HELD, "+442079460000", "+390612345678", "+18002752273"])
def test_a_canonical_number_normalises_to_itself(number):
    assert normalised_e164(number) == number
    assert _pydantic_accepts(number)


def _facts() -> PortingFacts:
    return PortingFacts(CoverageFile().current(), AccountHierarchy({OWNER: None, TARGET: None}),
                        {HELD: Holding(OWNER)}, {"1415555": NumberBlock("1415555", "W", "W-1", wireless=True)})


def test_every_look_alike_of_a_held_number_is_invalid_never_portable():
    facts = _facts()
    answers = {v: assess(PortabilityQuestion(v, TARGET, authorized=True), facts) for v in
               [*look_alikes(HELD), HELD + "\n", HELD + "\x00", "+4" + "4" + "02079460000"]}
    assert {a.not_portable_reason_code for a in answers.values()} == {PortabilityReason.INVALID_PHONE_NUMBER}
    assert all(answer.phone_number == given for given, answer in answers.items()), "kept as given"


def test_the_held_number_itself_is_found_held_by_its_normalised_spelling():
    answer = assess(PortabilityQuestion(HELD, TARGET, authorized=True), _facts())
    assert answer.not_portable_reason_code is PortabilityReason.ALREADY_IN_TWILIO_DIFFERENT_OWNER
    assert answer.number_type.value == "MOBILE", "its block was found by the normalised number"


def _numbers_from_every_region() -> list[str]:
    """libphonenumber's example numbers of every region and type, and each one cut short and lengthened."""
    import phonenumbers

    numbers = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                numbers |= {e164, e164[:-1], e164 + "5", e164[:-2] + "00"}
    return sorted(numbers)


def test_a_number_is_valid_exactly_when_libphonenumber_says_it_is_valid_and_it_is_in_canonical_form():
    import phonenumbers

    def reference(number: str) -> bool:
        parsed = phonenumbers.parse(number, None)
        return (is_e164(number) and phonenumbers.is_valid_number(parsed)
                and phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number)

    numbers = _numbers_from_every_region()
    assert len(numbers) > 3000
    assert [n for n in numbers if (parse_e164(n) is not None) != reference(n)] == []
    assert "+67210660" in numbers and parse_e164("+67210660") is None, "Norfolk Island's canonical form is +672310660"


def test_the_country_is_libphonenumbers_region_and_none_for_non_geographic_numbers():
    import phonenumbers

    for number in [n for n in _numbers_from_every_region() if parse_e164(n)]:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
        assert parse_e164(number).region == (None if region == "001" else region)


def test_the_type_given_the_region_is_libphonenumbers_number_type():
    # kind_in_region takes number_type's steps after its region lookup, so the region is looked up once.
    import phonenumbers

    differing = []
    for number in _numbers_from_every_region():
        parsed = phonenumbers.parse(number, None)
        if kind_in_region(parsed, phonenumbers.region_code_for_number(parsed)) != phonenumbers.number_type(parsed):
            differing.append(number)
    assert differing == []
    assert all(parse_e164(n).kind == phonenumbers.number_type(phonenumbers.parse(n, None))
               for n in _numbers_from_every_region() if parse_e164(n))
