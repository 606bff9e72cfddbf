"""The Portability API's rules, as a table: every reason code and the precedence between them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portability.adapters.coverage_file import CoverageFile
from portability.domain.accounts import AccountHierarchy
from portability.domain.numbers import NumberBlock
from portability.domain.portability import Holding, PortabilityQuestion, PortingFacts, ProvidedDetails, assess
from schemas import CancellationPolicyKind, NumberType, PortabilityReason, PortingTrack

PARENT, TARGET, SIBLING, STRANGER = ("AC" + c * 32 for c in "1234")
REQUEST, OTHER_REQUEST = "KW" + "a" * 32, "KW" + "b" * 32
COVERAGE = CoverageFile().current()
HIERARCHY = AccountHierarchy({PARENT: None, TARGET: PARENT, SIBLING: PARENT, STRANGER: None})
BLOCKS = {
    "1415555": NumberBlock("1415555", "Pacific Wireless", "PW-1", wireless=True, rate_center="SNFC"),
    "1415556": NumberBlock("1415556", "Bay Landline", "BL-1", wireless=False, rate_center="SNFC"),
    "1415557": NumberBlock("1415557", "Blocked Carrier", "BLOCKED", wireless=False),
}
FULL = ProvidedDetails(pin=True, account_number=True, address=True)


def check(number: str, *, authorized: bool = True, holdings: dict | None = None, blocks: dict | None = None,
          provided: ProvidedDetails = FULL, coverage=COVERAGE, request: str | None = REQUEST):
    facts = PortingFacts(coverage, HIERARCHY, holdings or {}, BLOCKS if blocks is None else blocks)
    return assess(PortabilityQuestion(number, TARGET, authorized, provided, request), facts)


@pytest.mark.parametrize("number", ["4155552671", "+1 415 555 2671", "+1-415-555-2671", "+15551234567",
                                    "+1415555", "+0123456789", "++14155552671", "+1415555267a"])
def test_anything_not_strict_e164_or_not_valid_for_its_country_is_an_invalid_phone_number(number):
    answer = check(number)
    assert (answer.portable, answer.not_portable_reason_code) == (False, PortabilityReason.INVALID_PHONE_NUMBER)
    assert answer.not_portable_reason == "INVALID_PHONE_NUMBER"
    assert answer.number_type is NumberType.UNKNOWN
    assert answer.phone_number == number, "kept as given"


def test_a_caller_who_may_not_act_for_the_target_account_is_unauthorized_but_still_told_the_numbers_type():
    answer = check("+14155562671", authorized=False)
    assert answer.not_portable_reason_code is PortabilityReason.UNAUTHORIZED
    assert (answer.number_type, answer.country) == (NumberType.LOCAL, "US")


@pytest.mark.parametrize(("holding", "code", "account_sid"), [
    (Holding(TARGET), PortabilityReason.ALREADY_IN_THE_TARGET_ACCOUNT, TARGET),
    (Holding(TARGET, OTHER_REQUEST), PortabilityReason.ALREADY_IN_THE_TARGET_ACCOUNT, TARGET),
    (Holding(SIBLING), PortabilityReason.ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS, SIBLING),
    (Holding(PARENT, OTHER_REQUEST), PortabilityReason.ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS, PARENT),
    (Holding(STRANGER), PortabilityReason.ALREADY_IN_TWILIO_DIFFERENT_OWNER, None),
    (Holding("AC" + "9" * 32), PortabilityReason.ALREADY_IN_TWILIO_DIFFERENT_OWNER, None),
])
def test_a_number_held_or_being_ported_answers_who_has_it_without_revealing_another_owner(holding, code, account_sid):
    answer = check("+14155562671", holdings={"+14155562671": holding})
    assert (answer.not_portable_reason_code, answer.account_sid) == (code, account_sid)
    assert answer.not_portable_reason == code.name


def test_a_requests_own_reservation_does_not_count_against_its_resubmission():
    answer = check("+14155562671", holdings={"+14155562671": Holding(TARGET, REQUEST)})
    assert answer.portable


@pytest.mark.parametrize(("number", "why"), [
    ("+573001234567", "Colombia is not covered"),
    ("+861012345678", "China is not covered"),
    ("+80012345678", "a non-geographic number has no country"),
])
def test_a_country_type_carrier_or_rate_center_not_covered_is_unsupported(number, why):
    answer = check(number)
    assert answer.not_portable_reason_code is PortabilityReason.UNSUPPORTED, why
    assert answer.requirements is None


def _us_coverage(**changes):
    us = COVERAGE.countries["US"].model_copy(update=changes)
    return COVERAGE.model_copy(update={"countries": {**COVERAGE.countries, "US": us}})


def test_a_number_on_an_unsupported_carrier_is_unsupported():
    coverage = _us_coverage(unsupported_carriers=["BLOCKED"])
    assert check("+14155572671", coverage=coverage).not_portable_reason_code is PortabilityReason.UNSUPPORTED
    assert check("+14155562671", coverage=coverage).portable


def test_a_number_in_an_unsupported_rate_center_is_unsupported():
    coverage = _us_coverage(unsupported_rate_centers=["SNFC"])
    assert check("+14155562671", coverage=coverage).not_portable_reason_code is PortabilityReason.UNSUPPORTED
    assert check("+12015550123", coverage=coverage).portable


@pytest.mark.parametrize(("number", "country", "number_type"), [
    ("+18002752273", "US", NumberType.TOLL_FREE),
    ("+18885552222", "US", NumberType.TOLL_FREE),
    ("+442079460958", "GB", NumberType.LOCAL),
    ("+4930123456", "DE", NumberType.LOCAL),
    ("+61412345678", "AU", NumberType.MOBILE),
])
def test_toll_free_and_international_numbers_are_manual_porting_and_carry_the_manual_track(number, country, number_type):
    answer = check(number)
    assert answer.not_portable_reason_code is PortabilityReason.MANUAL_PORTING_AVAILABLE
    assert (answer.country, answer.number_type) == (country, number_type)
    assert answer.requirements.track is PortingTrack.MANUAL


def test_every_answer_of_one_batch_carries_its_own_countrys_requirements_for_its_track():
    facts = PortingFacts(COVERAGE, HIERARCHY, {}, BLOCKS)  # one batch: built once per country and track
    expected = {"+12015550123": ("US", PortingTrack.API), "+18002752273": ("US", PortingTrack.MANUAL),
                "+442079460958": ("GB", PortingTrack.MANUAL), "+16135550123": ("CA", PortingTrack.API),
                "+14155562671": ("US", PortingTrack.API), "+14165550123": ("CA", PortingTrack.API)}
    for number, (country, track) in expected.items():
        answer = assess(PortabilityQuestion(number, TARGET, True, FULL, REQUEST), facts)
        assert answer.requirements == COVERAGE.countries[country].requirements(track), number
    assert check("+16135550123").requirements.fee_per_number == Decimal("25.00")
    later_notice = _us_coverage(min_notice_business_days=9)
    assert check("+12015550123", coverage=later_notice).requirements.min_notice_business_days == 9


def test_international_requirements_ask_for_fee_acknowledgement_and_follow_the_international_cancellation_rule():
    requirements = check("+442079460958").requirements
    assert requirements.fee_acknowledgement_required
    assert requirements.cancellation_policy is CancellationPolicyKind.INTERNATIONAL
    assert requirements.carrier_sla_business_days > 5


def test_a_wireless_block_makes_a_north_american_number_mobile_and_mobile_needs_a_pin_and_account_number():
    without_pin = check("+14155552671", provided=ProvidedDetails(pin=False, account_number=True, address=True))
    assert without_pin.number_type is NumberType.MOBILE
    assert without_pin.pin_and_account_number_required
    assert without_pin.not_portable_reason_code is PortabilityReason.MISSING_REQUIRED_FIELDS
    without_account = check("+14155552671", provided=ProvidedDetails(pin=True, account_number=False, address=True))
    assert without_account.not_portable_reason_code is PortabilityReason.MISSING_REQUIRED_FIELDS
    complete = check("+14155552671")
    assert complete.portable and complete.requirements.track is PortingTrack.API


def test_a_check_that_cannot_give_a_pin_reports_that_one_is_required_instead_of_refusing():
    answer = check("+14155552671", provided=ProvidedDetails(address=True))
    assert answer.portable and answer.pin_and_account_number_required


def test_without_a_matching_block_a_north_american_number_is_local():
    answer = check("+12015550123", blocks={})
    assert (answer.number_type, answer.portable, answer.pin_and_account_number_required) == (NumberType.LOCAL, True, False)
    assert check("+14155562671").number_type is NumberType.LOCAL, "a landline block keeps it local"


def test_canada_needs_a_service_address_and_asks_for_a_recent_bill_a_csr_and_a_per_number_fee():
    assert check("+16135552671", provided=ProvidedDetails(address=False)).not_portable_reason_code is \
        PortabilityReason.MISSING_REQUIRED_FIELDS
    answer = check("+16135552671", provided=ProvidedDetails(address=True))
    assert answer.portable and answer.country == "CA"
    requirements = answer.requirements
    assert requirements.bill_max_age_days == 30 and requirements.customer_service_record_required
    assert (requirements.fee_per_number, requirements.fee_currency) == (Decimal("25.00"), "CAD")
    assert requirements.cancellation_policy is CancellationPolicyKind.NORTH_AMERICAN


@pytest.mark.parametrize(("case", "expected"), [
    (dict(number="+1555", authorized=False), PortabilityReason.INVALID_PHONE_NUMBER),
    (dict(number="+14155562671", authorized=False, holdings={"+14155562671": Holding(TARGET)}), PortabilityReason.UNAUTHORIZED),
    (dict(number="+573001234567", holdings={"+573001234567": Holding(STRANGER)}), PortabilityReason.ALREADY_IN_TWILIO_DIFFERENT_OWNER),
    (dict(number="+573001234567", provided=ProvidedDetails(pin=False, account_number=False, address=False)), PortabilityReason.UNSUPPORTED),
    (dict(number="+442079460958", provided=ProvidedDetails(pin=False, account_number=False, address=False)), PortabilityReason.MANUAL_PORTING_AVAILABLE),
])
def test_reasons_follow_the_documented_precedence(case, expected):
    number = case.pop("number")
    assert check(number, **case).not_portable_reason_code is expected


def test_a_portable_number_has_no_reason_and_no_account():
    answer = check("+14155562671")
    assert (answer.portable, answer.not_portable_reason, answer.not_portable_reason_code, answer.account_sid) == \
        (True, None, None, None)
