"""The notifier's adapters against real local servers: SMTP into the catcher and back out of its
Maildir, signed webhooks verified by the Standard Webhooks library, outcomes classified."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import sys
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from typer.testing import CliRunner

from notifier.adapters.mail_catcher import catching_mail, find_mail, read_mail
from notifier.adapters.smtp import OPENING_AT_ONCE, SmtpSender
from notifier.adapters.templates import EmailTemplates, RenderedEmail, compose
from notifier.adapters.webhook_client import WebhookClient
from notifier.domain.attempts import Outcome
from notifier.domain.webhooks import webhook_body, webhook_bytes
from notifier.entrypoints.cli import register
from porting_cli.embedded import free_port

from ..unit.notifier.test_templates_and_retries import rendered_notifications
from .test_notifier_support import (LOCAL_RECEIVERS, REFUSED_DOMAIN, refusing_catcher, signing_secret, silent_receiver,
                                   webhook_receiver)

SID = "KW" + "ab" * 16
NOW = datetime.now(UTC)
BODY = webhook_bytes(webhook_body("PortInPhoneNumberCompleted", port_in_request_sid=SID, phone_number="+14155550100",
                                  status="completed", last_date_updated=NOW, rejection_reason=None,
                                  rejection_reason_code=None, port_date=NOW.date()))


def message(recipient: str, delivery_id: str = "msg_test0001"):
    rendered = RenderedEmail(subject="Your port is complete", text="ported\n", html="<p>ported</p>")
    return compose(rendered, delivery_id=delivery_id, sender="Porting <porting@carrier.example>",
                   recipient=recipient, sent_at=NOW, port_in_request_sid=SID)


async def test_mail_sent_over_smtp_is_kept_by_the_catcher_and_read_back_with_both_parts(tmp_path):
    async with catching_mail(tmp_path / "mail") as port:
        sender = SmtpSender(host="127.0.0.1", port=port)
        results = [await sender.send(message(f"ada{i}@example.com", f"msg_test000{i}")) for i in range(3)]
        await sender.close()
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 3
    mails = read_mail(tmp_path / "mail")
    assert [m.recipients for m in mails] == ["ada0@example.com", "ada1@example.com", "ada2@example.com"]
    assert mails[0].subject == "Your port is complete" and mails[0].text == "ported\n"
    assert "<p>ported</p>" in mails[0].html
    assert find_mail(tmp_path / "mail", "msg_test0001").recipients == "ada1@example.com"
    assert find_mail(tmp_path / "mail", mails[2].id).id == mails[2].id
    assert find_mail(tmp_path / "mail", mails[2].id[:3]) is None, "an ambiguous prefix names no message"


async def test_porting_mail_list_and_show_read_the_catchers_maildir(tmp_path):
    async with catching_mail(tmp_path / "mail") as port:
        sender = SmtpSender(host="127.0.0.1", port=port)
        assert (await sender.send(message("grace@example.com"))).outcome is Outcome.DELIVERED
        await sender.close()
    import typer

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    listing = runner.invoke(app, ["mail", "list", "--maildir", str(tmp_path / "mail")], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and "grace@example.com" in listing.output and "Your port is complete" in listing.output
    [mail] = read_mail(tmp_path / "mail")
    shown = runner.invoke(app, ["mail", "show", mail.id, "--maildir", str(tmp_path / "mail")])
    assert shown.exit_code == 0 and "Message-ID: <msg_test0001@carrier.example>" in shown.output and "ported" in shown.output
    missing = runner.invoke(app, ["mail", "show", "nothing-like-it", "--maildir", str(tmp_path / "mail")])
    assert missing.exit_code == 2


async def test_a_recipient_refused_for_good_is_a_final_failure_and_no_server_is_retryable(tmp_path):
    async with refusing_catcher(tmp_path / "mail") as port:
        sender = SmtpSender(host="127.0.0.1", port=port)
        refused = await sender.send(message(f"nobody@{REFUSED_DOMAIN}"))
        accepted = await sender.send(message("ada@example.com"))
        await sender.close()
    assert refused.outcome is Outcome.FAILED and "550" in refused.detail
    assert accepted.outcome is Outcome.DELIVERED
    nobody_listening = SmtpSender(host="127.0.0.1", port=free_port(), timeout_seconds=2)
    unreachable = await nobody_listening.send(message("ada@example.com"))
    assert unreachable.outcome is Outcome.RETRYABLE


class _EnvelopeKeeper:
    """An aiosmtpd handler keeping each envelope's MAIL parameters and content as received."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((list(envelope.mail_options), list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@pytest.mark.parametrize("esmtp", [True, False], ids=["esmtp", "helo-only"])
async def test_a_message_goes_whole_with_its_size_declared_and_a_leading_dot_kept(esmtp):
    from aiosmtpd.smtp import SMTP

    class HeloOnly(SMTP):
        async def smtp_EHLO(self, hostname):
            await self.push("502 5.5.1 EHLO not implemented")

    keeper, connections = _EnvelopeKeeper(), []

    def server_for_a_connection():
        connections.append(1)
        return (SMTP if esmtp else HeloOnly)(keeper, enable_SMTPUTF8=True, data_size_limit=1_000_000)

    server = await asyncio.get_running_loop().create_server(server_for_a_connection, "127.0.0.1", 0)
    try:
        sender = SmtpSender(host="127.0.0.1", port=server.sockets[0].getsockname()[1])
        rendered = RenderedEmail(subject="S", text="line\n.\n..two dots\nend\n", html="<p>h</p>\n")
        sent = compose(rendered, delivery_id="msg_size", sender="porting@carrier.example",
                       recipient="ada@example.com", sent_at=NOW, port_in_request_sid=SID)
        results = [await sender.send(sent), await sender.send(sent)]  # the second on the kept connection
        await sender.close()
    finally:
        server.close()
        await server.wait_closed()
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 2, results
    assert len(connections) == 1 and len(keeper.mails) == 2, "both on one connection, its EHLO remembered"
    for options, recipients, content in keeper.mails:
        assert content == sent.data and recipients == ["ada@example.com"]
        assert options == ([f"SIZE={len(sent.data)}"] if esmtp else [])


async def test_a_relay_too_busy_to_greet_is_retried_with_its_own_reply_as_the_reason():
    from aiosmtpd.smtp import SMTP

    class TooBusy(SMTP):
        async def smtp_EHLO(self, hostname):
            await self.push("421 4.7.0 too busy, try later")
            self.transport.close()

    server = await asyncio.get_running_loop().create_server(lambda: TooBusy(_EnvelopeKeeper()), "127.0.0.1", 0)
    try:
        sender = SmtpSender(host="127.0.0.1", port=server.sockets[0].getsockname()[1], timeout_seconds=5)
        result = await sender.send(message("ada@example.com"))
        await sender.close()
    finally:
        server.close()
        await server.wait_closed()
    assert result.outcome is Outcome.RETRYABLE and result.status_code == 421 and "too busy" in result.detail, result


async def test_a_message_over_the_relays_size_limit_is_refused_for_good_at_mail_from():
    from aiosmtpd.smtp import SMTP

    keeper = _EnvelopeKeeper()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(keeper, data_size_limit=500),
                                                            "127.0.0.1", 0)
    try:
        sender = SmtpSender(host="127.0.0.1", port=server.sockets[0].getsockname()[1])
        result = await sender.send(message("ada@example.com"))
        await sender.close()
    finally:
        server.close()
        await server.wait_closed()
    assert result.outcome is Outcome.FAILED and result.status_code == 552 and not keeper.mails, result


async def test_an_internationalised_recipient_is_sent_with_smtputf8_and_refused_where_the_server_lacks_it():
    from aiosmtpd.smtp import SMTP

    results, kept = {}, {}
    for utf8 in (True, False):
        keeper = _EnvelopeKeeper()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(keeper, enable_SMTPUTF8=utf8), "127.0.0.1", 0)
        try:
            sender = SmtpSender(host="127.0.0.1", port=server.sockets[0].getsockname()[1])
            results[utf8] = await sender.send(message("josé@exämple.com"))
            await sender.close()
        finally:
            server.close()
            await server.wait_closed()
        kept[utf8] = keeper.mails
    assert results[True].outcome is Outcome.DELIVERED
    [(options, recipients, _)] = kept[True]
    assert "SMTPUTF8" in options and recipients == ["josé@exämple.com"]
    assert results[False].outcome is Outcome.RETRYABLE and "SMTPUTF8" in results[False].detail and not kept[False]


async def test_a_received_webhook_verifies_with_the_standard_webhooks_library_and_a_tampered_one_does_not():
    secret = signing_secret()
    async with webhook_receiver() as receiver:
        client = WebhookClient(secret, targets=LOCAL_RECEIVERS)
        result = await client.post(receiver.url, "msg_delivery01", BODY)
        await client.close()
    assert result.outcome is Outcome.DELIVERED and result.status_code == 200
    [call] = receiver.calls
    verifier = Webhook(secret)
    assert verifier.verify(call.body, call.headers) == json.loads(BODY)
    assert call.headers["webhook-id"] == "msg_delivery01"
    payload = json.loads(call.body)
    assert payload["type"] == "PortInPhoneNumberCompleted" and payload["data"]["port_in_request_sid"] == SID
    with pytest.raises(WebhookVerificationError):
        verifier.verify(call.body.replace(b"completed", b"canceled"), call.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing_secret()).verify(call.body, call.headers)


async def test_a_webhook_replayed_later_fails_verification_for_its_old_timestamp():
    secret = signing_secret()
    client = WebhookClient(secret)
    old = datetime.now(UTC) - timedelta(minutes=10)
    headers = client.signed_headers("msg_delivery02", BODY, old)
    await client.close()
    assert headers["webhook-timestamp"] == str(math.floor(old.timestamp()))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)
    fresh = WebhookClient(secret).signed_headers("msg_delivery02", BODY, datetime.now(UTC))
    assert Webhook(secret).verify(BODY, fresh)


@pytest.mark.parametrize(("answer", "outcome"), [
    (204, Outcome.DELIVERED), (410, Outcome.FAILED), (400, Outcome.FAILED),
    (408, Outcome.RETRYABLE), (429, Outcome.RETRYABLE), (500, Outcome.RETRYABLE), (503, Outcome.RETRYABLE),
])
async def test_each_webhook_answer_is_delivered_final_or_retried(answer, outcome):
    async with webhook_receiver([answer]) as receiver:
        client = WebhookClient(signing_secret(), targets=LOCAL_RECEIVERS)
        result = await client.post(receiver.url, "msg_delivery03", BODY)
        await client.close()
    assert (result.outcome, result.status_code) == (outcome, answer)


async def test_a_receiver_that_never_answers_or_is_not_there_is_retried():
    async with silent_receiver() as receiver:
        client = WebhookClient(signing_secret(), timeout_seconds=0.5, targets=LOCAL_RECEIVERS)
        silent = await client.post(receiver.url, "msg_delivery04", BODY)
        absent = await client.post(f"http://127.0.0.1:{free_port()}/hooks", "msg_delivery04", BODY)
        await client.close()
    assert receiver.connections == 1
    assert silent.outcome is Outcome.RETRYABLE and "in time" in silent.detail
    assert absent.outcome is Outcome.RETRYABLE and "connection failed" in absent.detail


async def test_without_a_signing_secret_nothing_is_sent_unsigned():
    async with webhook_receiver() as receiver:
        client = WebhookClient(None, targets=LOCAL_RECEIVERS)
        result = await client.post(receiver.url, "msg_delivery05", BODY)
        await client.close()
    assert result.outcome is Outcome.RETRYABLE and receiver.calls == []


async def test_every_kind_of_email_crosses_smtp_intact_with_its_subject_and_both_parts(tmp_path):
    templates = EmailTemplates()
    notifications = [n for n in rendered_notifications() if n.channel.value == "email"]
    async with catching_mail(tmp_path / "mail") as port:
        sender = SmtpSender(host="127.0.0.1", port=port, connections=4)
        for n in notifications:
            rendered = templates.render(n.kind, n.payload)
            result = await sender.send(compose(rendered, delivery_id=n.delivery_id, sender="porting@carrier.example",
                                               recipient=n.recipient, sent_at=NOW, port_in_request_sid=n.port_in_request_sid))
            assert result.outcome is Outcome.DELIVERED, result.detail
        await sender.close()
    caught = {m.message_id: m for m in read_mail(tmp_path / "mail")}
    assert len(caught) == len(notifications)
    for n in notifications:
        mail = caught[f"<{n.delivery_id}@carrier.example>"]
        assert mail.subject == templates.render(n.kind, n.payload).subject
        assert mail.text.strip() and mail.html.strip()


async def test_the_catcher_runs_as_the_module_porting_up_starts_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier.entrypoints.smtp_catcher", "--maildir", str(tmp_path / "mail"),
        "--port", str(port), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        ready = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert f"catching mail on 127.0.0.1:{port}" in ready.decode()
        sender = SmtpSender(host="127.0.0.1", port=port)
        assert (await sender.send(message("ada@example.com"))).outcome is Outcome.DELIVERED
        await sender.close()
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=20)
    assert code == 0
    assert [m.recipients for m in read_mail(tmp_path / "mail")] == ["ada@example.com"]


async def test_a_burst_of_sends_opens_its_connections_a_few_at_a_time_and_every_one_is_delivered(tmp_path):
    """Between the sender and the catcher, a relay that holds each new connection 50 ms before
    its greeting counts the connections still waiting for one: never more than the sender opens
    at once, where a burst opening all together overflowed a server's listen queue."""
    waiting, most_waiting = 0, 0

    async with catching_mail(tmp_path / "mail") as catcher_port:
        async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
            nonlocal waiting, most_waiting
            waiting += 1
            most_waiting = max(most_waiting, waiting)
            await asyncio.sleep(0.05)
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", catcher_port)
            greeting = await server_reader.readline()
            waiting -= 1
            client_writer.write(greeting)

            async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.close()

            await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer),
                                 return_exceptions=True)

        server = await asyncio.start_server(relay, "127.0.0.1", 0, backlog=1024)
        sender = SmtpSender(host="127.0.0.1", port=server.sockets[0].getsockname()[1], connections=40,
                            timeout_seconds=10)
        results = await asyncio.gather(*(sender.send(message(f"ada{i}@example.com", f"msg_burst{i:03}"))
                                         for i in range(40)))
        await sender.close()
        server.close()
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 40, {r.detail for r in results}
    assert most_waiting == OPENING_AT_ONCE < 40, most_waiting
    assert len(read_mail(tmp_path / "mail")) == 40


async def test_the_catcher_greets_a_burst_of_connections_larger_than_asyncios_default_listen_queue(tmp_path):
    async def greeted(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await reader.readline()
        finally:
            writer.close()

    # The kernel caps a listen queue at net.core.somaxconn (128 on older kernels): above 100 it shows.
    with open("/proc/sys/net/core/somaxconn") as limit:
        burst = min(300, int(limit.read()))
    if burst <= 100:
        pytest.skip(f"net.core.somaxconn is {burst}: no queue longer than asyncio's default can be had")
    async with catching_mail(tmp_path / "mail") as port:
        greetings = await asyncio.wait_for(asyncio.gather(*(greeted(port) for _ in range(burst))), timeout=20)
    assert all(g.startswith(b"220 ") for g in greetings)


async def test_sends_to_a_relay_that_never_greets_each_fail_within_their_timeout_however_many_wait_to_connect():
    """Connections open a few at a time, and waiting for a turn counts against the send's
    timeout: 40 sends queued behind handshakes that never finish all fail (to be retried) within
    about one timeout, not one timeout per turn (5 here), which could outlast a notification's lease."""
    held: list[asyncio.StreamWriter] = []

    async def never_greet(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0, backlog=1024)
    sender = SmtpSender(host="127.0.0.1", port=server.sockets[0].getsockname()[1], connections=40,
                        timeout_seconds=1.0)
    started = asyncio.get_running_loop().time()
    results = await asyncio.gather(*(sender.send(message(f"ada{i}@example.com", f"msg_hole{i:03}")) for i in range(40)))
    took = asyncio.get_running_loop().time() - started
    await sender.close()
    for writer in held:
        writer.close()
    server.close()
    assert {r.outcome for r in results} == {Outcome.RETRYABLE}
    assert took < 3.0, f"the last send failed after {took:.1f} s"
