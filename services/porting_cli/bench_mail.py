"""The end of the whole pipeline: e-mails accepted by the local SMTP catcher (aiosmtpd).

The notifier's own catcher (notifier.adapters.mail_catcher's server, aiosmtpd) runs in the
benchmark's process, on its clock, and notes when each request's customer e-mails were accepted.
It stands in for a relay on another host, so it keeps nothing: writing each message to a Maildir
was a sixth of the benchmark process's CPU, taken from the two cores the services share, and
no relay's disk is the platform's work. It answers like bench_load.Collector (expect, finished, arrivals, duplicates,
missing): a request is complete at its first customer e-mail. `later` notes the second one
(after the in_review e-mail, the one announcing the submission to the carrier), for which the
portability check and the workflow's review had to happen first.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Sequence
from typing import Any

from aiosmtpd.smtp import SMTP

from .bench_load import Arrivals, now

# RFC 5322 atext: the characters of a dot-atom's atoms.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# The blanks after '>' are folding white space, which aiosmtpd's reading drops; other white space
# or a comment there (a '(') is left to it, as is an RFC 2047 encoded word ("=?"), which it decodes.
_PLAIN_ANGLE_ADDRESS = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)>[ \t]*+(?![\s(])(.*)", re.DOTALL)
SID_HEADER = re.compile(rb"^X-Port-In-Request-Sid:[ \t]*([^\r\n]+)", re.IGNORECASE | re.MULTILINE)


def request_of(content: bytes | str | None) -> str | None:
    """The port-in request an e-mail is about (the notifier's X-Port-In-Request-Sid header), read
    from the headers alone without parsing the message."""
    if content is None:
        return None
    if isinstance(content, str):
        content = content.encode()
    head = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = SID_HEADER.search(head)
    return found.group(1).strip().decode() if found else None


def is_customer_mail(recipients: Sequence[str], ops: Collection[str]) -> bool:
    """A customer's e-mail: one that goes to someone other than the ops desk."""
    ops_lower = {address.lower() for address in ops}
    return any(recipient.lower() not in ops_lower for recipient in recipients)


class MailArrivals(Arrivals):
    """Arrival times of each request's first and second customer e-mail (pure bookkeeping);
    `duplicates` counts the e-mails beyond the second for a request (none are expected)."""

    def __init__(self) -> None:
        super().__init__()
        self.later: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def note(self, key: str | None, seen: float) -> None:
        self.records += 1
        if key is None:
            return
        count = self.counts.get(key, 0) + 1
        self.counts[key] = count
        if count == 1:
            self.arrived(key, seen)
        elif count == 2:
            self.later[key] = seen
        else:
            self.duplicates += 1

    async def finished(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            pass
        return not self._pending

    async def later_finished(self, keys: Sequence[str], timeout: float) -> bool:
        """Whether every key's second e-mail arrived within `timeout` seconds."""
        deadline = now() + timeout
        while any(k not in self.later for k in keys):
            if now() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


class QuickAddressSMTP(SMTP):
    """aiosmtpd's server, reading a MAIL or RCPT address of the plain form `<local@domain>` (both
    dot-atoms) by one regular expression. aiosmtpd reads every address with the e-mail package's
    full RFC 5322 header parser and declares a typing Protocol class on each call: together a
    fifth of the benchmark process's CPU, on the cores the services share. The result is the
    same for that form (a unit test compares them); anything else goes to aiosmtpd's own reading.
    Overrides a private method, so only the benchmark's stand-in relay uses it."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        found = _PLAIN_ANGLE_ADDRESS.fullmatch(arg) if arg and "=?" not in arg else None
        if found is None or (self.local_part_limit and len(found.group(1).rpartition("@")[0]) > self.local_part_limit):
            return super()._getaddr(arg)
        return found.group(1), found.group(2)


class MailCollector(MailArrivals):
    """The catcher on a free port of 127.0.0.1, noting what it accepts."""

    def __init__(self, ops: Collection[str] = ()) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.port: int | None = None
        self._server: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's handler hook: the message is accepted once it is noted."""
        if is_customer_mail(envelope.rcpt_tos, self.ops):
            self.note(request_of(envelope.original_content or envelope.content), now())
        return "250 OK: noted"

    async def start(self) -> MailCollector:
        from notifier.adapters.mail_catcher import start_catcher

        self._server = await start_catcher(port=0, handler=self, server_class=QuickAddressSMTP)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
