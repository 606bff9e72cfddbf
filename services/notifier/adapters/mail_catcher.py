"""The local SMTP catcher: accepts every message and keeps it in a Maildir; and reading it back.

`porting up` runs it (python -m notifier.entrypoints.smtp_catcher) so that a stack without a
mail server still shows every e-mail the notifier sent: `porting mail list` and `show` read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import mailbox
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
# Connections waiting to be accepted. asyncio's default, 100, was less than the notifier's
# instances opened together before they opened 8 at a time (smtp.py), and less than several
# instances, or another client, may still open at once: the handshakes beyond it were retried
# by TCP seconds later, and some timed out. The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 1024


class MaildirKeeper:
    """An aiosmtpd handler that keeps each message as it arrived, in a Maildir.

    The Maildir protocol (write in tmp/, rename into new/) makes every file whole when it
    appears; unlike mailbox.Maildir.add (aiosmtpd's Mailbox handler) it neither parses the
    message nor fsyncs it: a local catcher trades durability on power loss for taking mail as
    fast as the notifier sends it."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.host = socket.gethostname().replace("/", "_").replace(":", "_")
        self.count = itertools.count()
        for sub in ("new", "cur", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        trace = (f"X-Peer: {session.peer}\nX-MailFrom: {envelope.mail_from}\n"
                 f"X-RcptTo: {', '.join(envelope.rcpt_tos)}\n").encode()
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        content = content.replace(b"\r\n", b"\n")  # Maildir files end lines the Unix way
        now = time.time()
        name = f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(self.count)}.{self.host}"
        temporary = self.maildir / "tmp" / name
        temporary.write_bytes(trace + content)
        os.rename(temporary, self.maildir / "new" / name)
        return "250 OK: kept"


async def start_catcher(maildir: Path | None = None, host: str = "127.0.0.1", port: int = 1025,
                        handler: Any = None, server_class: type[SMTP] = SMTP) -> asyncio.Server:
    """Listen on (host, port) and keep each accepted message in `maildir` (created when missing),
    or give it to `handler` when given (an aiosmtpd handler: the benchmark's notes arrivals).
    Port 0 picks a free port: `server.sockets[0].getsockname()[1]`."""
    if handler is None:
        if maildir is None:
            raise ValueError("a catcher keeps its mail in a maildir or gives it to a handler")
        handler = MaildirKeeper(maildir)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: server_class(handler, hostname="porting-mail-catcher", enable_SMTPUTF8=True,
                     data_size_limit=MAX_MESSAGE_BYTES, loop=loop),
        host=host, port=port, backlog=LISTEN_BACKLOG,
    )


@contextlib.asynccontextmanager
async def catching_mail(maildir: Path, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """The catcher for as long as the block runs; yields the port it listens on."""
    server = await start_catcher(maildir, host, port)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@dataclass(frozen=True)
class CaughtMail:
    id: str
    received_at: datetime
    sender: str
    recipients: str
    subject: str
    message_id: str
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part else ""


def read_mail(maildir: Path) -> list[CaughtMail]:
    """Every caught message, oldest first. A missing Maildir is an empty one."""
    if not (maildir / "new").is_dir() and not (maildir / "cur").is_dir():
        return []
    box = mailbox.Maildir(maildir, factory=None, create=False)
    caught = []
    for key in box.keys():
        try:
            with box.get_file(key) as handle:
                raw = handle.read()
            delivered = box.get_message(key).get_date()
        except (FileNotFoundError, KeyError):  # removed while we read
            continue
        message = message_from_bytes(raw, policy=policy.default)
        caught.append(CaughtMail(
            id=key, received_at=datetime.fromtimestamp(delivered, UTC),
            sender=str(message.get("From", "")), recipients=str(message.get("X-RcptTo") or message.get("To", "")),
            subject=str(message.get("Subject", "")), message_id=str(message.get("Message-ID", "")),
            message=message,  # type: ignore[arg-type]
        ))
    return sorted(caught, key=lambda mail: (mail.received_at, mail.id))


def find_mail(maildir: Path, wanted: str) -> CaughtMail | None:
    """By its Maildir id, a unique prefix of it, or its Message-ID (with or without <>)."""
    mails = read_mail(maildir)
    wanted = wanted.strip()
    exact = [m for m in mails if m.id == wanted or m.message_id.strip("<>") == wanted.strip("<>")
             or m.message_id.strip("<>").split("@")[0] == wanted]
    if exact:
        return exact[0]
    prefixed = [m for m in mails if m.id.startswith(wanted)]
    return prefixed[0] if len(prefixed) == 1 else None
