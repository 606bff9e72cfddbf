"""A contract phone number (E.164) as libphonenumber's PhoneNumber, for the services' rules that
ask libphonenumber about it (its region, its time zone).

A canonical North American number (+1 and ten digits) is built from its digits, not parsed:
parsing is most of the cost of such a question (~10 of ~18 us), asked for every new request's
numbers. A North American area code starts 2-9, and such a number's national number is its ten
digits (libphonenumber's parse gives the same; a leading 0 it keeps apart, as an Italian-style
leading zero). Anything else is parsed."""

from __future__ import annotations

import phonenumbers


def as_phone_number(e164: str) -> phonenumbers.PhoneNumber | None:
    """None when libphonenumber cannot read it as a number at all."""
    digits = e164[2:]
    if e164.startswith("+1") and len(digits) == 10 and digits.isascii() and digits.isdigit() \
            and digits[0] not in "01":
        return phonenumbers.PhoneNumber(country_code=1, national_number=int(digits))
    try:
        return phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
