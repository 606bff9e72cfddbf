"""The review's rules, one by one: each failure has a stable code and tells the customer how to fix it."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from schemas import ServiceAddress
from workflow.domain.calendar import BusinessCalendar
from workflow.domain.review import (
    bill_failures,
    csr_failures,
    fee_failures,
    is_po_box,
    loa_failures,
    pin_failures,
    port_date_failures,
    review_number,
    same_person,
    service_address_failures,
)

from .builders import CA, INTERNATIONAL, US, US_NUMBER, documents, port_requested

TODAY = date(2027, 2, 1)  # a Monday
US_CALENDAR = BusinessCalendar("US", None, ZoneInfo("America/Los_Angeles"))


@pytest.mark.parametrize("street", [
    "P.O. Box 123", "PO Box 123", "p.o.box 55", "P O Box 9", "POBox 77", "PO BOX 1", "P.O.B. 12", "po  box 4",
    "Post Office Box 12", "post office box 9", "Postal Box 3",
    "Case postale 1234", "CASE POSTALE 12", "Casé Postale 5", "C.P. 1234", "c.p. 88", "CP 1234", "C. P. 6000",
    "C.P.", "Boîte postale 3", "B.P. 45",
])
def test_a_po_box_is_refused_in_its_english_and_french_forms(street):
    assert is_po_box(street)


@pytest.mark.parametrize("street", [
    "1 Market St", "100 Poplar Blvd", "12 Depot Box Rd", "25 Pobeda St", "1000 Rue Sherbrooke O", "4 Capitol Ave",
    "7 Apollo Way", "Suite 4C", "15 Cplex Ave", "1 Bpm Plaza",
])
def test_a_physical_street_address_is_not_mistaken_for_a_po_box(street):
    assert not is_po_box(street)


def test_a_po_box_in_the_second_address_line_fails_the_review_with_its_fix():
    address = ServiceAddress(street="1 Main St", street_2="C.P. 400", city="Laval", state="QC", zip="H7N 1A1",
                             country="CA")
    [failure] = service_address_failures(address)
    assert failure.code == "PO_BOX_ADDRESS"
    assert "physical address" in failure.fix


@pytest.mark.parametrize(("signer", "representative"), [
    ("Ada Lovelace", "Ada Lovelace"), ("ada lovelace", "ADA LOVELACE"), ("  Ada   Lovelace ", "Ada Lovelace"),
    ("Jose Garcia", "José García"), ("FRANÇOIS LÉGER", "francois leger"),
])
def test_the_loa_signer_matches_the_representative_whatever_the_case_spacing_or_accents(signer, representative):
    assert same_person(signer, representative)
    details = port_requested(documents=documents(signer=signer))
    details = details.model_copy(update={"losing_carrier_information": details.losing_carrier_information.model_copy(
        update={"authorized_representative": representative})})
    assert loa_failures(details) == []


def test_an_loa_signed_by_someone_else_or_missing_fails_the_review():
    assert [f.code for f in loa_failures(port_requested(documents=documents(signer="Charles Babbage")))] == \
        ["LOA_SIGNER_MISMATCH"]
    assert [f.code for f in loa_failures(port_requested(documents=[]))] == ["LOA_MISSING"]


def test_a_bill_older_than_the_countrys_limit_fails_and_says_how_recent_it_must_be():
    stale = port_requested(country="CA", documents=documents("CA", bill_dated=date(2026, 12, 31)))
    [failure] = bill_failures(stale, CA, TODAY)
    assert failure.code == "BILL_TOO_OLD"
    assert "30 days" in failure.fix
    fresh = port_requested(country="CA", documents=documents("CA", bill_dated=date(2027, 1, 2)))
    assert bill_failures(fresh, CA, TODAY) == []


def test_a_missing_bill_fails_only_where_the_country_asks_for_one():
    no_bill = port_requested(documents=documents("US"))
    assert [f.code for f in bill_failures(no_bill, CA, TODAY)] == ["BILL_MISSING"]
    assert bill_failures(no_bill, US, TODAY) == []


def test_a_csr_is_required_only_where_the_country_requires_it():
    without = port_requested(country="CA", documents=documents("CA", csr=False))
    assert [f.code for f in csr_failures(without, CA)] == ["CSR_MISSING"]
    assert csr_failures(without, US) == []


def test_pin_and_account_number_are_required_only_where_the_check_says_so():
    neither = port_requested(pins={US_NUMBER: None}, account_number=None)
    assert [f.code for f in pin_failures(neither, US_NUMBER, True)] == ["PIN_MISSING", "ACCOUNT_NUMBER_MISSING"]
    assert pin_failures(neither, US_NUMBER, False) == []
    assert pin_failures(port_requested(), US_NUMBER, True) == []


def test_fees_must_be_acknowledged_where_the_country_charges_them():
    assert [f.code for f in fee_failures(port_requested(fees_acknowledged=False), INTERNATIONAL)] == \
        ["FEES_NOT_ACKNOWLEDGED"]
    assert fee_failures(port_requested(fees_acknowledged=True), INTERNATIONAL) == []
    assert fee_failures(port_requested(fees_acknowledged=False), US) == []


@pytest.mark.parametrize(("requested", "code"), [
    (date(2027, 2, 15), "PORT_DATE_NOT_BUSINESS_DAY"),  # Washington's Birthday
    (date(2027, 2, 6), "PORT_DATE_NOT_BUSINESS_DAY"),   # a Saturday
    (date(2027, 2, 3), "PORT_DATE_TOO_SOON"),           # two business days' notice, three needed
    (date(2027, 2, 4), None),                           # exactly three
    (None, None),                                       # no date asked: the carrier proposes one
])
def test_a_requested_port_date_is_a_business_day_with_the_countrys_minimum_notice(requested, code):
    failures = port_date_failures(requested, US, US_CALENDAR, TODAY)
    assert [f.code for f in failures] == ([code] if code else [])


def test_the_review_reports_every_failure_of_a_number_at_once():
    details = port_requested(country="CA", documents=documents("CA", bill_dated=date(2026, 11, 1), csr=False),
                             address={"street": "Case postale 12", "city": "Québec", "state": "QC", "zip": "G1R 4S9",
                                      "country": "CA"})
    calendar = BusinessCalendar("CA", "QC", ZoneInfo("America/Toronto"))
    failures = review_number(details, details.phone_numbers[0].phone_number, requirements=CA,
                             pin_and_account_number_required=False, calendar=calendar, today=TODAY)
    assert [f.code for f in failures] == ["PO_BOX_ADDRESS", "BILL_TOO_OLD", "CSR_MISSING"]
    assert all(f.fix.endswith(".") for f in failures)
