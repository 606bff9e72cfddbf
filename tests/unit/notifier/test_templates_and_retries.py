"""Every template renders to a two-part message; reasons are redacted; retries back off and give up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest

from notifier.adapters.templates import EmailTemplates, TemplateProblem, compose, load_fix_advice
from notifier.domain.announcements import NotifierPolicy, announce
from notifier.service_layer.sending import claim_room
from notifier.domain.attempts import AttemptResult, Outcome, RetryPolicy, classify_http_status, classify_smtp_reply
from notifier.domain.deliveries import Channel

from schemas import AlertKind, PortAlertRaised

from .events import alert_raised, cancellation_denied, status_changed

TEMPLATES = EmailTemplates()
POLICY = NotifierPolicy(ops_alert_emails=("ops@carrier.example",), advice=load_fix_advice())
US, CA = "+14155550100", "+14165550123"
SENT_AT = datetime(2027, 2, 1, 16, 0, tzinfo=UTC)

# One event per e-mail kind, each built as the workflow would publish it.
EVERY_KIND = [
    status_changed(None, "in_review", [(US, None, "in_review"), (CA, None, "in_review")]),
    status_changed("in_review", "in_progress", phone_numbers=[
        {"phone_number": US, "status_from": "in_review", "status_to": "port_submitted"},
        {"phone_number": CA, "status_from": "in_review", "status_to": "not_portable", "reason_code": "22130",
         "reason": "Not supported"}]),
    status_changed("in_review", "rejected", reason_code="STALE_BILL", reason="The bill is older than 30 days.",
                   phone_numbers=[{"phone_number": CA, "status_from": "in_review", "status_to": "not_portable",
                                   "reason_code": "STALE_BILL", "reason": "The bill is older than 30 days."}]),
    status_changed("in_progress", "action_required", phone_numbers=[
        {"phone_number": US, "status_from": "port_submitted", "status_to": "port_rejected",
         "reason_code": "INVALID_PIN", "reason": "PIN mismatch"}]),
    status_changed("in_progress", "in_progress", [(US, "port_submitted", "port_pending")], port_date="2027-03-02"),
    status_changed("in_progress", "in_progress", [(US, "port_pending", "scheduled")], port_date="2027-03-02",
                   port_time_range_start="10:00:00", port_time_range_end="12:00:00", time_zone="America/New_York"),
    status_changed("in_progress", "completed", [(CA, "scheduled", "completed")]),
    status_changed("in_progress", "completed", phone_numbers=[
        {"phone_number": CA, "status_from": "scheduled", "status_to": "completed", "fee_per_number": "12.50",
         "fee_currency": "CAD"}]),
    status_changed("in_progress", "in_progress", [(US, "scheduled", "canceling")]),
    status_changed("in_progress", "canceled", [(US, "port_pending", "canceled")]),
    status_changed("action_required", "expired", reason_code="INVALID_PIN", reason="No corrected PIN arrived."),
    status_changed("in_review", "in_review", phone_numbers=[
        {"phone_number": US, "status_from": "in_review", "status_to": "not_portable", "reason_code": "UNSUPPORTED"}]),
    cancellation_denied(),
    alert_raised("delivery_gave_up"),
]


def rendered_notifications():
    for event in EVERY_KIND:
        for notification in announce(event, POLICY).notifications:
            if notification.channel is Channel.EMAIL:
                yield notification


def test_every_template_file_is_sent_by_some_event_and_renders_text_and_html():
    sent = {n.kind for n in rendered_notifications()}
    assert sent == set(TEMPLATES.kinds())
    for notification in rendered_notifications():
        rendered = TEMPLATES.render(notification.kind, notification.payload)
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
        assert "{{" not in rendered.text and "{%" not in rendered.html


def test_a_message_has_plain_text_and_html_alternatives_and_the_delivery_id_as_message_id():
    [notification] = [n for n in rendered_notifications() if n.kind == "port_date"]
    message = compose(TEMPLATES.render("port_date", notification.payload), delivery_id=notification.delivery_id,
                      sender="Porting <porting@carrier.example>", recipient=notification.recipient, sent_at=SENT_AT,
                      port_in_request_sid=notification.port_in_request_sid)
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["Message-ID"] == f"<{notification.delivery_id}@carrier.example>"
    text = parsed.get_body(("plain",)).get_content()
    assert "Tuesday 2 March 2027" in text and "voice and SMS routing" in text


@pytest.mark.parametrize(("kind", "must_say"), [
    ("request_received", ["keep your account with your current carrier active", "per-number rate"]),
    ("action_required", ["port-out PIN", "within 30 days", "Reason: PIN mismatch"]),
    ("port_completed", ["stop service on the old account", "per-number porting fee is now billed"]),
    ("port_date", ["Tuesday 2 March 2027", "between 10:00 and 12:00 (America/New_York)"]),
    ("routing_reminder", ["configure their voice and SMS routing"]),
    ("cancellation_denied", ["A port date is scheduled"]),
    ("ops_alert", ["delivery_gave_up"]),
])
def test_the_messages_say_what_the_seed_documents_promise(kind, must_say):
    [notification, *_] = [n for n in rendered_notifications() if n.kind == kind]
    rendered = TEMPLATES.render(kind, notification.payload)
    for phrase in must_say:
        assert phrase.lower() in rendered.text.lower(), phrase
        assert phrase.lower() in rendered.html.lower(), phrase


def test_the_fee_recorded_at_completion_is_stated_with_its_amount():
    fee_mails = [n for n in rendered_notifications() if n.kind == "port_completed" and n.payload["fees"]]
    text = TEMPLATES.render("port_completed", fee_mails[0].payload).text
    assert f"  - {CA}: 12.50 CAD" in text


def test_a_review_refusal_does_not_blame_the_carrier():
    event = status_changed("in_review", "action_required", phone_numbers=[
        {"phone_number": US, "status_from": "in_review", "status_to": "port_rejected", "reason_code": "CSR_MISSING",
         "reason": "Send the Customer Service Record your current carrier gives you."}])
    [notification] = [n for n in announce(event, POLICY).notifications if n.channel is Channel.EMAIL]
    rendered = TEMPLATES.render(notification.kind, notification.payload)
    assert rendered.subject == "Action required: your port-in request needs corrections"
    assert "carrier rejected" not in rendered.text and "How to fix it: Send the Customer Service Record" in rendered.text


def test_each_refused_number_reads_as_its_number_reason_and_fix_on_separate_lines():
    [notification] = [n for n in rendered_notifications() if n.kind == "action_required"]
    text = TEMPLATES.render("action_required", notification.payload).text
    assert f"  - {US} (INVALID_PIN)\n    Reason: PIN mismatch\n    How to fix it: Ask the losing carrier" in text


def test_html_escapes_what_came_from_outside_and_plain_text_keeps_it():
    event = status_changed("in_progress", "action_required", phone_numbers=[
        {"phone_number": US, "status_from": "port_submitted", "status_to": "port_rejected",
         "reason_code": "CONTACT_SUPPORT_REQUIRED", "reason": "<script>alert(1)</script> & more"}])
    [notification] = [n for n in announce(event, POLICY).notifications if n.channel is Channel.EMAIL]
    rendered = TEMPLATES.render(notification.kind, notification.payload)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<script>alert(1)</script> & more" in rendered.text


def test_a_template_naming_something_the_event_lacks_refuses_to_render(tmp_path):
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "broken.txt").write_text("Subject: hi {{ customer_pin }}\n\nbody\n")
    (tmp_path / "email" / "broken.html").write_text("<p>body</p>")
    with pytest.raises(TemplateProblem, match="customer_pin"):
        EmailTemplates(tmp_path).render("broken", {"port_in_request_sid": "KW1"})


def test_an_edit_to_a_template_or_its_layout_is_picked_up_within_the_recheck_interval(tmp_path, monkeypatch):
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "_layout.html").write_text("<p>{% block body %}{% endblock %}</p>")
    (tmp_path / "email" / "note.txt").write_text("Subject: Note\n\nfirst\n")
    (tmp_path / "email" / "note.html").write_text('{% extends "_layout.html" %}{% block body %}first{% endblock %}')
    clock = [1000.0]
    monkeypatch.setattr("notifier.adapters.templates.time.monotonic", lambda: clock[0])
    templates = EmailTemplates(tmp_path)
    assert templates.render("note", {}).html == "<p>first</p>"
    (tmp_path / "email" / "_layout.html").write_text("<div>{% block body %}{% endblock %}</div>")
    (tmp_path / "email" / "note.txt").write_text("Subject: Note\n\nsecond\n")
    import os
    for name in ("_layout.html", "note.txt"):  # a later mtime, whatever the file system's resolution
        os.utime(tmp_path / "email" / name, (2_000_000_000, 2_000_000_000))
    assert templates.render("note", {}).text == "first\n", "within the interval the compiled templates are kept"
    clock[0] += 1.5
    rendered = templates.render("note", {})
    assert (rendered.text, rendered.html) == ("second\n", "<div>first</div>")


def test_a_composed_message_decodes_to_what_was_rendered_whatever_the_characters():
    from notifier.adapters.templates import RenderedEmail

    text = "Línea one\n.\n. dot\ntrailing space \n" + "x" * 200 + "\nFrom here\n"
    rendered = RenderedEmail(subject="Ñame of a subject long enough to be folded over more than one line, twice over",
                             text=text, html="<p>é & ü</p>\n")
    message = compose(rendered, delivery_id="msg_abc", sender="Número Porting <porting@carrier.example>",
                      recipient="ada@example.com", sent_at=SENT_AT, port_in_request_sid="KW1")
    assert all(len(line) <= 78 for line in message.data.split(b"\r\n"))
    assert b"\n" not in message.data.replace(b"\r\n", b"")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert not parsed.defects and not any(part.defects for part in parsed.walk())
    assert str(parsed["Subject"]) == rendered.subject and str(parsed["From"]) == "Número Porting <porting@carrier.example>"
    assert parsed.get_body(("plain",)).get_content() == text
    assert parsed.get_body(("html",)).get_content() == rendered.html
    assert (message.sender, message.recipient) == ("porting@carrier.example", "ada@example.com")
    assert [part["Content-Transfer-Encoding"] for part in parsed.iter_parts()] == ["quoted-printable"] * 2
    plain = RenderedEmail(subject="Plain", text="ASCII lines\n.\nonly\n", html="<p>ascii</p>\n")
    parsed = message_from_bytes(compose(plain, delivery_id="msg_abc", sender="porting@carrier.example",
                                        recipient="ada@example.com", sent_at=SENT_AT,
                                        port_in_request_sid="KW1").as_bytes(), policy=policy.default)
    assert [part["Content-Transfer-Encoding"] for part in parsed.iter_parts()] == ["7bit"] * 2
    assert (parsed.get_body(("plain",)).get_content(), parsed.get_body(("html",)).get_content()) == (
        plain.text, plain.html)
    with pytest.raises(ValueError):
        compose(rendered, delivery_id="msg_abc", sender="porting@carrier.example", recipient="a@b.c\r\nBcc: x@y.z",
                sent_at=SENT_AT, port_in_request_sid="KW1")




@pytest.mark.parametrize(("text", "encoding"), [
    ("a\n" + "x" * 998 + "\nb\n", "7bit"),               # a line of 998 octets is the most 7bit carries
    ("a\n" + "x" * 999 + "\nb\n", "quoted-printable"),
    ("x" * 999, "quoted-printable"),                     # the last line, without a line end
    ("blank ending a line \nb\n", "quoted-printable"),
    ("tab ending a line\t\nb\n", "quoted-printable"),
    ("blank ending the text ", "quoted-printable"),
    ("a lone\rCR\n", "quoted-printable"),
    ("\r\r\nCR before the first line end\n", "quoted-printable"),
    ("a NUL\0\n", "quoted-printable"),
    ("inner blanks \t stay 7bit\n\n", "7bit"),
])
def test_a_part_goes_7bit_only_when_every_line_reaches_the_server_unchanged(text, encoding):
    from notifier.adapters.templates import RenderedEmail

    message = compose(RenderedEmail(subject="S", text=text, html="<p>h</p>\n"), delivery_id="msg_abc",
                      sender="porting@carrier.example", recipient="ada@example.com", sent_at=SENT_AT,
                      port_in_request_sid="KW1")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert [part["Content-Transfer-Encoding"] for part in parsed.iter_parts()][0] == encoding
    assert parsed.get_body(("plain",)).get_content() == text.replace("\r\n", "\n")
    body = message.data.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n")) or encoding == "7bit"


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.DELIVERED), (204, Outcome.DELIVERED), (400, Outcome.FAILED), (404, Outcome.FAILED),
    (410, Outcome.FAILED), (408, Outcome.RETRYABLE), (429, Outcome.RETRYABLE), (500, Outcome.RETRYABLE),
    (503, Outcome.RETRYABLE), (302, Outcome.RETRYABLE),
])
def test_webhook_answers_are_classified_as_delivered_final_or_worth_retrying(status, outcome):
    assert classify_http_status(status) is outcome


def test_smtp_refusals_are_final_only_when_permanent():
    assert classify_smtp_reply(550) is Outcome.FAILED
    assert classify_smtp_reply(451) is Outcome.RETRYABLE


def test_retries_back_off_exponentially_up_to_a_ceiling_and_stop_at_the_give_up_time():
    retry = RetryPolicy(first_delay=timedelta(seconds=30), multiplier=2, max_delay=timedelta(hours=1),
                        give_up_after=timedelta(hours=24), spread=0)
    recorded = SENT_AT
    delays = [retry.next_attempt("msg_x", attempts_made=n, recorded_at=recorded, now=recorded) - recorded
              for n in (1, 2, 3, 10)]
    assert delays == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120), timedelta(hours=1)]
    near_the_end = recorded + timedelta(hours=23, minutes=59)
    assert retry.next_attempt("msg_x", attempts_made=40, recorded_at=recorded, now=near_the_end) == recorded + timedelta(hours=24)
    assert retry.next_attempt("msg_x", attempts_made=41, recorded_at=recorded, now=recorded + timedelta(hours=24)) is None


def test_a_receivers_retry_after_is_honoured_and_each_delivery_keeps_its_own_spread():
    retry = RetryPolicy()
    assert retry.next_attempt("msg_a", attempts_made=1, recorded_at=SENT_AT, now=SENT_AT,
                              retry_after=600) == SENT_AT + timedelta(seconds=600)
    assert retry.delay("msg_a", 1) == retry.delay("msg_a", 1)
    spreads = {retry.delay(f"msg_{i}", 1) for i in range(20)}
    assert len(spreads) > 1 and all(timedelta(seconds=30) <= d <= timedelta(seconds=36) for d in spreads)


def test_a_receivers_control_characters_in_an_attempts_detail_are_shown_not_kept_so_its_alert_is_valid():
    result = AttemptResult(Outcome.FAILED, "refused: 550 no such user\x00\x1b[31m\x9b" + "x" * 600)
    assert result.detail.startswith("refused: 550 no such user\ufffd\ufffd[31m\ufffd") and len(result.detail) == 500
    alert = PortAlertRaised(port_in_request_sid="KW" + "a" * 32, alert=AlertKind.DELIVERY_GAVE_UP,
                            message=f"Last attempt: {result.detail}", raised_at=datetime(2027, 1, 4, tzinfo=UTC))
    assert "\x00" not in alert.message


@pytest.mark.parametrize("sending, unrecorded, room", [
    (0, 0, 32),    # idle: the limit sends and as many wait
    (10, 10, 22),  # refilled as sends go out
    (16, 60, 4),   # the recorder behind: only what keeps within four times the limit
    (0, 64, 0),    # four times the limit unrecorded: no claim until outcomes are recorded
    (0, 70, -6),
])
def test_a_sender_claims_to_keep_its_sends_busy_but_no_further_than_its_recorder_keeps_up(sending, unrecorded, room):
    assert claim_room(16, sending, unrecorded) == room


def test_direction_overrides_in_a_carriers_reason_never_reach_the_customers_email():
    """A reason written with U+202E displays reversed: "call the original" text spoofed."""
    spoofed = "Account number mismatch \u202elanigiro eht ot 0099-555-888 llac\u2066 \u202c"
    event = status_changed("in_progress", "action_required", phone_numbers=[
        {"phone_number": US, "status_from": "port_submitted", "status_to": "port_rejected",
         "reason_code": "ACCOUNT_NUMBER_MISMATCH", "reason": spoofed}])
    [notification] = [n for n in announce(event, POLICY).notifications if n.channel is Channel.EMAIL]
    rendered = TEMPLATES.render("action_required", notification.payload)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert not {"\u202e", "\u2066", "\u202c"} & set(part)
    assert "Account number mismatch lanigiro eht ot 0099-555-888 llac" in rendered.text


@pytest.mark.parametrize(("status_to", "keep_active"), [("in_progress", True), ("completed", False)])
def test_a_completion_while_other_numbers_are_unnamed_but_still_porting_keeps_the_old_account_open(status_to, keep_active):
    # As the workflow publishes it: only the number that changed, the request's status after.
    event = status_changed("in_progress", status_to, [(CA, "scheduled", "completed")])
    [email] = [n for n in announce(event, POLICY).notifications if n.channel is Channel.EMAIL]
    text = TEMPLATES.render(email.kind, email.payload).text
    html = TEMPLATES.render(email.kind, email.payload).html
    assert ("Keep your account with your previous carrier active" in text) is keep_active
    assert ("stop service on the old account" in text) is not keep_active
    assert ("Keep your account with your previous carrier active" in html) is keep_active


def test_a_cancellation_of_some_numbers_says_the_others_keep_porting_even_unnamed():
    event = status_changed("in_progress", "in_progress", [(US, "scheduled", "canceled")])
    [email] = [n for n in announce(event, POLICY).notifications if n.channel is Channel.EMAIL]
    assert email.kind == "port_canceled"
    assert "The other numbers of the request keep porting." in TEMPLATES.render(email.kind, email.payload).text


@pytest.mark.parametrize(("status_to", "says"), [
    ("expired", "so it has expired"),
    ("completed", "those numbers are no longer being ported"),
    ("in_progress", "The request's other numbers keep porting"),
])
def test_an_expiry_tells_the_customer_which_numbers_stopped_whatever_the_request_became(status_to, says):
    # The expiry timer's change, as the workflow publishes it: no number moves, reason EXPIRED.
    event = status_changed("action_required", status_to, [], reason_code="EXPIRED",
                           reason="No corrected details arrived within 30 days of the rejection.")
    [email] = [n for n in announce(event, POLICY).notifications if n.channel is Channel.EMAIL]
    assert email.kind == "request_expired"
    rendered = TEMPLATES.render(email.kind, email.payload)
    assert says in rendered.text and says in rendered.html
    assert "keep that account active" in rendered.text and "stop service" not in rendered.text


def test_a_completion_never_tells_the_customer_to_stop_the_old_account_outright():
    # A request can end completed with a number that never ported (not portable, canceled, expired).
    event = status_changed("in_progress", "completed", [(US, "scheduled", "completed")])
    [email] = [n for n in announce(event, POLICY).notifications if n.channel is Channel.EMAIL]
    text = TEMPLATES.render(email.kind, email.payload).text
    assert "Once every number you asked us to port has ported" in text and "keep it active for any number" in text
