"""A request is received, checked, reviewed when its check arrives, and submitted to the carrier."""

from __future__ import annotations

from datetime import UTC, date, datetime

from schemas import (
    CarrierOutcome,
    NumberStatus,
    PortabilityReason,
    PortStatusChanged,
    PortSubmitted,
    RequestStatus,
)
from workflow.domain import HistoryKind, TimerKind

from .builders import (
    CA_NUMBER,
    GB_NUMBER,
    NOW,
    US_NUMBER,
    US_NUMBER_2,
    Desk,
    carrier,
    checked,
    documents,
    not_portable,
    port_requested,
    portable,
    rejected,
    submitted_desk,
)


def test_a_new_request_puts_every_number_in_review_and_announces_it():
    desk, request = Desk(), port_requested(US_NUMBER, US_NUMBER_2)
    decisions = desk.apply(request, event_id="evt-1")

    [change] = decisions.events_of(PortStatusChanged)
    assert (change.status_from, change.status_to) == (None, RequestStatus.IN_REVIEW)
    assert [(c.phone_number, c.status_from, c.status_to) for c in change.phone_numbers] == [
        (US_NUMBER, None, NumberStatus.IN_REVIEW), (US_NUMBER_2, None, NumberStatus.IN_REVIEW)]
    assert change.notification_emails == ["ada@example.com"] and change.webhook_url is not None
    assert {h.cause_event_id for h in decisions.history} == {"evt-1"}


def test_the_review_sla_is_one_business_day_from_receipt():
    friday_afternoon = datetime(2027, 2, 12, 23, tzinfo=UTC)  # 15:00 in San Francisco, before Presidents' Day
    decisions = Desk().apply(port_requested(US_NUMBER), friday_afternoon)
    [timer] = decisions.scheduled(TimerKind.REVIEW_SLA)
    assert timer.due_at == datetime(2027, 2, 16, 23, tzinfo=UTC)


def test_numbers_that_are_not_portable_end_not_portable_with_their_reason_code():
    desk, request = Desk(), port_requested(US_NUMBER, US_NUMBER_2)
    desk.apply(request)
    decisions = desk.apply(checked(request, portable(US_NUMBER),
                                   not_portable(US_NUMBER_2, PortabilityReason.ALREADY_IN_TWILIO_DIFFERENT_OWNER)))
    number = desk.request.number(US_NUMBER_2)
    assert (number.status, number.reason_code) == (NumberStatus.NOT_PORTABLE, "22132")
    assert desk.status_of(US_NUMBER) == "port_submitted"
    [change] = decisions.events_of(PortStatusChanged)
    assert {c.phone_number: c.reason_code for c in change.phone_numbers} == {US_NUMBER: None, US_NUMBER_2: "22132"}


def test_a_number_only_the_manual_process_can_port_follows_the_international_track_instead_of_being_dropped():
    desk, request = Desk(), port_requested(GB_NUMBER, country="GB", fees_acknowledged=True, target=None)
    desk.apply(request)
    decisions = desk.apply(checked(request))
    number = desk.request.number(GB_NUMBER)
    assert number.status is NumberStatus.PORT_SUBMITTED
    assert number.requirements.track.value == "manual"
    [timer] = decisions.scheduled(TimerKind.CARRIER_SLA)
    assert timer.data["business_days"] == 10, "the international carrier SLA"


def test_an_international_request_without_its_fees_approved_is_not_reviewed_further():
    desk, request = Desk(), port_requested(GB_NUMBER, country="GB", fees_acknowledged=False, target=None)
    desk.apply(request)
    desk.apply(checked(request))
    assert desk.request.number(GB_NUMBER).reason_code == "FEES_NOT_ACKNOWLEDGED"
    assert desk.request.status is RequestStatus.REJECTED


def test_the_review_waits_for_the_check_of_the_current_revision():
    desk, first = Desk(), port_requested(US_NUMBER)
    desk.apply(first)
    second = port_requested(US_NUMBER, sid=first.port_in_request_sid, account=first.account_sid, revision=2)
    desk.apply(second)
    stale = desk.apply(checked(first))
    assert desk.status_of(US_NUMBER) == "in_review"
    assert [h.reason_code for h in stale.ignored()] == ["CHECK_SUPERSEDED"]
    desk.apply(checked(second))
    assert desk.status_of(US_NUMBER) == "port_submitted"


def test_a_check_of_a_revision_not_yet_received_is_parked():
    desk, first = Desk(), port_requested(US_NUMBER)
    desk.apply(first)
    early = desk.apply(checked(first, revision=2))
    assert early.parked and not early.history and desk.status_of(US_NUMBER) == "in_review"


def test_a_canadian_request_with_a_french_po_box_a_stale_bill_or_no_csr_is_rejected_with_the_reason():
    cases = {
        "PO_BOX_ADDRESS": {"address": {"street": "C.P. 1234", "city": "Montréal", "state": "QC", "zip": "H3A 3R2",
                                       "country": "CA"}},
        "BILL_TOO_OLD": {"documents": documents("CA", bill_dated=date(2026, 12, 1))},
        "CSR_MISSING": {"documents": documents("CA", csr=False)},
    }
    for code, overrides in cases.items():
        desk, request = Desk(), port_requested(CA_NUMBER, country="CA", **overrides)
        desk.apply(request)
        decisions = desk.apply(checked(request))
        assert desk.request.status is RequestStatus.REJECTED, code
        [change] = decisions.events_of(PortStatusChanged)
        assert change.status_to is RequestStatus.REJECTED
        assert [(c.status_to, c.reason_code) for c in change.phone_numbers] == [(NumberStatus.PORT_REJECTED, code)]
        assert change.phone_numbers[0].reason, "a sentence telling the customer how to fix it"
        assert not decisions.events_of(PortSubmitted)


def test_a_missing_pin_reported_by_portability_is_a_review_failure_the_customer_can_fix():
    desk, request = Desk(), port_requested(US_NUMBER, pins={US_NUMBER: None})
    desk.apply(request)
    answer = portable(US_NUMBER, pin_required=True).model_copy(update={
        "portable": False, "not_portable_reason": "MISSING_REQUIRED_FIELDS",
        "not_portable_reason_code": PortabilityReason.MISSING_REQUIRED_FIELDS})
    desk.apply(checked(request, answer))
    number = desk.request.number(US_NUMBER)
    assert (number.status, number.reason_code, number.awaiting_fix) == (NumberStatus.PORT_REJECTED, "PIN_MISSING", True)


def test_numbers_that_pass_are_submitted_together_in_one_port_submitted_with_pin_and_account_number():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2, pins={US_NUMBER: "1111", US_NUMBER_2: "2222"})
    [order] = [e for e in desk.published if isinstance(e, PortSubmitted)]
    assert [(n.phone_number, n.pin) for n in order.phone_numbers] == [(US_NUMBER, "1111"), (US_NUMBER_2, "2222")]
    assert order.losing_carrier_information.account_number == "ACC-991"
    assert order.revision == 1 and order.submitted_at == NOW
    assert desk.request.status is RequestStatus.IN_PROGRESS


def test_only_the_numbers_that_pass_the_review_are_submitted():
    desk, request = Desk(), port_requested(US_NUMBER, CA_NUMBER, country="US")
    desk.apply(request)
    desk.apply(checked(request, portable(US_NUMBER), portable(CA_NUMBER)))  # no bill, no CSR for the CA number
    [order] = [e for e in desk.published if isinstance(e, PortSubmitted)]
    assert [n.phone_number for n in order.phone_numbers] == [US_NUMBER]
    assert desk.request.number(CA_NUMBER).reason_code == "BILL_MISSING"
    assert desk.request.status is RequestStatus.ACTION_REQUIRED


def test_submission_starts_the_carrier_sla_and_ends_the_review_sla():
    desk, request = Desk(), port_requested(US_NUMBER)
    desk.apply(request)
    decisions = desk.apply(checked(request))
    [carrier_sla] = decisions.scheduled(TimerKind.CARRIER_SLA)
    assert carrier_sla.due_at == datetime(2027, 2, 8, 18, tzinfo=UTC), "five business days, same local time"
    assert [t.key for t in decisions.canceled(TimerKind.REVIEW_SLA)] == [request.port_in_request_sid]


def test_a_corrected_revision_re_enters_review_and_resubmits_only_the_rejected_numbers():
    desk, request = submitted_desk(US_NUMBER, US_NUMBER_2)
    desk.apply(carrier(request, (US_NUMBER, CarrierOutcome.ACCEPTED), rejected(US_NUMBER_2)))
    assert desk.request.status is RequestStatus.ACTION_REQUIRED

    revision = port_requested(US_NUMBER, US_NUMBER_2, sid=request.port_in_request_sid, account=request.account_sid,
                              revision=2, pins={US_NUMBER_2: "9999"})
    decisions = desk.apply(revision)
    assert (desk.status_of(US_NUMBER), desk.status_of(US_NUMBER_2)) == ("port_pending", "in_review")
    assert desk.request.status is RequestStatus.IN_PROGRESS
    assert decisions.canceled(TimerKind.ACTION_REQUIRED_EXPIRY)

    decisions = desk.apply(checked(revision))
    [order] = decisions.events_of(PortSubmitted)
    assert [(n.phone_number, n.pin) for n in order.phone_numbers] == [(US_NUMBER_2, "9999")]
    assert order.revision == 2
    assert desk.status_of(US_NUMBER) == "port_pending"


def test_a_revision_for_a_rejected_request_re_enters_review():
    desk, request = Desk(), port_requested(CA_NUMBER, country="CA", documents=documents("CA", csr=False))
    desk.apply(request)
    desk.apply(checked(request))
    assert desk.request.status is RequestStatus.REJECTED
    fixed = port_requested(CA_NUMBER, country="CA", sid=request.port_in_request_sid, account=request.account_sid,
                           revision=2)
    desk.apply(fixed)
    assert desk.request.status is RequestStatus.IN_REVIEW
    desk.apply(checked(fixed))
    assert desk.status_of(CA_NUMBER) == "port_submitted"


def test_an_old_or_repeated_revision_and_one_with_nothing_to_fix_are_recorded_as_ignored():
    desk, request = submitted_desk(US_NUMBER)
    again = desk.apply(request, event_id="evt-again")
    nothing = desk.apply(port_requested(US_NUMBER, sid=request.port_in_request_sid, account=request.account_sid,
                                        revision=2))
    assert [h.reason_code for h in again.ignored()] == ["REVISION_ALREADY_RECEIVED"]
    assert [h.reason_code for h in nothing.ignored()] == ["NOTHING_TO_RESUBMIT"]
    assert not again.publish and not nothing.publish
    assert all(h.kind is HistoryKind.IGNORED for h in again.history + nothing.history)
    assert desk.request.revision == 1, "the details the carrier has are kept"
