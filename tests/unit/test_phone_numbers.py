"""schemas.phone_numbers: a number as libphonenumber sees it, built or parsed."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import timezone as phone_time_zones

from schemas.phone_numbers import as_phone_number


@pytest.mark.parametrize("e164", [
    "+14155550100", "+14165550123", "+18095550123", "+12025550173", "+10005550100", "+11115550100", "+10415550100",
    "+442079460000", "+33123456789", "+390612345678", "+61291234567", "+1 415 555 0100", "+1415555010",
    "+141555501000",
])
def test_a_number_reads_as_libphonenumber_parses_it_with_the_same_region_and_time_zones(e164):
    built, parsed = as_phone_number(e164), phonenumbers.parse(e164, None)
    assert (built.country_code, built.national_number, built.italian_leading_zero) == (
        parsed.country_code, parsed.national_number, parsed.italian_leading_zero)
    assert phonenumbers.region_code_for_number(built) == phonenumbers.region_code_for_number(parsed)
    assert phone_time_zones.time_zones_for_number(built) == phone_time_zones.time_zones_for_number(parsed)


@pytest.mark.parametrize("text", ["+1٤١٥٥٥٥٠١٠٠", "+1４１５５５５０１００", "", "+", "not a number"])
def test_digits_of_other_scripts_or_no_number_are_left_to_libphonenumbers_parse(text):
    try:
        expected = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        expected = None
    assert as_phone_number(text) == expected
