"""Hostile upstream fields in a composed e-mail, and hostile bytes at the HTTP server.

E-mail: whatever an upstream puts in a customer's name, a reason, free text or a recipient, what
arrives at the (real, local) SMTP catcher is one well-formed message, to exactly the intended
recipient, with no header or part of the attacker's, decoding back to the text that was rendered.
HTTP: whatever the bytes, each answer is a complete response (errors in the public shape) or a
clean close, never a 5xx or a hang, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import logging
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path

import pytest

from notifier.adapters.mail_catcher import catching_mail, read_mail
from notifier.adapters.smtp import SmtpSender
from notifier.adapters.templates import (
    EmailTemplates, RenderedEmail, UnsendableRecipient, compose,
)
from notifier.domain.attempts import Outcome
from porting_cli.embedded import free_port

SID = "KW" + "ab" * 16
SENDER = "Porting <porting@example.com>"
HOSTILE_TEXTS = {
    "crlf header injection": "Dear Ada\r\nBcc: x@evil.example\r\n\r\nhello",
    "lone cr": "one\rtwo\rBcc: x@evil.example",
    "cr before the first line end": "first\r\r\nsecond",
    "cr at the very start": "\r\r\nx\r",
    "lone lf header look-alike": "one\nBcc: x@evil.example\nContent-Type: text/html",
    "nul": "a\x00b\x00",
    "unicode line separators": "a\u2028b\u2029c\x85d\x0b\x0ce",
    "very long line": "x" * 5000,
    "very long non-ascii line": "é" * 3000,
    "dot lines": ".\n.\n..\n.hidden\nend\n.",
    "from lines": "From me\nFrom nobody Mon Jan  1 00:00:00 2024\n>From x",
    "boundary look-alikes": "--=_0123456789abcdef01234567\n--=_0123456789abcdef01234567--\n--boundary\n=_",
    "rtl and zero width": "\u202eevil\u202c \u200b\u200d\ufeff name",
    "trailing blanks": "line   \nline\t\n",
    "emoji": "👋🏽 port ✅",
    "qp look-alike": "=0D=0A=\nsoft=\n=3D",
    "oversize": ("word " * 40000),
}


def rendered(text: str, subject: str = "Your port request") -> RenderedEmail:
    return RenderedEmail(subject=subject, text=text, html=f"<p>{text}</p>")


def composed(body: RenderedEmail, recipient: str = "ada@example.com", delivery_id: str = "d1"):
    return compose(body, delivery_id=delivery_id, sender=SENDER, recipient=recipient,
                   sent_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), port_in_request_sid=SID)


async def sent_and_caught(tmp_path: Path, messages) -> list:
    maildir = tmp_path / "mail"
    async with catching_mail(maildir) as port:
        sender = SmtpSender(host="127.0.0.1", port=port, timeout_seconds=10)
        try:
            results = [await sender.send(message) for message in messages]
        finally:
            await sender.close()
    assert all(r.outcome is Outcome.DELIVERED for r in results), results
    return read_mail(maildir)


def assert_one_clean_message(raw: bytes, body: RenderedEmail, recipient: str) -> None:
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998 and b"\r" not in line and b"\n" not in line  # no bare CR or LF on the wire
    message = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert not message.defects, message.defects
    assert message.get_all("To") == [recipient]
    assert message["To"].addresses[0].addr_spec == recipient and len(message["To"].addresses) == 1
    assert message.get_all("Bcc") is None and message.get_all("Cc") is None
    top = [key.lower() for key in message.keys()]
    assert sorted(top) == sorted(["content-type", "mime-version", "from", "to", "subject", "date", "message-id",
                                  "auto-submitted", "x-port-in-request-sid"] + top[9:]), top
    assert len(top) == 9, top
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert not part.defects, part.defects
        assert list(part.iter_parts()) == []
    assert str(message["Subject"]) == body.subject
    # What was rendered comes back; a CRLF in the text is a line end, as on any wire.
    assert parts[0].get_content() == body.text.replace("\r\n", "\n")
    assert parts[1].get_content() == body.html.replace("\r\n", "\n")


@pytest.mark.parametrize("name", HOSTILE_TEXTS)
def test_hostile_text_composes_to_one_clean_message_decoding_to_what_was_rendered(name):
    body = rendered(HOSTILE_TEXTS[name])
    message = composed(body)
    assert_one_clean_message(message.data, body, "ada@example.com")
    assert b"\r\n" in message.data and b"\n" not in message.data.replace(b"\r\n", b"")
    assert b"\r" not in message.data.replace(b"\r\n", b"")


async def test_hostile_texts_arrive_through_smtp_as_one_message_each_to_the_intended_recipient(tmp_path):
    bodies = [rendered(text) for text in HOSTILE_TEXTS.values()]
    messages = [composed(body, delivery_id=f"d{i}") for i, body in enumerate(bodies)]
    caught = await sent_and_caught(tmp_path, messages)
    assert len(caught) == len(bodies)
    by_id = {mail.message_id: mail for mail in caught}
    for message, body in zip(messages, bodies, strict=True):
        mail = by_id[message.message_id]
        assert mail.recipients == "ada@example.com"
        assert mail.text == body.text.replace("\r\n", "\n")
        assert mail.html == body.html.replace("\r\n", "\n")


@pytest.mark.parametrize("subject", ["👋🏽 Your port ✅ " * 8, "Über " + "ä" * 200, "=?utf-8?q?fake?= subject",
                                     "x" * 2000, "\u202eevil\u200b subject"])
def test_a_hostile_subject_stays_one_header_decoding_to_itself(subject):
    body = rendered("hello", subject=subject)
    assert_one_clean_message(composed(body).data, body, "ada@example.com")


def test_a_subject_loses_line_breaks_and_control_characters_when_rendered(tmp_path):
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "hello.txt").write_text("Subject: Hi {{ name }}\n\nHello {{ name }}\n")
    (tmp_path / "email" / "hello.html").write_text("<p>{{ subject }}</p>")
    name = "Ada\r\nBcc: x@evil.example\x00\x1b[31m\u2028\x85\x7fX"
    body = EmailTemplates(tmp_path).render("hello", {"name": name})
    assert not any(ord(c) < 32 or ord(c) == 127 or c in "\u2028\x85" for c in body.subject), body.subject
    message = composed(body)
    head = message.data.split(b"\r\n\r\n", 1)[0]
    assert b"\x00" not in head and b"\x1b" not in head and b"\x7f" not in head
    assert_one_clean_message(message.data, body, "ada@example.com")


# Recipients the event schema's EmailAddress pattern lets through (one "@", no whitespace) that are
# not one plain address: a comma or semicolon (a second recipient in To), a comment, a group, brackets,
# quotes, NUL. aiosmtplib's envelope parse would send "evil,victim@x.com" to <evil>.
NOT_ONE_ADDRESS = ["evil,victim@example.com", "ada@example.com,postmaster", "ada@example.com;root",
                   "(comment)ada@example.com", "group:ada@example.com", "ada@example.com>x",
                   "x<ada@example.com", "ada\x00@example.com", "ada@example.com\x00", 'a"b@example.com',
                   "ada@[127.0.0.1]\\", "ada@example.com\r\nBcc: x@evil", "ada@example.com\n",
                   "ada@exa\u2028mple.com", "ada@example.com\x85", "ada\x1b@example.com", "@example.com", "ada@"]


@pytest.mark.parametrize("recipient", NOT_ONE_ADDRESS)
def test_a_recipient_that_is_not_one_plain_address_is_refused_before_sending(recipient):
    with pytest.raises(UnsendableRecipient):
        composed(rendered("hello"), recipient=recipient)


@pytest.mark.parametrize("delivery_id", ["d1\r\nBcc: x@evil", "d1\n", "d1\x00"])
def test_a_line_break_or_nul_in_the_delivery_id_is_refused(delivery_id):
    with pytest.raises(ValueError):
        composed(rendered("hello"), delivery_id=delivery_id)


async def test_a_non_ascii_recipient_arrives_to_that_recipient_only(tmp_path):
    body = rendered("hello")
    message = composed(body, recipient="zoë@exämple.com")
    caught = await sent_and_caught(tmp_path, [message])
    assert [mail.recipients for mail in caught] == ["zoë@exämple.com"]
    assert caught[0].text == "hello"


async def test_a_refused_recipient_is_a_final_failure_with_its_reason_not_a_retry():
    from notifier.service_layer import sending

    class Item:
        channel, kind, delivery_id, port_in_request_sid = "email", "hello", "d1", SID
        recipient, payload = "evil,victim@example.com", {}

    class Templates:
        def render(self, kind, context):
            return rendered("hello")

    class Smtp:
        async def send(self, message):  # pragma: no cover - must not be reached
            raise AssertionError("sent")

    class Settings:
        notifier_from_address = SENDER

    worker = object.__new__(sending._SenderRun)
    worker.templates, worker.smtp, worker.settings = Templates(), Smtp(), Settings()
    result = await sending._SenderRun.send(worker, Item())
    assert result.outcome is Outcome.FAILED
    assert "recipient" in result.detail


# --- HTTP: raw bytes at the server (http_server, uvicorn on h11 with the public 400) -------------

PUBLIC_400 = {"code": 20001, "message": "The request is not valid HTTP/1.1.",
              "more_info": "https://www.twilio.com/docs/errors/20001", "status": 400}


async def http_app(scope, receive, send):
    """Answers 200 "ok"; /read reads the whole body first (as a handler taking a body does)."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/read":
        while (await receive()).get("more_body"):
            pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
async def http_port():
    kept = _Kept()
    watched = [logging.getLogger(name) for name in ("uvicorn.error", "asyncio")]
    for logger in watched:
        logger.addHandler(kept)

    from porting_runtime.http_server import http_server

    port = free_port()
    server = http_server(http_app, "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    await task
    for logger in watched:
        logger.removeHandler(kept)
    assert not kept.messages, kept.messages  # no "Exception in ASGI application", no fatal protocol error


async def exchange(port: int, *pieces: bytes, idle: float = 1.0) -> bytes:
    """Sends each piece (a pause between), then reads until the server closes or is idle."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.1)
        answer = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), idle)
            except (TimeoutError, ConnectionResetError):
                return answer + b"<open>"
            if not chunk:
                return answer
            answer += chunk
    finally:
        writer.close()


def responses(answer: bytes) -> list[tuple[int, bytes]]:
    """The complete responses in an answer (status, body), asserting each is complete."""
    found = []
    rest = answer.removesuffix(b"<open>")
    while rest:
        head, separator, rest = rest.partition(b"\r\n\r\n")
        assert separator, answer
        status = int(head.split(b" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])}
        if b"content-length" in headers:
            size = int(headers[b"content-length"])
            body, rest = rest[:size], rest[size:]
            assert len(body) == size, answer
        elif headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                body, rest = body + rest[:size], rest[size + 2:]
                if size == 0:
                    break
        else:
            body, rest = rest, b""
        if status >= 400:
            assert status < 500 and json.loads(body) == PUBLIC_400, answer
        found.append((status, body))
    return found


async def test_a_bad_request_pipelined_after_a_good_one_gets_the_answer_then_the_public_400(http_port):
    answer = await exchange(http_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\x00\r\n\r\n")
    assert [status for status, _ in responses(answer)] == [200, 400] and not answer.endswith(b"<open>")


async def test_a_good_request_after_a_bad_one_is_not_served_on_the_closed_connection(http_port):
    answer = await exchange(http_port, b"G@T / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [status for status, _ in responses(answer)] == [400] and not answer.endswith(b"<open>")


@pytest.mark.parametrize("request_bytes", [
    b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n",
    b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET / HTTP/1.1\r\n\r\n",
])
async def test_an_unparseable_request_is_answered_400_in_the_public_shape_and_closed(http_port, request_bytes):
    answer = await exchange(http_port, request_bytes)
    assert not answer.endswith(b"<open>") or answer == b"<open>"  # a reset after a huge head is a close
    assert all(status == 400 for status, _ in responses(answer))


@pytest.mark.parametrize("size", [200 * 1024, 900 * 1024])
async def test_a_head_far_over_the_limit_sent_whole_still_gets_its_public_400(http_port, size):
    # As a client does that writes its whole request before it reads: the server refused the head
    # after 16 KiB, and the rest must not make the kernel reset the answer away.
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * size + b"\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert [status for status, _ in responses(answer)] == [400]


async def test_a_client_that_keeps_sending_after_its_400_is_closed_after_the_lingering_time(http_port):
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    try:
        writer.write(b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 400")
        closed = False
        for _ in range(200):  # a trickle that never stops, under the byte cap, for up to 10 s
            try:
                writer.write(b"x" * 100)
                await writer.drain()
            except ConnectionError:
                closed = True
                break
            except RuntimeError as error:  # uvloop's word for a write to a transport the peer closed
                assert "closed" in str(error), error
                closed = True
                break
            await asyncio.sleep(0.05)
    finally:
        writer.close()
    assert closed, "the connection was still open after 10 s of lingering"


async def test_a_bad_chunk_after_the_app_began_reading_the_body_is_a_public_400_without_an_app_error(http_port):
    answer = await exchange(http_port, b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                            b"zz\r\n")
    assert [status for status, _ in responses(answer)] == [400]


async def test_a_bad_chunk_after_the_app_already_answered_closes_cleanly_without_a_fatal_error(http_port):
    answer = await exchange(http_port, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                            b"zz\r\n")
    assert [status for status, _ in responses(answer)] == [200] and not answer.endswith(b"<open>")


async def test_http_1_0_absolute_form_and_expect_continue_are_served(http_port):
    assert responses(await exchange(http_port, b"GET / HTTP/1.0\r\n\r\n")) == [(200, b"ok")]
    assert [s for s, _ in responses(await exchange(http_port, b"GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n"))] == [200]
    answer = await exchange(http_port, b"POST /read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
                            b"ab")
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert responses(answer.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")) == [(200, b"ok")]


async def test_the_server_keeps_serving_after_every_hostile_connection(http_port):
    await exchange(http_port, b"GET / HTTP/1.1\r\nHo", idle=0.2)  # a half-sent head, abandoned
    for junk in (b"\x16\x03\x01\x00\xa5", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"\r\n" * 1000):
        await exchange(http_port, junk, idle=0.3)
    assert responses(await exchange(http_port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == [(200, b"ok")]


async def test_a_head_that_stops_half_sent_has_its_connection_closed_after_the_head_timeout(http_port, monkeypatch):
    from porting_runtime.http_server import PublicErrorH11Protocol

    monkeypatch.setattr(PublicErrorH11Protocol, "head_timeout_seconds", 0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHo")  # and nothing more: a slowloris
        await writer.drain()
        assert await asyncio.wait_for(reader.read(65536), 10) == b"", "closed by the server, not left open"
    finally:
        writer.close()


async def test_a_head_sent_in_pieces_within_the_head_timeout_is_served(http_port, monkeypatch):
    from porting_runtime.http_server import PublicErrorH11Protocol

    monkeypatch.setattr(PublicErrorH11Protocol, "head_timeout_seconds", 5.0)
    answer = await exchange(http_port, b"GET / HT", b"TP/1.1\r\nHost: x\r\n", b"Connection: close\r\n\r\n")
    assert responses(answer) == [(200, b"ok")]
