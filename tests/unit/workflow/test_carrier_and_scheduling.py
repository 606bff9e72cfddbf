"""The losing carrier answers, a port date is scheduled, the number completes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from schemas import (
    AlertKind,
    CarrierNumberResponse,
    CarrierOutcome,
    NumberStatus,
    PortAlertRaised,
    PortStatusChanged,
    RequestStatus,
)
from workflow.domain import HistoryKind, TimerKind

from .builders import CA_NUMBER, NOW, US_NUMBER, US_NUMBER_2, cancel, carrier, rejected, scheduled, submitted_desk


def test_an_acceptance_moves_the_number_to_port_pending_keeping_the_proposed_date():
    desk, request = submitted_desk(US_NUMBER)
    decisions = desk.apply(carrier(request, CarrierNumberResponse(
        phone_number=US_NUMBER, outcome=CarrierOutcome.ACCEPTED, proposed_port_date=date(2027, 3, 4))))
    number = desk.request.number(US_NUMBER)
    assert (number.status, number.proposed_port_date, number.losing_carrier) == (
        NumberStatus.PORT_PENDING, date(2027, 3, 4), "Pacific Bell")
    [change] = decisions.events_of(PortStatusChanged)
    assert change.port_date == date(2027, 3, 4)
    assert decisions.canceled(TimerKind.CARRIER_SLA), "the carrier answered"


def test_a_rejection_puts_the_number_in_port_rejected_with_the_carriers_reason_and_the_request_in_action_required():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    decisions = desk.apply(carrier(request, rejected(US_NUMBER, "INVALID_ACCOUNT_NUMBER", "Account not found")))
    number = desk.request.number(US_NUMBER)
    assert (number.status, number.reason_code, number.reason) == (
        NumberStatus.PORT_REJECTED, "INVALID_ACCOUNT_NUMBER", "Account not found")
    assert desk.request.status is RequestStatus.ACTION_REQUIRED
    assert desk.status_of(US_NUMBER_2) == "port_submitted"
    [expiry] = decisions.scheduled(TimerKind.ACTION_REQUIRED_EXPIRY)
    assert expiry.due_at == NOW.replace(month=3, day=3), "30 days after action_required"
    assert not decisions.canceled(TimerKind.CARRIER_SLA), "the other number still waits for its answer"


def test_a_carriers_reason_quoting_the_requests_pin_and_account_number_reaches_no_event_or_history_with_them():
    # The PIN is 4412 and the account number ACC-991 (builders.port_requested).
    desk, request = submitted_desk(US_NUMBER)
    decisions = desk.apply(carrier(request, rejected(US_NUMBER, "INVALID_PIN",
                                                     "4412 does not match the account on file (acc-991)")))
    assert desk.request.number(US_NUMBER).reason == "[redacted] does not match the account on file ([redacted])"
    # The sids are random hex, which may hold "4412" or "991" by chance: everything but them is read.
    published = " ".join(e.model_dump_json(exclude={"port_in_request_sid", "account_sid"})
                         for e in decisions.events_of(PortStatusChanged))
    assert "[redacted]" in published and "4412" not in published and "991" not in published


def test_a_rejection_reason_as_long_as_the_contract_allows_stays_within_it_once_masked():
    desk, request = submitted_desk(US_NUMBER)
    decisions = desk.apply(carrier(request, rejected(US_NUMBER, "INVALID_PIN", "4412 " * 400)))  # 2,000 characters
    reason = desk.request.number(US_NUMBER).reason
    assert len(reason) == 2000 and "4412" not in reason
    [change] = decisions.events_of(PortStatusChanged)
    PortStatusChanged.model_validate(change.model_dump())


def test_a_rejection_after_an_acceptance_forgets_the_date_the_carrier_had_proposed():
    desk, request = submitted_desk(US_NUMBER)
    desk.apply(carrier(request, CarrierNumberResponse(
        phone_number=US_NUMBER, outcome=CarrierOutcome.ACCEPTED, proposed_port_date=date(2027, 3, 4))))
    desk.apply(carrier(request, rejected(US_NUMBER)))
    assert desk.request.number(US_NUMBER).proposed_port_date is None


def test_port_scheduled_moves_the_numbers_to_scheduled_with_the_date_and_window_in_its_time_zone():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACCEPTED), (US_NUMBER_2, CarrierOutcome.ACCEPTED)))
    decisions = desk.apply(scheduled(request, US_NUMBER, US_NUMBER_2, on=date(2027, 3, 2), start=time(9),
                                     end=time(12), zone="America/New_York"))
    number = desk.request.number(US_NUMBER)
    assert (number.status, number.port_date, number.port_time_range_start, number.port_time_range_end,
            number.time_zone) == (NumberStatus.SCHEDULED, date(2027, 3, 2), time(9), time(12), "America/New_York")
    [change] = decisions.events_of(PortStatusChanged)
    assert (change.port_date, change.port_time_range_start, change.port_time_range_end, change.time_zone) == (
        date(2027, 3, 2), time(9), time(12), "America/New_York")
    [overdue] = decisions.scheduled(TimerKind.PORT_DATE_OVERDUE)
    assert overdue.due_at == datetime(2027, 3, 2, 17, tzinfo=UTC), "noon in New York, the window's end"
    [reminder] = decisions.scheduled(TimerKind.PORT_DATE_REMINDER)
    assert reminder.due_at == datetime(2027, 2, 26, 14, tzinfo=UTC), "two business days before, 09:00 local"


def test_a_schedule_for_a_date_already_passed_raises_the_overdue_alert_at_once():
    desk, request = submitted_desk(US_NUMBER)
    decisions = desk.apply(scheduled(request, US_NUMBER, on=date(2027, 1, 29)))
    [alert] = decisions.events_of(PortAlertRaised)
    assert (alert.alert, alert.phone_numbers) == (AlertKind.PORT_DATE_OVERDUE, [US_NUMBER])
    assert not decisions.scheduled(TimerKind.PORT_DATE_OVERDUE) and not decisions.scheduled(TimerKind.PORT_DATE_REMINDER)


def test_a_new_port_date_moves_the_timers_and_is_announced():
    desk, request = submitted_desk(US_NUMBER)
    desk.apply(scheduled(request, US_NUMBER, on=date(2027, 3, 2)))
    decisions = desk.apply(scheduled(request, US_NUMBER, on=date(2027, 3, 9)))
    [change] = decisions.events_of(PortStatusChanged)
    assert [(c.status_from, c.status_to, c.reason_code) for c in change.phone_numbers] == [
        (NumberStatus.SCHEDULED, NumberStatus.SCHEDULED, "PORT_DATE_CHANGED")]
    assert [t.key.rsplit(":", 1)[1] for t in decisions.canceled(TimerKind.PORT_DATE_OVERDUE)] == ["2027-03-02"]
    assert [t.key.rsplit(":", 1)[1] for t in decisions.scheduled(TimerKind.PORT_DATE_OVERDUE)] == ["2027-03-09"]


def test_activation_completes_each_number_and_the_request_when_all_are_done():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(scheduled(request, US_NUMBER, US_NUMBER_2))
    first = desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACTIVATED)))
    assert desk.request.status is RequestStatus.IN_PROGRESS and desk.status_of(US_NUMBER) == "completed"
    assert not first.canceled(TimerKind.PORT_DATE_OVERDUE), "the other number still waits for its port"
    last = desk.apply(carrier(request, (US_NUMBER_2, CarrierOutcome.ACTIVATED)))
    assert desk.request.status is RequestStatus.COMPLETED
    assert {t.kind for t in last.timers} == {TimerKind.PORT_DATE_OVERDUE, TimerKind.PORT_DATE_REMINDER}


def test_a_canadian_numbers_per_number_fee_is_recorded_at_completion_for_billing():
    desk, request = submitted_desk(CA_NUMBER, country="CA")
    desk.apply(scheduled(request, CA_NUMBER))
    assert not any(d.fees for d in desk.decisions), "nothing is owed before completion"
    decisions = desk.apply(carrier(request, (CA_NUMBER, CarrierOutcome.ACTIVATED)))
    [fee] = decisions.fees
    assert (fee.phone_number, fee.amount, fee.currency, fee.completed_at) == (CA_NUMBER, Decimal("25.00"), "CAD", NOW)
    [change] = decisions.events_of(PortStatusChanged)
    assert (change.phone_numbers[0].fee_per_number, change.phone_numbers[0].fee_currency) == (Decimal("25.00"), "CAD")


def test_a_us_number_owes_no_per_number_fee():
    desk, request = submitted_desk(US_NUMBER)
    assert not desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACTIVATED))).fees


def test_answers_that_make_no_sense_in_the_numbers_state_are_recorded_as_ignored_not_applied():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACTIVATED)))
    decisions = desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACCEPTED), (US_NUMBER_2, CarrierOutcome.CANCELED)))
    assert [(h.phone_number, h.reason_code, h.kind) for h in decisions.history] == [
        (US_NUMBER, "UNEXPECTED_ACCEPTED", HistoryKind.IGNORED), (US_NUMBER_2, "UNEXPECTED_CANCELED", HistoryKind.IGNORED)]
    assert (desk.status_of(US_NUMBER), desk.status_of(US_NUMBER_2)) == ("completed", "port_submitted")
    assert not decisions.publish


def test_a_schedule_for_a_canceled_number_is_ignored():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(cancel(request, US_NUMBER))
    decisions = desk.apply(scheduled(request, US_NUMBER))
    assert [h.reason_code for h in decisions.ignored()] == ["UNEXPECTED_SCHEDULE"]
    assert desk.status_of(US_NUMBER) == "canceled" and not decisions.timers
