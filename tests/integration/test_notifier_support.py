"""Real receivers for the notifier's tests: an HTTP webhook receiver that answers from a script,
one that accepts connections and never answers, and an SMTP catcher that refuses one domain.

(Kept in a test_notifier_* module so the notifier's tests stay within their own files; it
holds no tests itself.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

from notifier.domain.webhook_targets import WebhookTargets

REFUSED_DOMAIN = "refused.example"
# The receivers here listen on loopback over http, which the notifier refuses unless allowed.
LOCAL_RECEIVERS = WebhookTargets(allow_http=True, allowed_private_networks=(ipaddress.ip_network("127.0.0.0/8"),))
LOCAL_RECEIVER_SETTINGS = {"webhook_allow_http": True, "webhook_allowed_private_networks": ["127.0.0.0/8"]}


def signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class ReceivedCall:
    headers: dict[str, str]
    body: bytes
    at: datetime
    answered: int


@dataclass
class WebhookReceiver:
    """Answers the n-th call with answers[n] (the last one from then on) and keeps every call."""

    answers: Sequence[int] = (200,)
    calls: list[ReceivedCall] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/porting"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = self.answers[min(len(self.calls), len(self.answers) - 1)]
        self.calls.append(ReceivedCall({k.decode(): v.decode() for k, v in scope["headers"]}, body,
                                       datetime.now(UTC), status))
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok" if status < 300 else b"no"})


@contextlib.asynccontextmanager
async def webhook_receiver(answers: Sequence[int] = (200,)) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(answers=answers)
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", access_log=False))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    receiver.port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


@dataclass
class SilentReceiver:
    """Accepts TCP connections, reads what is sent, and never answers."""

    port: int = 0
    connections: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/porting"


@contextlib.asynccontextmanager
async def silent_receiver() -> AsyncIterator[SilentReceiver]:
    receiver = SilentReceiver()
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        receiver.connections += 1
        held.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


class RefusingMailbox(Mailbox):
    """The catcher, except that mail to REFUSED_DOMAIN is refused for good (550)."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address.lower().endswith("@" + REFUSED_DOMAIN):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@contextlib.asynccontextmanager
async def refusing_catcher(maildir: Path) -> AsyncIterator[int]:
    handler = RefusingMailbox(maildir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, loop=loop), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
