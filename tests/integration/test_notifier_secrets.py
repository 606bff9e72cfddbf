"""No PIN or account number reaches a template, an e-mail or a webhook.

The secrets of a PortSubmitted-like payload are fed in every way they could arrive: as fields
smuggled into the events the notifier reads (the contract refuses them), and quoted in the
free text those events do carry (redacted). Then the mail the catcher kept and the webhook
bodies and headers the receiver got are searched for them.
"""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from notifier.adapters.mail_catcher import catching_mail
from notifier.adapters.smtp import SmtpSender
from notifier.adapters.templates import EmailTemplates, compose, load_fix_advice
from notifier.adapters.webhook_client import WebhookClient
from notifier.domain.announcements import NotifierPolicy, announce
from notifier.domain.deliveries import Channel
from notifier.domain.webhooks import webhook_bytes
from porting_runtime import MovableClock
from schemas import ContractViolation, KafkaRecord, PortSubmitted, decode, encode

from ..factories import port_requested_payload
from ..kafka_support import publish, rows_are, wait_until
from ..unit.notifier.events import alert_raised, cancellation_denied, status_changed
from .test_notifier_service import OPS, _count, notifier_settings, publish_events, running_notifier
from .test_notifier_support import LOCAL_RECEIVERS, signing_secret, webhook_receiver

PIN, ACCOUNT_NUMBER = "738261", "ACCT-55419-ZQ"
SECRETS = (PIN, ACCOUNT_NUMBER)
QUOTING = f"Carrier says: PIN {PIN} does not match and account number {ACCOUNT_NUMBER} is unknown"


def port_submitted_payload() -> dict:
    requested = port_requested_payload()
    requested["phone_numbers"] = [{"phone_number": "+14155550100", "pin": PIN}]
    requested["losing_carrier_information"]["account_number"] = ACCOUNT_NUMBER
    return {key: requested[key] for key in ("port_in_request_sid", "account_sid", "revision", "phone_numbers",
                                            "losing_carrier_information")} | {"submitted_at": datetime.now(UTC).isoformat()}


def events_quoting_the_secrets():
    number = {"phone_number": "+14155550100", "status_from": "port_submitted", "status_to": "port_rejected",
              "reason_code": "INVALID_PIN", "reason": QUOTING}
    return [
        status_changed("in_progress", "action_required", phone_numbers=[number], reason_code="INVALID_PIN", reason=QUOTING),
        status_changed("action_required", "expired", reason_code="INVALID_ACCOUNT_NUMBER", reason=QUOTING),
        cancellation_denied(reason=QUOTING),
        alert_raised("carrier_sla_breached", message=QUOTING),
    ]


@pytest.mark.parametrize("topic_event", ["porting.port-status-changed.v1", "porting.cancellation-denied.v1",
                                         "porting.port-alert-raised.v1"])
def test_a_port_submitted_payload_with_its_secrets_is_refused_on_every_topic_the_notifier_reads(topic_event):
    submitted = PortSubmitted.model_validate(port_submitted_payload())
    record = encode(submitted, source="tests")
    headers = [(name, value if name != "ce_type" else topic_event.encode()) for name, value in record.headers]
    with pytest.raises(ContractViolation):
        decode(headers, record.value, expected_type=topic_event)
    # Nor can they ride along as extra fields of an otherwise valid status change.
    valid = status_changed("in_progress", "in_progress").data
    smuggled = json.loads(valid.model_dump_json())
    smuggled["phone_numbers"] = [{"phone_number": "+14155550100", "status_from": "port_submitted",
                                  "status_to": "port_pending", "pin": PIN}]
    smuggled["losing_carrier_information"] = {"account_number": ACCOUNT_NUMBER}
    with pytest.raises(ContractViolation, match="pin"):
        decode(encode(valid, source="tests").headers, json.dumps(smuggled).encode(),
               expected_type=valid.event_type)


async def test_secrets_quoted_in_free_text_reach_no_email_and_no_webhook(tmp_path: Path):
    policy = NotifierPolicy(ops_alert_emails=("ops@carrier.example",), advice=load_fix_advice())
    notifications = [n for event in events_quoting_the_secrets() for n in announce(event, policy).notifications]
    assert {n.channel for n in notifications} == {Channel.EMAIL, Channel.WEBHOOK}
    for notification in notifications:
        stored = json.dumps(notification.payload)
        assert not any(secret in stored for secret in SECRETS), notification.kind
    templates = EmailTemplates()
    secret = signing_secret()
    async with catching_mail(tmp_path / "mail") as port, webhook_receiver() as receiver:
        sender, client = SmtpSender(host="127.0.0.1", port=port), WebhookClient(secret, targets=LOCAL_RECEIVERS)
        for n in notifications:
            if n.channel is Channel.EMAIL:
                message = compose(templates.render(n.kind, n.payload), delivery_id=n.delivery_id,
                                  sender="porting@carrier.example", recipient=n.recipient,
                                  sent_at=datetime.now(UTC), port_in_request_sid=n.port_in_request_sid)
                assert (await sender.send(message)).outcome.value == "delivered"
            else:
                assert (await client.post(receiver.url, n.delivery_id, webhook_bytes(dict(n.payload)))).outcome.value == "delivered"
        await sender.close()
        await client.close()
    mail_files = [p for p in (tmp_path / "mail").rglob("*") if p.is_file()]
    assert len(mail_files) == sum(n.channel is Channel.EMAIL for n in notifications)
    assert len(receiver.calls) == sum(n.channel is Channel.WEBHOOK for n in notifications)
    everything = mail_as_sent_and_as_read(mail_files) + b"".join(
        c.body + json.dumps(c.headers).encode() for c in receiver.calls)
    assert b"does not match" in everything, "the reason itself still reaches the customer"
    for value in SECRETS:
        assert value.encode() not in everything


async def test_through_the_running_service_no_secret_reaches_its_store_its_mail_or_its_webhooks(settings, tmp_path):
    secret, clock = signing_secret(), MovableClock(datetime.now(UTC))
    async with catching_mail(tmp_path / "mail") as smtp_port, webhook_receiver() as receiver:
        events = [replace_webhook(e, receiver.url) for e in events_quoting_the_secrets()]
        valid = events[0].data
        # A PortSubmitted's bytes on the status topic, as a misbehaving publisher would send them.
        submitted = json.dumps(port_submitted_payload() | {"port_in_request_sid": valid.port_in_request_sid}).encode()
        smuggled = KafkaRecord(topic=settings.topic(valid.event_type), key=valid.port_in_request_sid.encode(),
                               value=submitted, headers=encode(valid, source="tests").headers)
        async with running_notifier(notifier_settings(settings, smtp_port, secret), clock):
            await publish_events(settings, *events)
            await publish(settings, [smuggled])
            await wait_until(lambda: rows_are(settings, "dead_letters", 1), what="the PortSubmitted dead-lettered")
            expected = sum(len(announce(e, POLICY).notifications) for e in events)
            await wait_until(lambda: _count(settings, "delivered", expected), what="every notification delivered")
    stored = await every_value_in_the_store(settings)
    assert b"[redacted]" in stored, "the carrier's text reached the store, without the secrets"
    mail = mail_as_sent_and_as_read([p for p in (tmp_path / "mail").rglob("*") if p.is_file()])
    hooks = b"".join(c.body + json.dumps(c.headers).encode() for c in receiver.calls)
    assert mail and hooks
    for value in SECRETS:
        assert value.encode() not in stored and value.encode() not in mail and value.encode() not in hooks


POLICY = NotifierPolicy(ops_alert_emails=(OPS,), advice=load_fix_advice())


def mail_as_sent_and_as_read(files: list[Path]) -> bytes:
    """The raw messages, and their parts decoded (a transfer encoding could split a value)."""
    found = []
    for path in files:
        raw = path.read_bytes()
        message = message_from_bytes(raw, policy=policy.default)
        found.append(raw)
        found += [part.get_content().encode() for part in message.walk() if part.get_content_maintype() == "text"]
    return b"\n".join(found)


def replace_webhook(event, url):
    data = event.data
    if "webhook_url" not in type(data).model_fields:
        return event
    changed = type(data).model_validate({**data.model_dump(mode="json"), "webhook_url": url})
    return type(event)(attributes=event.attributes, data=changed)


async def every_value_in_the_store(settings) -> bytes:
    """Every value of every table of the notifier's database, bytes as they are."""
    connection = await asyncpg.connect(settings.database_url)
    try:
        tables = [r["tablename"] for r in await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        found = []
        for table in tables:
            for row in await connection.fetch(f'SELECT * FROM "{table}"'):
                for value in row.values():
                    found.append(value if isinstance(value, bytes) else
                                 b"".join(v if isinstance(v, bytes) else str(v).encode() for v in value)
                                 if isinstance(value, list) else str(value).encode())
        return b"\n".join(found)
    finally:
        await connection.close()
