"""What each due timer decides: alerts for the ops desk, the routing reminder, expiry."""

from __future__ import annotations

from datetime import date, timedelta

from schemas import AlertKind, CarrierOutcome, NumberStatus, PortAlertRaised, PortStatusChanged, RequestStatus
from workflow.domain import Decisions, HistoryKind, TimerKind

from .builders import (
    NOW,
    US_NUMBER,
    US_NUMBER_2,
    Desk,
    carrier,
    checked,
    port_requested,
    rejected,
    scheduled,
    submitted_desk,
)


def fire(desk: Desk, kind: TimerKind, decisions: Decisions | None = None, *, after: timedelta = timedelta(days=40),
         ) -> Decisions:
    """Fire the timer of this kind the desk's decisions scheduled last, as the runtime would."""
    timers = [t for d in ([decisions] if decisions else desk.decisions) for t in d.scheduled(kind)]
    timer = timers[-1]
    assert timer.data["port_in_request_sid"] == desk.request.port_in_request_sid
    fired = desk.request.timer_fired(kind, timer.data, due_at=timer.due_at, cause_id="timer:1", now=NOW + after)
    desk.decisions.append(fired)
    return fired


def test_a_review_sla_breached_raises_an_alert_for_the_ops_desk_naming_the_numbers_still_in_review():
    desk = Desk()
    desk.apply(port_requested(US_NUMBER))
    decisions = fire(desk, TimerKind.REVIEW_SLA, after=timedelta(days=2))
    [alert] = decisions.events_of(PortAlertRaised)
    assert (alert.alert, alert.phone_numbers, alert.country) == (AlertKind.REVIEW_SLA_BREACHED, [US_NUMBER], "US")
    assert [(h.kind, h.reason_code, h.cause_event_id) for h in decisions.history] == [
        (HistoryKind.NOTE, "REVIEW_SLA_BREACHED", "timer:1")]


def test_a_review_sla_that_fires_after_the_review_decided_raises_nothing():
    desk, request = submitted_desk(US_NUMBER)
    assert not fire(desk, TimerKind.REVIEW_SLA).publish


def test_no_carrier_answer_within_its_sla_raises_an_alert_for_the_numbers_still_waiting():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACCEPTED)))
    [alert] = fire(desk, TimerKind.CARRIER_SLA).events_of(PortAlertRaised)
    assert (alert.alert, alert.phone_numbers) == (AlertKind.CARRIER_SLA_BREACHED, [US_NUMBER_2])
    assert "5 business days" in alert.message


def test_a_port_date_passing_without_activation_raises_the_overdue_alert():
    desk, request = submitted_desk(US_NUMBER)
    desk.apply(scheduled(request, US_NUMBER, on=date(2027, 3, 2)))
    [alert] = fire(desk, TimerKind.PORT_DATE_OVERDUE).events_of(PortAlertRaised)
    assert (alert.alert, alert.phone_numbers) == (AlertKind.PORT_DATE_OVERDUE, [US_NUMBER])


def test_an_overdue_timer_for_a_number_that_activated_meanwhile_raises_nothing():
    desk, request = submitted_desk(US_NUMBER)
    schedule = desk.apply(scheduled(request, US_NUMBER, on=date(2027, 3, 2)))
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACTIVATED)))
    assert not fire(desk, TimerKind.PORT_DATE_OVERDUE, schedule).publish


def test_the_routing_reminder_is_recorded_for_the_numbers_still_scheduled_on_that_date():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(scheduled(request, US_NUMBER, US_NUMBER_2, on=date(2027, 3, 2)))
    desk.apply(scheduled(request, US_NUMBER_2, on=date(2027, 3, 9)))
    decisions = fire(desk, TimerKind.PORT_DATE_REMINDER, desk.decisions[-2])
    [note] = decisions.notes()
    assert note.reason_code == "PORT_DATE_REMINDER" and US_NUMBER in note.reason and US_NUMBER_2 not in note.reason


def test_no_fix_within_30_days_of_action_required_expires_the_request():
    desk, request = submitted_desk(US_NUMBER)
    desk.apply(carrier(request, rejected(US_NUMBER)))
    decisions = fire(desk, TimerKind.ACTION_REQUIRED_EXPIRY)
    assert desk.request.status is RequestStatus.EXPIRED
    [change] = decisions.events_of(PortStatusChanged)
    assert (change.status_from, change.status_to, change.reason_code) == (
        RequestStatus.ACTION_REQUIRED, RequestStatus.EXPIRED, "EXPIRED")
    number = desk.request.number(US_NUMBER)
    assert (number.status, number.awaiting_fix, number.expired) == (NumberStatus.PORT_REJECTED, False, True)

    late_fix = port_requested(US_NUMBER, sid=request.port_in_request_sid, account=request.account_sid, revision=2)
    assert [h.reason_code for h in desk.apply(late_fix).ignored()] == ["NOTHING_TO_RESUBMIT"]


def test_expiry_closes_only_the_rejected_numbers_and_the_others_carry_on():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(carrier(request, rejected(US_NUMBER), (US_NUMBER_2, CarrierOutcome.ACCEPTED)))
    fire(desk, TimerKind.ACTION_REQUIRED_EXPIRY)
    assert desk.request.status is RequestStatus.IN_PROGRESS
    desk.apply(carrier(request, (US_NUMBER_2, CarrierOutcome.ACTIVATED)))
    assert desk.request.status is RequestStatus.COMPLETED


def test_an_expiry_that_fires_after_the_fix_arrived_changes_nothing():
    desk, request = submitted_desk(US_NUMBER)
    desk.apply(carrier(request, rejected(US_NUMBER)))
    fixed = port_requested(US_NUMBER, sid=request.port_in_request_sid, account=request.account_sid, revision=2)
    desk.apply(fixed)
    desk.apply(checked(fixed))
    decisions = fire(desk, TimerKind.ACTION_REQUIRED_EXPIRY, desk.decisions[-3])
    assert not decisions.publish and not decisions.history
    assert desk.status_of(US_NUMBER) == "port_submitted"
