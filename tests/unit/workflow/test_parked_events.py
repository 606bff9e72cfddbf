"""Parked events: watched until their request comes, an alert when it never does, and once it
comes, each one applied, recorded as ignored (superseded), or dead-lettered (invalid)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from schemas import AlertKind, CarrierOutcome, PortAlertRaised, RequestStatus
from workflow.domain import CancelTimer, HistoryKind, PortInRequest, ScheduleTimer, TimerKind, decide
from workflow.domain import parking
from workflow.domain.parking import PARKED_EVENT_ALERT_AFTER, parked_event_overdue, settle, watch, watch_key

from .builders import CA_NUMBER, NOW, US_NUMBER, cancel, carrier, checked, cloud, port_requested, scheduled


def _received(request) -> PortInRequest:
    state, _ = decide(None, cloud(request), NOW)
    assert state is not None
    return state


def test_a_parked_event_is_watched_by_a_timer_due_a_day_later_naming_the_event():
    request = port_requested(US_NUMBER)
    early = cloud(cancel(request), "cancel-1")

    _, decisions = decide(None, early, NOW)

    [timer] = decisions.timers
    assert isinstance(timer, ScheduleTimer) and timer.kind is TimerKind.PARKED_EVENT_OVERDUE
    assert PARKED_EVENT_ALERT_AFTER == timedelta(hours=24)
    assert timer.due_at == NOW + timedelta(hours=24)
    assert timer.key.startswith(f"{request.port_in_request_sid}:"), "porting status SID lists it"
    assert (timer.data["event_type"], timer.data["event_id"], timer.data["event_source"]) == (
        "porting.cancel-requested.v1", "cancel-1", "test")


def test_a_parked_event_whose_request_never_came_raises_one_orphaned_event_alert_with_how_long_it_waited():
    request = port_requested(US_NUMBER)
    early = cloud(carrier(request, (US_NUMBER, CarrierOutcome.ACCEPTED)), "answer-1")
    timer = watch(early, NOW)
    fired_at = NOW + timedelta(hours=30)

    decisions = parked_event_overdue(None, [early], timer.data, due_at=timer.due_at, cause_id="timer:7", now=fired_at)

    [alert] = decisions.events_of(PortAlertRaised)
    assert (alert.port_in_request_sid, alert.alert, alert.phone_numbers) == (
        request.port_in_request_sid, AlertKind.ORPHANED_EVENT, [US_NUMBER])
    assert "porting.carrier-responded.v1 answer-1" in alert.message and "waited 30 hours" in alert.message
    assert (alert.due_at, alert.raised_at) == (timer.due_at, fired_at)
    [note] = decisions.notes()
    assert (note.reason_code, note.cause_event_id) == ("ORPHANED_EVENT", "timer:7")


def test_a_watch_timer_whose_event_was_applied_meanwhile_raises_nothing():
    early = cloud(cancel(port_requested(US_NUMBER)), "cancel-1")
    timer = watch(early, NOW)
    decisions = parked_event_overdue(None, [], timer.data, due_at=timer.due_at, cause_id="timer:7",
                                     now=NOW + timedelta(days=2))
    assert decisions.publish == [] and decisions.history == []


def test_a_parked_event_applied_when_its_request_arrives_stops_its_timer():
    request = port_requested(US_NUMBER)
    early = cloud(cancel(request), "cancel-1")

    settled = settle(_received(request), early, NOW)

    assert not settled.still_early and settled.dead_letter is None
    assert settled.decisions.transitions(), "the cancel applied"
    assert CancelTimer(TimerKind.PARKED_EVENT_OVERDUE, watch(early, NOW).key) in settled.decisions.timers


def test_a_parked_event_still_early_keeps_its_timer_from_when_it_was_first_parked():
    first = port_requested(US_NUMBER)
    second = port_requested(US_NUMBER, sid=first.port_in_request_sid, account=first.account_sid, revision=2)
    settled = settle(_received(first), cloud(checked(second)), NOW + timedelta(hours=3))
    assert settled.still_early
    assert not any(isinstance(t, CancelTimer) for t in settled.decisions.timers)


def test_a_parked_event_naming_numbers_its_request_lacks_is_dead_lettered_not_ignored():
    request = port_requested(US_NUMBER)
    stray = cloud(carrier(request, (CA_NUMBER, CarrierOutcome.ACCEPTED)), "answer-1")
    state = _received(request)

    settled = settle(state, stray, NOW)

    assert settled.dead_letter and CA_NUMBER in settled.dead_letter
    assert settled.decisions.ignored() == [] and settled.decisions.publish == []
    [note] = settled.decisions.history
    assert (note.kind, note.reason_code, note.cause_event_id) == (
        HistoryKind.NOTE, "PARKED_EVENT_DEAD_LETTERED", "answer-1")
    assert CancelTimer(TimerKind.PARKED_EVENT_OVERDUE, watch(stray, NOW).key) in settled.decisions.timers
    assert state.status is RequestStatus.IN_REVIEW and state.number(US_NUMBER).status.value == "in_review"


def test_a_parked_event_the_requests_state_has_superseded_is_recorded_as_ignored_not_dead_lettered():
    request = port_requested(US_NUMBER)
    state = _received(request)
    # The carrier answered (and scheduled) before the request was even submitted: its answer is
    # for a submission the request does not have (yet), not a bad event.
    for early, code in ((carrier(request, (US_NUMBER, CarrierOutcome.ACCEPTED)), "UNEXPECTED_ACCEPTED"),
                        (scheduled(request, US_NUMBER), "UNEXPECTED_SCHEDULE")):
        settled = settle(state, cloud(early), NOW)
        assert settled.dead_letter is None and not settled.still_early
        [ignored] = settled.decisions.ignored()
        assert ignored.reason_code == code and ignored.reason


def test_a_parked_check_of_a_revision_already_replaced_is_recorded_as_ignored():
    first = port_requested(US_NUMBER)
    second = port_requested(US_NUMBER, sid=first.port_in_request_sid, account=first.account_sid, revision=2)
    settled = settle(_received(second), cloud(checked(first)), NOW)
    assert settled.dead_letter is None
    assert [h.reason_code for h in settled.decisions.ignored()] == ["CHECK_SUPERSEDED"]


def test_events_for_one_unseen_request_are_parked_up_to_a_limit_and_refused_beyond_it_with_a_reason():
    sid = "KW" + "a" * 32
    assert parking.parking_refused(sid, 0) is None
    assert parking.parking_refused(sid, parking.MAX_PARKED_PER_REQUEST - 1) is None
    refused = parking.parking_refused(sid, parking.MAX_PARKED_PER_REQUEST)
    assert refused is not None and sid in refused and "redrive" in refused


def test_two_parked_events_whose_source_and_id_split_alike_are_watched_by_timers_of_their_own():
    def parked(source: str, event_id: str) -> str:
        event = cloud(cancel(port_requested(US_NUMBER)), event_id)
        event = type(event)(attributes=replace(event.attributes, source=source), data=event.data)
        return watch_key(event).split(":", 1)[1]
    assert parked("a:b", "c") != parked("a", "b:c")
    assert parked("a%3Ab", "c") != parked("a:b", "c")
