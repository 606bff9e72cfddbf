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

from aiosmtpd.smtp import MISSING, SMTP

from notifier.adapters.mail_catcher import MAX_MESSAGE_BYTES

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


STOCK_LINE_LIMIT = SMTP.line_length_limit  # 1001: aiosmtpd's longest line, its CRLF included


def _refusal(body: bytes, data_size_limit: int | None) -> str:
    """aiosmtpd's reply to a message too big or with too long a line: the first in the data's
    order. A line over the limit is refused as it is read, before its octets count; one of
    exactly the limit's length or one more only after (its CRLF found within the limit)."""
    counted = 0
    lines = body.split(b"\r\n")
    for position, line in enumerate(lines):
        read = line + b"\r\n" if position < len(lines) - 1 else line
        if len(line) > STOCK_LINE_LIMIT:
            return "500 Line too long (see RFC5321 4.5.3.1.6)"
        counted += len(read)
        if data_size_limit and counted > data_size_limit:
            return "552 Error: Too much mail data"
        if len(read) > STOCK_LINE_LIMIT:
            return "500 Line too long (see RFC5321 4.5.3.1.6)"
    return "552 Error: Too much mail data"


class QuickAddressSMTP(SMTP):
    """aiosmtpd's server, doing two things with less CPU, on the cores the services share:

    - It reads a MAIL or RCPT address of the plain form `<local@domain>` (both dot-atoms) by one
      regular expression. aiosmtpd reads every address with the e-mail package's full RFC 5322
      header parser and declares a typing Protocol class on each call: together a fifth of the
      benchmark process's CPU. The result is the same for that form (a unit test compares them);
      anything else goes to aiosmtpd's own reading.
    - It reads a message's data up to each ".\\r\\n" instead of line by line, a loop of Python
      per line that was a quarter of the benchmark process's CPU. The content, dot-unstuffed, and
      the replies are aiosmtpd's (a unit test compares them).

    Overrides private methods, so only the benchmark's stand-in relay uses it."""

    # The reader's limit bounds the bytes read before a ".\\r\\n" is found; commands keep their own
    # (command_size_limit). A message over data_size_limit is read to its end and refused.
    line_length_limit = MAX_MESSAGE_BYTES + 16

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos or arg:
            await super().smtp_DATA(arg)  # aiosmtpd's own refusal
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data, size, too_much, refusal = bytearray(), 0, False, ""
        while data != b".\r\n" and not data.endswith(b"\r\n.\r\n"):
            try:
                piece = await self._reader.readuntil(b".\r\n")
            except asyncio.LimitOverrunError as error:
                piece = await self._reader.read(error.consumed)
            except asyncio.CancelledError:  # the connection went during DATA
                self._writer.close()
                raise
            size += len(piece)
            if too_much:
                data[:] = data[-4:] + piece  # only enough to see the end
                continue
            data += piece
            if self.data_size_limit and size > self.data_size_limit + 3:
                too_much, refusal = True, _refusal(bytes(data), self.data_size_limit)
        body = bytes(data[:-3])
        # A line of STOCK_LINE_LIMIT - 1 octets and more (with its CRLF, over aiosmtpd's limit) is
        # refused as aiosmtpd refuses it; the split runs in C, the walk only for a refusal.
        if not too_much and len(body) >= STOCK_LINE_LIMIT - 1 \
                and max(map(len, body.split(b"\r\n"))) >= STOCK_LINE_LIMIT - 1:
            refusal = _refusal(body, self.data_size_limit)
        if refusal:
            await self.push(refusal)
            self._set_post_data_state()
            return
        # RFC 5321 4.5.2: the terminating line goes, and a leading dot of every line.
        content = body.replace(b"\r\n.", b"\r\n")
        if content.startswith(b"."):
            content = content[1:]
        text: str | bytes = content
        if self._decode_data:
            if self.enable_SMTPUTF8:
                text = content.decode("utf-8", errors="surrogateescape")
            elif not content.isascii():
                await self.push("500 Error: strict ASCII mode")  # as aiosmtpd, state kept
                return
            else:
                text = content.decode("ascii")
        self.envelope.original_content, self.envelope.content = content, text
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

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
