"""Sends e-mail over SMTP (aiosmtplib) and says what came of it.

Connections are kept and reused, one per concurrent send, because a connection per message
(connect, EHLO, STARTTLS, AUTH, QUIT) would cost more than the message. One idle longer than
a server is likely to keep it is closed before reuse rather than failing a send.
"""

from __future__ import annotations

import asyncio
import time

import aiosmtplib

from ..domain.attempts import AttemptResult, Outcome, classify_smtp_reply
from .templates import ComposedEmail

IDLE_REUSE_SECONDS = 20.0
# New connections are opened this many at a time. A burst of sends at once would otherwise open
# every connection together: 2 instances x 256 against the catcher overflowed its listen queue,
# the refused handshakes were retried by TCP after 1, 3, 7, 15 and 31 s, and those past the
# timeout failed and waited half a minute to be retried (make bench: 74 requests/s instead of 600).
# A relay sees a ramp: 64 connections open in about 8 handshakes' time. A send waiting for its
# turn takes a connection that comes back meanwhile instead.
OPENING_AT_ONCE = 8


class SmtpSender:
    def __init__(self, *, host: str, port: int, username: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout_seconds: float = 30.0, connections: int = 8) -> None:
        self.host, self.port, self.username, self.password = host, port, username, password
        self.starttls, self.timeout = starttls, timeout_seconds
        self._idle: asyncio.LifoQueue[tuple[aiosmtplib.SMTP, float]] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(connections)
        self._opening = 0  # connections being opened now
        self._changed = asyncio.Event()  # set when a connection comes back idle or an opening ends

    async def send(self, message: ComposedEmail) -> AttemptResult:
        async with self._slots:
            client = None
            try:
                client = await self._connection()
                reply = await _transaction(client, message)
            except Exception as error:
                if client is not None:
                    await _discard(client)
                return classify_failure(error)
            self._idle.put_nowait((client, time.monotonic()))
            self._changed.set()
        return AttemptResult(Outcome.DELIVERED, f"accepted: {reply}"[:500])

    async def _connection(self) -> aiosmtplib.SMTP:
        """An idle connection, or a new one when this send's turn to open one comes, whichever is
        first. Waiting for the turn counts against the send's timeout, so a relay that never
        answers fails each send within it (past it, the notification's lease could run out)."""
        async with asyncio.timeout(self.timeout):
            while True:
                client = await self._idle_connection()
                if client is not None:
                    return client
                if self._opening < OPENING_AT_ONCE:
                    return await self._open()
                self._changed.clear()
                await self._changed.wait()  # a connection came back, or an opening ended

    async def _open(self) -> aiosmtplib.SMTP:
        self._opening += 1
        client = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout,
                                 start_tls=self.starttls, username=self.username, password=self.password)
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        finally:
            self._opening -= 1
            self._changed.set()
        return client

    async def _idle_connection(self) -> aiosmtplib.SMTP | None:
        while not self._idle.empty():
            client, since = self._idle.get_nowait()
            if client.is_connected and time.monotonic() - since < IDLE_REUSE_SECONDS:
                return client
            await _discard(client)
        return None

    async def close(self) -> None:
        while not self._idle.empty():
            client, _ = self._idle.get_nowait()
            await _discard(client)


async def _transaction(client: aiosmtplib.SMTP, message: ComposedEmail) -> str:
    """MAIL, RCPT and DATA for one recipient; the server's reply to the message.

    The commands one by one rather than sendmail, which reads each address twice and rewrites
    the whole message's line endings once more only to measure it (a tenth of the notifier's
    CPU under make bench): the composed bytes already end every line CRLF, so their length is
    the SIZE (RFC 1870). A refusal raises; the connection is then discarded, not reset."""
    if client.is_ehlo_or_helo_needed:  # first on this connection: what the server supports
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            if not client.is_connected:  # a 421 closes the connection: its reply is the outcome
                raise
            await client.helo()  # a server without ESMTP: no SIZE, no SMTPUTF8
    options, encoding = [], "ascii"
    if not message.recipient.isascii():
        # An internationalised recipient (RFC 6531) needs SMTPUTF8 both ways.
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
        options, encoding = ["SMTPUTF8"], "utf-8"
    if client.supports_extension("size"):
        options.insert(0, f"SIZE={len(message.data)}")
    # MAIL and RCPT through execute_command, as mail() and rcpt() send them: those parse each
    # address with email.utils.parseaddr again (~10 us an e-mail for the two), where compose()
    # already admitted exactly one plain address and settings one plain sender.
    # execute_command still refuses a control character in any argument (no command injection).
    reply = await client.execute_command(b"MAIL", b"FROM:<" + message.sender.encode(encoding) + b">",
                                         *(option.encode("ascii") for option in options))
    if reply.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, message.sender)
    reply = await client.execute_command(b"RCPT", b"TO:<" + message.recipient.encode(encoding) + b">")
    if reply.code not in (aiosmtplib.SMTPStatus.completed, aiosmtplib.SMTPStatus.will_forward):
        raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, message.recipient)
    return (await client.data(message.data)).message


async def _discard(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await asyncio.wait_for(client.quit(), timeout=2)
    except Exception:  # closing a broken connection may fail in any way; it is gone either way
        client.close()


def classify_failure(error: BaseException) -> AttemptResult:
    """A permanent refusal of the recipient or of the message is final. A refused sender, a
    failed login, STARTTLS missing, a timeout or a connection error is our configuration or the
    server's availability: retried, so fixing it in time still delivers."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in error.recipients]
        outcome = Outcome.FAILED if codes and all(classify_smtp_reply(c) is Outcome.FAILED for c in codes) \
            else Outcome.RETRYABLE
        detail = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
        return AttemptResult(outcome, f"recipient refused: {detail}"[:500], status_code=codes[0] if codes else None)
    if isinstance(error, aiosmtplib.SMTPRecipientRefused):
        return AttemptResult(classify_smtp_reply(error.code), f"recipient refused: {error.code} {error.message}"[:500],
                             status_code=error.code)
    if isinstance(error, aiosmtplib.SMTPDataError):
        return AttemptResult(classify_smtp_reply(error.code), f"refused: {error.code} {error.message}"[:500],
                             status_code=error.code)
    if isinstance(error, aiosmtplib.SMTPSenderRefused) and error.code == 552:
        # 552 to MAIL FROM: the relay's size or storage limit refuses this message (RFC 1870, sent
        # with SIZE), not our sender; resending the same message cannot help.
        return AttemptResult(Outcome.FAILED, f"refused: {error.code} {error.message}"[:500], status_code=error.code)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return AttemptResult(Outcome.RETRYABLE, f"{type(error).__name__}: {error.code} {error.message}"[:500],
                             status_code=error.code)
    if isinstance(error, TimeoutError):
        return AttemptResult(Outcome.RETRYABLE, f"no answer in time ({type(error).__name__})")
    if isinstance(error, OSError | aiosmtplib.SMTPException):
        return AttemptResult(Outcome.RETRYABLE, f"{type(error).__name__}: {error}"[:500])
    raise error
