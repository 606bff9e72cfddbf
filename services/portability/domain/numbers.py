"""What a phone number is: its country and type, from libphonenumber and the number-block table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType

# What number_type does once it has looked the region up: libphonenumber has no public call for the type
# given the region, and number_type would look the region up again (see kind_in_region). The version is
# pinned, and a unit test holds kind_in_region to number_type for every region's example numbers.
from phonenumbers.phonenumberutil import _number_type_helper

from schemas import NumberType, is_e164

NANP_COUNTRY_CODE = 1

_TYPES = {
    PhoneNumberType.FIXED_LINE: NumberType.LOCAL,
    PhoneNumberType.MOBILE: NumberType.MOBILE,
    PhoneNumberType.TOLL_FREE: NumberType.TOLL_FREE,
}


@dataclass(frozen=True)
class NumberBlock:
    """An operator-imported block of numbers: who serves it and whether it is wireless."""

    prefix: str  # E.164 digits without the plus, e.g. "1415555"
    carrier_name: str
    carrier_id: str
    wireless: bool
    rate_center: str | None = None


@dataclass(frozen=True)
class PhoneNumberFacts:
    e164: str
    country: str | None
    number_type: NumberType
    block: NumberBlock | None = None

    @property
    def digits(self) -> str:
        return self.e164[1:]


@dataclass(frozen=True)
class E164Number:
    """A number that is strict E.164, in its one canonical spelling, and valid for its country."""

    e164: str
    country_code: int
    kind: PhoneNumberType  # libphonenumber's type; never UNKNOWN
    region: str | None  # ISO 3166 country; None for non-geographic numbers (+800, +882, ...)


def parse_e164(raw: str) -> E164Number | None:
    """The number when `raw` is strict E.164 in its one canonical spelling and valid for its country;
    None otherwise (the number's 22102). libphonenumber is asked each thing once: this runs for every
    number of every request."""
    if not is_e164(raw):
        return None
    return _parse_e164_syntax(raw)


# A request's numbers come back with each of its status changes (and a number checked over HTTP is often
# requested soon after): the recent ones are kept. Only E.164 syntax reaches it (at most 16 characters),
# and the answers are immutable. Sized for a burst: with 4,096 entries, a backlog of 10,000 new requests
# had pushed each number out before its status changes came back, and each was parsed three times
# (a miss costs ~50 µs, some 50 µs a request in `porting bench --scenario workflow`); 65,536 entries
# take some 10 MB (the answers ~85 bytes each, with their keys).
@lru_cache(maxsize=65_536)
def _parse_e164_syntax(raw: str) -> E164Number | None:
    """parse_e164 of a string already known to be E.164 syntax."""
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    # What is_valid_number itself tests: the number matches one of its region's type patterns.
    kind = kind_in_region(number, region)
    if kind == PhoneNumberType.UNKNOWN:
        return None
    # libphonenumber reads "+4402079460000" as +442079460000: a second spelling of a number would be a
    # second inventory key for it, so only the canonical one is E.164 here.
    if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != raw:
        return None
    # Non-geographic numbers have region "001": no country.
    return E164Number(raw, number.country_code, kind, region if region and region.isalpha() else None)


def kind_in_region(number: phonenumbers.PhoneNumber, region: str | None) -> PhoneNumberType:
    """phonenumbers.number_type(number), given its region_code_for_number: number_type's own steps after
    it looks the region up, so the region (the costly part: a full type match per candidate region of a
    shared country code such as +1) is looked up once, not twice."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(number.country_code, region)
    if metadata is None:
        return PhoneNumberType.UNKNOWN
    return _number_type_helper(phonenumbers.national_significant_number(number), metadata)


def normalised_e164(raw: str) -> str | None:
    """The E.164 number to look up and store, or None when `raw` is not one (see parse_e164)."""
    number = parse_e164(raw)
    return None if number is None else number.e164


def candidate_prefixes(e164: str) -> list[str]:
    """Every prefix a block of this number could be keyed by, longest first."""
    digits = e164.lstrip("+")
    return [digits[:length] for length in range(len(digits), 0, -1)]


def longest_block(e164: str, blocks: Mapping[str, NumberBlock]) -> NumberBlock | None:
    """The block of the longest candidate prefix. Tried one prefix at a time (no list of them built),
    and not at all when a batch's numbers are in no block, the usual case."""
    if not blocks:
        return None
    digits = e164.lstrip("+")
    for length in range(len(digits), 0, -1):
        if (prefix := digits[:length]) in blocks:
            return blocks[prefix]
    return None


def describe(number: E164Number, blocks: Mapping[str, NumberBlock]) -> PhoneNumberFacts:
    """Country and number type. In North America libphonenumber says FIXED_LINE_OR_MOBILE;
    the number's block (found by its normalised E.164) decides, and without one the number is LOCAL."""
    block = longest_block(number.e164, blocks)
    if number.kind in _TYPES:
        number_type = _TYPES[number.kind]
    elif number.kind == PhoneNumberType.FIXED_LINE_OR_MOBILE and number.country_code == NANP_COUNTRY_CODE:
        number_type = NumberType.MOBILE if block and block.wireless else NumberType.LOCAL
    else:
        number_type = NumberType.UNKNOWN
    return PhoneNumberFacts(number.e164, number.region, number_type, block)
