"""What each event calls for: which e-mail, to whom, which webhooks, and the routing reminder."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from notifier.adapters.templates import EmailTemplates, load_fix_advice
from notifier.domain.announcements import NotifierPolicy, announce
from notifier.domain.deliveries import Audience, Channel, delivery_id
from schemas import CarrierRejectionReason, PortStatusChanged

from ..workflow.builders import US_NUMBER as WORKFLOW_US
from ..workflow.builders import cloud, scheduled, submitted_desk
from .events import CHANGED_AT, WEBHOOK_URL, alert_raised, cancellation_denied, status_changed

POLICY = NotifierPolicy(ops_alert_emails=("ops@carrier.example", "OPS@carrier.example", "noc@carrier.example"),
                        advice=load_fix_advice())
US, CA = "+14155550100", "+14165550123"


def emails(announcement):
    return [n for n in announcement.notifications if n.channel is Channel.EMAIL and n.due_at is None]


def webhooks(announcement):
    return [n for n in announcement.notifications if n.channel is Channel.WEBHOOK]


def email_kind(event):
    kinds = {n.kind for n in emails(announce(event, POLICY))}
    assert len(kinds) <= 1, "one e-mail per step"
    return kinds.pop() if kinds else None


@pytest.mark.parametrize(("event", "kind"), [
    (status_changed(None, "in_review", [(US, None, "in_review")]), "request_received"),
    (status_changed("action_required", "in_review", [(US, "port_rejected", "in_review")]), "request_received"),
    (status_changed("action_required", "in_progress", [(US, "port_rejected", "in_review")]), "request_received"),
    (status_changed("in_review", "in_progress", [(US, "in_review", "port_submitted")]), "request_submitted"),
    (status_changed("in_review", "rejected", [(US, "in_review", "not_portable")]), "request_rejected"),
    (status_changed("in_progress", "action_required", [(US, "port_submitted", "port_rejected")]), "action_required"),
    (status_changed("in_progress", "in_progress", [(US, "port_submitted", "port_pending")]), "port_accepted"),
    (status_changed("in_progress", "in_progress", [(US, "port_pending", "scheduled")], port_date="2027-03-02"),
     "port_date"),
    (status_changed("in_progress", "completed", [(US, "scheduled", "completed")]), "port_completed"),
    (status_changed("in_progress", "in_progress", [(US, "scheduled", "canceling")]), "cancellation_under_way"),
    (status_changed("in_progress", "canceled", [(US, "port_pending", "canceled")]), "port_canceled"),
    (status_changed("action_required", "expired", [(US, "port_rejected", "port_rejected")]), "request_expired"),
    (status_changed("in_review", "in_review", [(US, "in_review", "not_portable")]), "numbers_not_portable"),
    (cancellation_denied(), "cancellation_denied"),
])
def test_each_step_of_a_port_sends_its_own_email_to_the_customer(event, kind):
    assert email_kind(event) == kind


def test_a_status_event_that_changes_nothing_sends_no_email_and_no_webhook():
    event = status_changed("in_progress", "in_progress", [(US, "port_pending", "port_pending")])
    assert announce(event, POLICY).notifications == ()


def test_every_notification_email_address_gets_one_message_whatever_its_case_or_repetition():
    event = status_changed(None, "in_review", [(US, None, "in_review")],
                           notification_emails=["ada@example.com", "ADA@example.com", "bob@example.com"])
    assert sorted(n.recipient for n in emails(announce(event, POLICY))) == ["ada@example.com", "bob@example.com"]


def test_a_request_level_change_and_each_number_change_get_one_webhook_each_named_like_the_public_api():
    event = status_changed("in_progress", "action_required",
                           [(US, "port_submitted", "port_rejected"), ("+14155550101", "port_submitted", "port_pending")])
    hooks = {(n.kind, n.payload["data"]["phone_number"]) for n in webhooks(announce(event, POLICY))}
    assert hooks == {("PortInActionRequired", None), ("PortInPhoneNumberRejected", US),
                     ("PortInPhoneNumberPending", "+14155550101")}
    assert all(n.recipient == WEBHOOK_URL for n in webhooks(announce(event, POLICY)))


@pytest.mark.parametrize(("request_from", "request_to", "number_from", "number_to", "expected"), [
    ("in_review", "in_progress", "in_review", "port_submitted", {"PortInInProgress", "PortInPhoneNumberSubmitted"}),
    ("in_progress", "completed", "scheduled", "completed", {"PortInCompleted", "PortInPhoneNumberCompleted"}),
    ("in_progress", "canceled", "port_pending", "canceled", {"PortInCanceled", "PortInPhoneNumberCanceled"}),
    ("action_required", "expired", "port_rejected", "port_rejected", {"PortInExpired"}),
])
def test_webhook_types_follow_the_public_port_in_webhooks(request_from, request_to, number_from, number_to, expected):
    event = status_changed(request_from, request_to, [(US, number_from, number_to)])
    assert {n.kind for n in webhooks(announce(event, POLICY))} == expected


def test_a_webhook_body_carries_the_public_fields_and_the_time_of_the_change():
    rejected = status_changed("in_progress", "action_required", port_date="2027-03-02", phone_numbers=[
        {"phone_number": US, "status_from": "port_submitted", "status_to": "port_rejected",
         "reason_code": "INVALID_PIN", "reason": "The PIN does not match the carrier's records."}])
    [hook] = [n for n in webhooks(announce(rejected, POLICY)) if n.kind == "PortInPhoneNumberRejected"]
    assert hook.payload == {
        "type": "PortInPhoneNumberRejected",
        "timestamp": CHANGED_AT.isoformat(),
        "data": {"port_in_request_sid": rejected.data.port_in_request_sid, "phone_number": US,
                 "status": "port_rejected", "last_date_updated": CHANGED_AT.isoformat(),
                 "rejection_reason": "The PIN does not match the carrier's records.",
                 "rejection_reason_code": "INVALID_PIN", "port_date": "2027-03-02"},
    }


def test_no_webhook_url_means_no_webhook():
    event = status_changed(None, "in_review", [(US, None, "in_review")], webhook_url=None)
    assert webhooks(announce(event, POLICY)) == []


def test_delivery_ids_are_stable_for_the_same_event_and_differ_per_channel_recipient_and_part():
    event = status_changed("in_progress", "completed", [(US, "scheduled", "completed")])
    first, again = announce(event, POLICY), announce(event, POLICY)
    assert [n.delivery_id for n in first.notifications] == [n.delivery_id for n in again.notifications]
    assert len({n.delivery_id for n in first.notifications}) == len(first.notifications)
    other_event = status_changed("in_progress", "completed", [(US, "scheduled", "completed")])
    assert not {n.delivery_id for n in first.notifications} & {n.delivery_id for n in announce(other_event, POLICY).notifications}
    assert delivery_id("w", "1", Channel.EMAIL, "a@x.io") == delivery_id("w", "1", Channel.EMAIL, "A@X.io")
    assert delivery_id("w", "1", Channel.EMAIL, "a@x.io") != delivery_id("v", "1", Channel.EMAIL, "a@x.io")


def test_a_rejection_explains_each_carrier_reason_with_its_own_fix():
    fixes = {}
    for reason in CarrierRejectionReason:
        event = status_changed("in_progress", "action_required", phone_numbers=[
            {"phone_number": US, "status_from": "port_submitted", "status_to": "port_rejected",
             "reason_code": reason.value, "reason": "as the carrier said it"}])
        [email] = emails(announce(event, POLICY))
        [refusal] = email.payload["refusals"]
        assert refusal["reason_code"] == reason.value and refusal["reason"] == "as the carrier said it"
        fixes[reason] = refusal["fix"]
    assert "port-out PIN" in fixes[CarrierRejectionReason.INVALID_PIN]
    assert len(set(fixes.values())) == len(CarrierRejectionReason), "one sentence per reason"
    assert POLICY.advice.default not in fixes.values()


def test_a_review_reason_the_notifier_has_no_sentence_for_uses_the_workflows_text_as_the_fix():
    fix = "Give a street address where the service is installed: a PO box is not one."
    event = status_changed("in_review", "rejected", reason_code="PO_BOX_ADDRESS", reason=fix,
                           phone_numbers=[{"phone_number": US, "status_from": "in_review", "status_to": "port_rejected",
                                           "reason_code": "PO_BOX_ADDRESS", "reason": fix}])
    [email] = emails(announce(event, POLICY))
    assert email.payload["refusals"] == [{"phone_number": US, "reason_code": "PO_BOX_ADDRESS", "reason": None,
                                          "fix": fix}]


def test_a_code_without_a_sentence_or_a_text_gets_the_general_fix():
    event = status_changed("in_review", "rejected", phone_numbers=[
        {"phone_number": US, "status_from": "in_review", "status_to": "port_rejected", "reason_code": "NEW_RULE"}])
    [email] = emails(announce(event, POLICY))
    assert email.payload["refusals"][0]["fix"] == POLICY.advice.default


def test_numbers_refused_by_review_are_told_apart_from_those_the_carrier_rejected():
    event = status_changed("in_review", "action_required", phone_numbers=[
        {"phone_number": US, "status_from": "in_review", "status_to": "port_rejected", "reason_code": "BILL_TOO_OLD",
         "reason": "Send a bill dated within the last 30 days."},
        {"phone_number": CA, "status_from": "port_submitted", "status_to": "port_rejected", "reason_code": "INVALID_PIN"},
        {"phone_number": "+14155550101", "status_from": "in_review", "status_to": "port_submitted"}])
    [email] = emails(announce(event, POLICY))
    assert email.kind == "action_required"
    assert [r["phone_number"] for r in email.payload["review_refusals"]] == [US]
    assert [r["phone_number"] for r in email.payload["carrier_refusals"]] == [CA]
    assert email.payload["submitted_numbers"] == ["+14155550101"]


def test_the_port_date_email_schedules_a_routing_reminder_two_days_ahead_for_the_scheduled_numbers():
    event = status_changed("in_progress", "in_progress", [(US, "port_pending", "scheduled")], port_date="2027-03-02")
    [reminder] = [n for n in announce(event, POLICY).notifications if n.kind == "routing_reminder"]
    assert reminder.due_at == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    assert reminder.phone_numbers == (US,) and reminder.recipient == "ada@example.com"
    assert reminder.payload["port_date_words"] == "Tuesday 2 March 2027"


def test_the_reminder_comes_in_the_mornings_of_the_port_windows_time_zone_and_the_email_names_the_window():
    event = status_changed("in_progress", "in_progress", [(CA, "port_pending", "scheduled")], port_date="2027-03-02",
                           port_time_range_start="10:00:00", port_time_range_end="12:00:00", time_zone="America/Toronto")
    announcement = announce(event, POLICY)
    [reminder] = [n for n in announcement.notifications if n.kind == "routing_reminder"]
    assert reminder.due_at == datetime(2027, 2, 28, 14, 0, tzinfo=UTC)  # 09:00 in Toronto (EST)
    [email] = emails(announcement)
    assert email.payload["port_window"] == "between 10:00 and 12:00 (America/Toronto)"


def test_the_completion_email_states_the_per_number_fee_the_workflow_recorded():
    event = status_changed("in_progress", "completed", phone_numbers=[
        {"phone_number": CA, "status_from": "scheduled", "status_to": "completed", "fee_per_number": "12.50",
         "fee_currency": "CAD"}])
    [email] = emails(announce(event, POLICY))
    assert email.payload["fees"] == [{"phone_number": CA, "amount": "12.50", "currency": "CAD"}]


def test_no_reminder_when_the_port_date_is_too_close_for_one():
    event = status_changed("in_progress", "in_progress", [(US, "port_pending", "scheduled")],
                           port_date=(CHANGED_AT + timedelta(days=1)).date().isoformat())
    assert [n for n in announce(event, POLICY).notifications if n.kind == "routing_reminder"] == []


def test_a_change_withdraws_the_pending_reminders_of_its_numbers_and_an_ended_request_all_of_them():
    moved = announce(status_changed("in_progress", "in_progress", [(US, "scheduled", "canceling")]), POLICY)
    assert moved.withdraw_reminders_for == (US,) and not moved.withdraw_all_reminders
    ended = announce(status_changed("in_progress", "canceled", [(US, "scheduled", "canceled")]), POLICY)
    assert ended.withdraw_all_reminders


def test_canadian_numbers_hear_of_the_per_number_fee_on_receipt_and_at_completion_only():
    def fee(event):
        [email] = emails(announce(event, POLICY))
        return email.payload["canadian_fee_applies"], email.payload["canadian_numbers"]

    assert fee(status_changed(None, "in_review", [(CA, None, "in_review"), (US, None, "in_review")])) == (True, [CA])
    assert fee(status_changed("in_progress", "completed", [(CA, "scheduled", "completed")])) == (True, [CA])
    assert fee(status_changed("in_review", "in_progress", [(CA, "in_review", "port_submitted")]))[0] is False
    assert fee(status_changed(None, "in_review", [(US, None, "in_review")])) == (False, [])


def test_completion_of_some_numbers_lists_those_still_porting_so_the_old_account_stays_open():
    event = status_changed("in_progress", "in_progress",
                           [(US, "scheduled", "completed"), ("+14155550101", "scheduled", "scheduled")])
    [email] = emails(announce(event, POLICY))
    assert email.kind == "port_completed"
    assert email.payload["completed_numbers"] == [US] and email.payload["still_porting"] == ["+14155550101"]


def test_a_refused_cancellation_tells_the_customer_why_and_each_number_gets_a_webhook():
    event = cancellation_denied(phone_numbers=[US, "+14155550101"])
    announcement = announce(event, POLICY)
    [email] = emails(announcement)
    assert email.payload["reason"].startswith("A port date is scheduled")
    assert {(n.kind, n.payload["data"]["phone_number"]) for n in webhooks(announcement)} == {
        ("PortInPhoneNumberCancellationDenied", US), ("PortInPhoneNumberCancellationDenied", "+14155550101")}


def test_every_alert_goes_to_each_ops_address_once_and_to_no_customer():
    announcement = announce(alert_raised("port_date_overdue"), POLICY)
    assert sorted(n.recipient for n in announcement.notifications) == ["noc@carrier.example", "ops@carrier.example"]
    assert {(n.audience, n.channel, n.kind) for n in announcement.notifications} == {(Audience.OPS, Channel.EMAIL, "ops_alert")}


def test_an_alert_without_ops_addresses_is_noted_rather_than_lost_silently():
    announcement = announce(alert_raised(), NotifierPolicy(ops_alert_emails=(), advice=POLICY.advice))
    assert announcement.notifications == () and announcement.notes


def test_a_request_without_notification_emails_gets_webhooks_only():
    event = status_changed(None, "in_review", [(US, None, "in_review")], notification_emails=[])
    assert emails(announce(event, POLICY)) == [] and webhooks(announce(event, POLICY))


def test_a_new_port_date_from_the_workflow_is_a_your_port_date_changed_email_with_its_webhook_and_reminder_moved():
    # The workflow's own status change for a scheduled request given a new date: scheduled -> scheduled.
    desk, request = submitted_desk(WORKFLOW_US)
    desk.apply(scheduled(request, WORKFLOW_US, on=date(2027, 3, 2)))
    [change] = desk.apply(scheduled(request, WORKFLOW_US, on=date(2027, 3, 9))).events_of(PortStatusChanged)

    announcement = announce(cloud(change), POLICY)

    [email] = emails(announcement)
    assert (email.kind, email.payload["port_date_changed"]) == ("port_date", True)
    rendered = EmailTemplates().render(email.kind, email.payload)
    assert rendered.subject == "Your port date has changed: Tuesday 9 March 2027"
    assert "Your port date has changed." in rendered.text and "Tuesday 9 March 2027" in rendered.html
    [hook] = webhooks(announcement)
    assert (hook.payload["data"]["phone_number"], hook.payload["data"]["port_date"]) == (WORKFLOW_US, "2027-03-09")
    assert announcement.withdraw_reminders_for == (WORKFLOW_US,), "the reminder for the old date goes"
    [reminder] = [n for n in announcement.notifications if n.kind == "routing_reminder"]
    assert reminder.due_at is not None and reminder.due_at.date() == date(2027, 3, 7)


def test_a_first_port_date_is_not_called_a_change():
    event = status_changed("in_progress", "in_progress", [(US, "port_pending", "scheduled")], port_date="2027-03-02")
    [email] = emails(announce(event, POLICY))
    assert email.payload["port_date_changed"] is False
    assert EmailTemplates().render(email.kind, email.payload).subject == "Your port date: Tuesday 2 March 2027"


def test_who_asked_for_a_denied_cancellation_reaches_the_customers_email_without_a_pin_it_quotes():
    [email] = emails(announce(cancellation_denied(requested_by="Ada (PIN 4412)"), POLICY))
    assert email.payload["requested_by"] == "Ada (PIN [redacted])"


@pytest.mark.parametrize(("phone_number", "canadian"), [
    ("+14165550123", True),    # Toronto
    ("+16045550123", True),    # Vancouver
    ("+12125550123", False),   # New York, the same +1
    ("+18095550123", False),   # the Dominican Republic, also inside +1
    ("+442071234567", False),
    ("+1416555012", False),    # too short to be any number
    ("+1 416 555 0123", True),  # not canonical: parsed
    (" +14165550123", True), ("\uff0b14165550123", True), ("+\uff114165550123", True),
    ("tel:+1-416-555-0123", True), ("+2025550173", False), ("", False), ("+", False),
])
def test_a_number_is_canadian_by_libphonenumbers_region_whether_canonical_or_not(phone_number, canadian):
    from notifier.domain.wording import is_canadian

    assert is_canadian(phone_number) is canadian


def test_a_delivery_id_is_the_one_earlier_versions_gave_so_a_replay_after_an_upgrade_sends_nothing_twice():
    import base64
    import hashlib

    def as_first_released(source, event_id, channel, recipient, part=""):
        material = "\x1f".join((source, event_id, channel.value, recipient.lower(), part)).encode()
        return "msg_" + base64.b32encode(hashlib.sha256(material).digest()).decode().rstrip("=").lower()[:26]

    for n in range(300):
        args = (f"/porting/workflow/{n}", f"id-{n * 7919}", Channel.EMAIL if n % 2 else Channel.WEBHOOK,
                f"Ada{n}@Example.com", "" if n % 3 else f"number-{n}")
        assert delivery_id(*args) == as_first_released(*args)
    assert delivery_id("s", "e", Channel.EMAIL, "a@b") == "msg_" + "".join(
        base64.b32encode(hashlib.sha256("s\x1fe\x1femail\x1fa@b\x1f".encode()).digest()).decode().lower()[:26])
