"""Events that overtake their request, events naming numbers the request lacks, and the PIN's path."""

from __future__ import annotations

from datetime import date

import pytest

from schemas import CarrierOutcome, PortSubmitted, RequestStatus
from workflow.domain import decide, decide_in_order

from .builders import (
    CA_NUMBER,
    NOW,
    US_NUMBER,
    US_NUMBER_2,
    Desk,
    cancel,
    carrier,
    checked,
    cloud,
    documents,
    port_requested,
    scheduled,
    submitted_desk,
)


@pytest.mark.parametrize("early", [
    lambda r: cancel(r), lambda r: carrier(r, (US_NUMBER, CarrierOutcome.ACCEPTED)),
    lambda r: scheduled(r, US_NUMBER), lambda r: checked(r),
])
def test_an_event_for_a_request_not_seen_yet_is_parked_not_dropped(early):
    request = port_requested(US_NUMBER)
    state, decisions = decide(None, cloud(early(request)), NOW)
    assert state is None and decisions.parked and not decisions.rejected


def test_a_cancel_that_overtook_its_request_is_applied_once_the_request_arrives():
    request = port_requested(US_NUMBER)
    parked = cloud(cancel(request), "cancel-1")
    assert decide(None, parked, NOW)[1].parked
    state, [received, applied] = decide_in_order(None, [cloud(request), parked], NOW)
    assert state.status is RequestStatus.CANCELED
    assert [h.cause_event_id for h in applied.transitions()] == ["cancel-1", "cancel-1"]


def test_a_check_of_a_later_revision_stays_parked_until_that_revision_arrives():
    first = port_requested(US_NUMBER)
    second = port_requested(US_NUMBER, sid=first.port_in_request_sid, account=first.account_sid, revision=2)
    state, [_, early] = decide_in_order(None, [cloud(first), cloud(checked(second))], NOW)
    assert early.parked


@pytest.mark.parametrize("stray", [
    lambda r: carrier(r, (US_NUMBER, CarrierOutcome.ACCEPTED), (CA_NUMBER, CarrierOutcome.ACCEPTED)),
    lambda r: scheduled(r, CA_NUMBER),
    lambda r: cancel(r, CA_NUMBER),
    lambda r: port_requested(US_NUMBER, CA_NUMBER, sid=r.port_in_request_sid, account=r.account_sid, revision=2),
])
def test_an_event_naming_a_number_not_in_the_request_is_refused_and_changes_nothing(stray):
    desk, request = submitted_desk(US_NUMBER)
    before = desk.request.model_dump()
    decisions = desk.apply(stray(request))
    assert CA_NUMBER in decisions.rejected
    assert not decisions.history and not decisions.publish and not decisions.timers
    assert desk.request.model_dump() == before


def test_a_revision_for_another_account_is_refused():
    desk, request = submitted_desk(US_NUMBER)
    decisions = desk.apply(port_requested(US_NUMBER, sid=request.port_in_request_sid, revision=2))
    assert "account" in decisions.rejected


def test_no_pin_or_account_number_in_any_event_but_port_submitted_nor_in_the_history():
    pin, account_number = "80417733", "ACCT-55120937"
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2, pins={US_NUMBER: pin, US_NUMBER_2: pin},
                                   account_number=account_number)
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACCEPTED)))
    desk.apply(scheduled(request, US_NUMBER, on=date(2027, 3, 2)))
    desk.apply(cancel(request))
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACTIVATED)))
    others = [e.model_dump_json() for e in desk.published if not isinstance(e, PortSubmitted)]
    history = [repr(h) for d in desk.decisions for h in d.history]
    assert len(others) >= 5
    assert not [text for text in others + history if pin in text or account_number in text]
    [order] = [e for e in desk.published if isinstance(e, PortSubmitted)]
    assert pin in order.model_dump_json() and account_number in order.model_dump_json()


def test_pin_and_account_number_are_forgotten_when_the_request_ends():
    desk, request = submitted_desk(US_NUMBER)
    assert desk.request.has_secrets
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACTIVATED)))
    assert desk.request.status is RequestStatus.COMPLETED and not desk.request.has_secrets


def test_a_rejected_request_forgets_its_secrets_and_a_corrected_revision_brings_its_own():
    desk, request = Desk(), port_requested(CA_NUMBER, country="CA", documents=documents("CA", csr=False))
    desk.apply(request)
    desk.apply(checked(request))
    assert desk.request.status is RequestStatus.REJECTED and not desk.request.has_secrets
    fixed = port_requested(CA_NUMBER, country="CA", sid=request.port_in_request_sid, account=request.account_sid,
                           revision=2, pins={CA_NUMBER: "7001"})
    desk.apply(fixed)
    [order] = desk.apply(checked(fixed)).events_of(PortSubmitted)
    assert order.phone_numbers[0].pin == "7001"
