"""Cancelling a port: US and Canada until scheduled; international later only with notice and fees accepted."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from schemas import CancellationDenied, CancellationPolicyKind, CarrierOutcome, NumberStatus, RequestStatus
from workflow.domain import HistoryKind, TimerKind
from workflow.domain.calendar import BusinessCalendar
from workflow.domain.cancellation import late_cancellation_refusal

from .builders import (
    GB_NUMBER,
    US_NUMBER,
    US_NUMBER_2,
    Desk,
    cancel,
    carrier,
    port_requested,
    rejected,
    scheduled,
    submitted_desk,
)

LONDON = BusinessCalendar("GB", None, ZoneInfo("Europe/London"))
MONDAY = date(2027, 2, 1)


def international_scheduled_on(port_date: date):
    desk, request = submitted_desk(GB_NUMBER, country="GB", fees_acknowledged=True, target=None)
    desk.apply(carrier(request, (GB_NUMBER, CarrierOutcome.ACCEPTED)))
    desk.apply(scheduled(request, GB_NUMBER, on=port_date, zone="Europe/London"))
    return desk, request


def in_review():
    desk, request = Desk(), port_requested(US_NUMBER)
    desk.apply(request)
    return desk, request


def port_pending():
    desk, request = submitted_desk(US_NUMBER)
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACCEPTED)))
    return desk, request


@pytest.mark.parametrize(("start", "status_before"), [
    (in_review, "in_review"), (lambda: submitted_desk(US_NUMBER), "port_submitted"), (port_pending, "port_pending"),
])
def test_a_us_port_can_be_canceled_until_a_date_is_scheduled(start, status_before):
    desk, request = start()
    assert desk.status_of(US_NUMBER) == status_before
    decisions = desk.apply(cancel(request))
    assert desk.status_of(US_NUMBER) == "canceled" and desk.request.status is RequestStatus.CANCELED
    assert not decisions.events_of(CancellationDenied)


def test_a_us_cancel_after_scheduling_is_denied_with_a_cancellation_denied_and_the_port_goes_ahead():
    desk, request = submitted_desk(US_NUMBER)
    desk.apply(scheduled(request, US_NUMBER, on=date(2027, 3, 2)))
    decisions = desk.apply(cancel(request, accepts_fees_and_risk=True))
    [denial] = decisions.events_of(CancellationDenied)
    assert (denial.phone_numbers, denial.reason_code, denial.port_date) == (
        [US_NUMBER], "CANCELLATION_AFTER_SCHEDULING", date(2027, 3, 2))
    assert denial.reason and denial.requested_by == "ada@example.com"
    assert desk.status_of(US_NUMBER) == "scheduled"
    assert [h.kind for h in decisions.history] == [HistoryKind.NOTE]


def test_who_asked_for_a_denied_cancellation_reaches_the_denial_without_the_requests_pin_or_account_number():
    desk, request = submitted_desk(US_NUMBER)  # PIN 4412, account number ACC-991
    desk.apply(scheduled(request, US_NUMBER, on=date(2027, 3, 2)))
    asked = cancel(request).model_copy(update={"requested_by": "Ada Lovelace (PIN 4412, account ACC-991)"})
    [denial] = desk.apply(asked).events_of(CancellationDenied)
    assert denial.requested_by == "Ada Lovelace (PIN [redacted], account [redacted])"


def test_who_asked_stays_within_the_contracts_length_once_masked():
    desk, request = submitted_desk(US_NUMBER)
    desk.apply(scheduled(request, US_NUMBER, on=date(2027, 3, 2)))
    asked = cancel(request).model_copy(update={"requested_by": "4412 " * 40})  # 200 characters
    [denial] = desk.apply(asked).events_of(CancellationDenied)
    assert len(denial.requested_by) == 200 and "4412" not in denial.requested_by
    CancellationDenied.model_validate(denial.model_dump())


def test_an_international_cancel_five_business_days_ahead_with_fees_accepted_goes_canceling_then_canceled():
    desk, request = international_scheduled_on(LONDON.add_business_days(MONDAY, 4))  # Mon..Fri: five days' notice
    decisions = desk.apply(cancel(request, accepts_fees_and_risk=True))
    assert desk.status_of(GB_NUMBER) == "canceling" and not decisions.events_of(CancellationDenied)
    assert decisions.canceled(TimerKind.PORT_DATE_REMINDER) and not decisions.canceled(TimerKind.PORT_DATE_OVERDUE)
    desk.apply(carrier(request, (GB_NUMBER, CarrierOutcome.CANCELED)))
    assert desk.status_of(GB_NUMBER) == "canceled" and desk.request.status is RequestStatus.CANCELED


def test_an_international_cancel_two_business_days_before_the_date_is_denied():
    desk, request = international_scheduled_on(LONDON.add_business_days(MONDAY, 2))
    decisions = desk.apply(cancel(request, accepts_fees_and_risk=True))
    [denial] = decisions.events_of(CancellationDenied)
    assert denial.reason_code == "CANCELLATION_TOO_LATE"
    assert desk.status_of(GB_NUMBER) == "scheduled"


def test_an_international_late_cancel_without_the_fees_and_risk_accepted_is_denied():
    desk, request = international_scheduled_on(LONDON.add_business_days(MONDAY, 10))
    [denial] = desk.apply(cancel(request, accepts_fees_and_risk=False)).events_of(CancellationDenied)
    assert denial.reason_code == "CANCELLATION_FEES_NOT_ACCEPTED"


@pytest.mark.parametrize(("port_date", "refusal"), [
    (date(2027, 2, 4), None),                      # Mon, Tue, Wed: exactly three business days' notice
    (date(2027, 2, 3), "CANCELLATION_TOO_LATE"),   # two
])
def test_the_three_business_day_notice_counts_today_up_to_the_day_before_the_port(port_date, refusal):
    found = late_cancellation_refusal(CancellationPolicyKind.INTERNATIONAL, LONDON, MONDAY, port_date, True)
    assert (found.code if found else None) == refusal


def test_the_notice_skips_a_bank_holiday():
    after_may_day = date(2027, 5, 6)  # Thursday; Monday 3 May is a bank holiday
    assert late_cancellation_refusal(CancellationPolicyKind.INTERNATIONAL, LONDON, date(2027, 5, 3), after_may_day,
                                     True).code == "CANCELLATION_TOO_LATE"


def test_cancelling_some_numbers_leaves_the_others_porting():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(cancel(request, US_NUMBER_2))
    assert (desk.status_of(US_NUMBER), desk.status_of(US_NUMBER_2)) == ("port_submitted", "canceled")
    assert desk.request.status is RequestStatus.IN_PROGRESS


def test_a_cancel_for_a_number_already_ported_is_denied_and_one_already_canceled_is_ignored():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACTIVATED)))
    desk.apply(cancel(request, US_NUMBER_2))
    decisions = desk.apply(cancel(request))
    [denial] = decisions.events_of(CancellationDenied)
    assert (denial.phone_numbers, denial.reason_code) == ([US_NUMBER], "PORT_ALREADY_COMPLETED")
    assert [(h.phone_number, h.reason_code) for h in decisions.ignored()] == [(US_NUMBER_2, "NOTHING_TO_CANCEL")]


def test_a_number_waiting_for_a_fix_can_be_canceled_and_the_expiry_stops():
    desk, request = submitted_desk(US_NUMBER)
    desk.apply(carrier(request, rejected(US_NUMBER)))
    decisions = desk.apply(cancel(request))
    assert desk.request.number(US_NUMBER).status is NumberStatus.CANCELED
    assert desk.request.status is RequestStatus.CANCELED
    assert decisions.canceled(TimerKind.ACTION_REQUIRED_EXPIRY)
