"""Kinds, part 3 of the catalogue: numbers, dates and times, ids and values in the data."""

from __future__ import annotations

from dataclasses import replace

from .core import REJECTED_CUSTOMER, Parts, Seeded, carrier, document_of, kind


# --- numbers -------------------------------------------------------------------------------------

def revision_written_as(ids: Seeded, literal: bytes) -> Parts:
    """A valid request whose revision is this JSON literal, byte for byte."""
    parts = document_of(ids)
    return replace(parts, value=parts.value.replace(b'"revision": 1', b'"revision": ' + literal, 1))


@kind("number")
def revision_that_overflows_a_double(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'1e400')


@kind("number")
def revision_that_is_nan(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'NaN')


@kind("number")
def revision_that_is_infinity(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'-Infinity')


@kind("number")
def revision_that_is_zero(ids: Seeded) -> Parts:
    return document_of(ids, revision=0)


@kind("number")
def revision_that_is_a_fraction(ids: Seeded) -> Parts:
    return document_of(ids, revision=1.5)


@kind("number")
def revision_as_a_string(ids: Seeded) -> Parts:
    return document_of(ids, revision="1")


@kind("number")
def revision_with_a_five_thousand_digit_integer(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'1' + b"0" * 5000)


@kind("number")
def revision_of_a_thousand_digit_integer(ids: Seeded) -> Parts:
    """Beyond the integer the workflow keeps a revision in (2^31 - 1): refused by the contract."""
    return revision_written_as(ids, b'1' + b"0" * 1000)


@kind("number", answered=True)
def revision_at_the_largest_the_workflow_keeps(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'2147483647')


@kind("number")
def revision_one_past_the_largest_the_workflow_keeps(ids: Seeded) -> Parts:
    return revision_written_as(ids, b'2147483648')


@kind("number")
def phone_number_as_a_json_number(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": 14155550100}])


@kind("number")
def phone_number_that_is_empty(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": ""}])


@kind("number")
def phone_number_longer_than_any_number(ids: Seeded) -> Parts:
    return document_of(ids, phone_numbers=[{"phone_number": "+1" + "4" * 40}])


# --- dates and times in the data ------------------------------------------------------------------

@kind("date")
def port_date_on_february_30(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_date="2027-02-30")


@kind("date")
def port_date_in_year_zero(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_date="0000-01-01")


@kind("date")
def port_date_with_a_timezone(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_date="2027-03-02+25:00")


@kind("date")
def port_date_in_another_calendar_format(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_date="02/03/2027")


@kind("date")
def document_dated_in_month_13(ids: Seeded) -> Parts:
    return document_of(ids, documents=[{"document_sid": "RD1", "kind": "utility_bill", "dated": "2026-13-01"}])


@kind("date")
def port_window_starting_at_25_oclock(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_time_range_start="25:00:00")


@kind("date")
def port_window_that_ends_before_it_starts(ids: Seeded) -> Parts:
    return document_of(ids, target_port_in_time_range_start="17:00:00", target_port_in_time_range_end="09:00:00")


# --- ids and values of the data -------------------------------------------------------------------

@kind("id")
def request_sid_of_the_wrong_shape(ids: Seeded) -> Parts:
    return document_of(ids, port_in_request_sid="KW" + "z" * 32)


@kind("id")
def request_sid_with_a_nul(ids: Seeded) -> Parts:
    return document_of(ids, port_in_request_sid="KW" + ids.hex(16) + "\x00" + ids.hex(15))


@kind("id")
def account_sid_of_8000_characters(ids: Seeded) -> Parts:
    return document_of(ids, account_sid="AC" + "a" * 8000)


@kind("id")
def customer_type_outside_the_enum(ids: Seeded) -> Parts:
    return document_of(ids, losing_carrier_information=carrier(customer_type="Martian"))


@kind("id")
def country_in_lower_case(ids: Seeded) -> Parts:
    return document_of(ids, losing_carrier_information=carrier(
        address={**carrier()["address"], "country": "us"}))


@kind("id")
def email_with_a_newline(ids: Seeded) -> Parts:
    return document_of(ids, notification_emails=["ada@example.com\nBcc: eve@example.com"])


@kind("rule")
def customer_name_the_service_rejects_by_rule(ids: Seeded) -> Parts:
    return document_of(ids, losing_carrier_information=carrier(customer_name=REJECTED_CUSTOMER))
