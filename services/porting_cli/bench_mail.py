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

from aiosmtpd.smtp import MISSING, SMTP, syntax

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
TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH = "552 Error: Too much mail data"


def _refusal(lines: Sequence[bytes], data_size_limit: int | None) -> str | None:
    """aiosmtpd's reply to these complete lines (without their CRLF), or None if it takes them:
    the first fault in the data's order wins. A line longer than the reader's limit is refused
    as it is read, before its octets count; one of 1,000 or 1,001 octets only after."""
    counted = 0
    for line in lines:
        if len(line) > STOCK_LINE_LIMIT:
            return TOO_LONG
        counted += len(line) + 2
        if data_size_limit and counted > data_size_limit:
            return TOO_MUCH
        if len(line) + 2 > STOCK_LINE_LIMIT:
            return TOO_LONG
    return None


class QuickAddressSMTP(SMTP):
    """aiosmtpd's server, doing two things with less CPU, on the cores the services share:

    - It reads a MAIL or RCPT address of the plain form `<local@domain>` (both dot-atoms) by one
      regular expression. aiosmtpd reads every address with the e-mail package's full RFC 5322
      header parser and declares a typing Protocol class on each call: together a fifth of the
      benchmark process's CPU. The result is the same for that form (a unit test compares them);
      anything else goes to aiosmtpd's own reading.
    - It reads a message's data up to each ".\\r\\n" instead of line by line, a loop of Python
      per line that was a quarter of the benchmark process's CPU. What the handler gets and every
      reply are aiosmtpd's (unit tests compare both servers over sockets).

    Overrides private methods, so only the benchmark's stand-in relay uses it."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if "DATA" not in self._handle_hooks or not self.envelope.rcpt_tos or arg:
            # A handler of the old API, or a refusal: aiosmtpd's own DATA, with its checks in its order.
            await super().smtp_DATA(arg)
            return
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data, refusal = await self._read_data()
        if refusal is None:
            # The reader's limit stops a piece at 1,001 octets without a ".\\r\\n", not a line:
            # lines are measured here, all at once (the split runs in C).
            body = bytes(data[:-3])
            if len(body) >= STOCK_LINE_LIMIT - 1:
                lines = body.split(b"\r\n")
                if max(map(len, lines)) >= STOCK_LINE_LIMIT - 1:
                    refusal = _refusal(lines[:-1], self.data_size_limit)
        if refusal is not None:
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

    async def _read_data(self) -> tuple[bytearray, str | None]:
        """The data up to its terminating line, and aiosmtpd's refusal if it has one for its size.
        Past the size limit, only enough is kept to see the end."""
        data, size, refusal = bytearray(), 0, None
        while data != b".\r\n" and not data.endswith(b"\r\n.\r\n"):
            piece = await self._read_piece(b".\r\n")
            size += len(piece)
            if refusal is not None:
                data[:] = data[-4:] + piece
                continue
            data += piece
            if self.data_size_limit and size > self.data_size_limit + 3:  # the terminating line is 3
                refusal = await self._size_refusal(data)
        return data, refusal

    async def _size_refusal(self, data: bytearray) -> str:
        """The data so far is over the size limit: aiosmtpd refuses it for its size, or for a too
        long line met first. The last line may be incomplete (a piece stops at the reader's limit):
        the rest of it is read to know its length. `data` is left holding the stream's last bytes,
        for the terminator's search to go on."""
        head, found, partial = bytes(data).rpartition(b"\r\n")
        data[:] = data[-5:]
        verdict = _refusal(head.split(b"\r\n") if found else [], self.data_size_limit)
        if verdict is not None or not partial:
            return verdict or TOO_MUCH
        length = len(partial)
        while not data.endswith(b"\r\n"):  # by LF: the line's CR may have come already
            piece = await self._read_piece(b"\n")
            length, data[:] = length + len(piece), (data + piece)[-5:]
        # Over the limit within this line (the lines before it were not): too long, or too much.
        return TOO_LONG if length - 2 > STOCK_LINE_LIMIT else TOO_MUCH

    async def _read_piece(self, separator: bytes) -> bytes:
        """Up to and with `separator`, or as much as the reader's limit lets through without it."""
        try:
            return await self._reader.readuntil(separator)
        except asyncio.LimitOverrunError as error:
            return await self._reader.read(error.consumed)
        except asyncio.CancelledError:  # the connection went during DATA
            self._writer.close()
            raise

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
