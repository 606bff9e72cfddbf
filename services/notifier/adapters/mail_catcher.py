"""The local SMTP catcher: accepts every message and keeps it in a Maildir; and reading it back.

`porting up` runs it (python -m notifier.entrypoints.smtp_catcher) so that a stack without a
mail server still shows every e-mail the notifier sent: `porting mail list` and `show` read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import mailbox
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

MAX_MESSAGE_BYTES = 10 * 1024 * 1024


async def start_catcher(maildir: Path, host: str = "127.0.0.1", port: int = 1025) -> asyncio.Server:
    """Listen on (host, port) and keep each accepted message in `maildir` (created when missing).
    Port 0 picks a free port: `server.sockets[0].getsockname()[1]`."""
    maildir.parent.mkdir(parents=True, exist_ok=True)
    # Maildir makes new/, cur/ and tmp/ itself, but only when the directory does not exist yet.
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    handler = Mailbox(maildir)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname="porting-mail-catcher", enable_SMTPUTF8=True,
                     data_size_limit=MAX_MESSAGE_BYTES, loop=loop),
        host=host, port=port,
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
