"""The HTTP server (uvicorn on h11) answering even what never reaches the app in the public shape.

A request h11 cannot parse (a non-ASCII request target, a NUL in a header line, a head over its
limit, bytes that are not HTTP at all) is refused by the server itself before any app code
runs; uvicorn answers those with a plain-text 400. Here the same refusal carries the public
error body, so a client parses every error of the API the same way.

A request head must also arrive whole within HEAD_TIMEOUT_SECONDS: uvicorn times idle keep-alive
connections out but not a head that stops half-sent, so a client dribbling heads could hold
connections open for good (a slowloris). The connection is then closed (no answer can precede a
request h11 has parsed).

A refused request is answered, then the connection lingers before it closes: the server stops
sending (FIN) and reads and drops what the client still sends, for a moment and up to a cap.
Closed at once with unread bytes, the kernel resets the connection, and a client still sending
a head over the limit (h11 refuses past 16 KiB) loses the 400 it was sent; as nginx's lingering
close, the client now reads it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .http_errors import INVALID_PARAMETER, PublicError

UNPARSEABLE_REQUEST = PublicError(code=INVALID_PARAMETER, message="The request is not valid HTTP/1.1.",
                                  more_info=f"https://www.twilio.com/docs/errors/{INVALID_PARAMETER}",
                                  status=400).model_dump_json().encode()


HEAD_TIMEOUT_SECONDS = 20.0  # as generous as common servers' header timeouts (Apache: 20-40 s)
LINGER_SECONDS = 2.0  # nginx lingers 5 s (lingering_time 30 s); a refused client needs less
LINGER_BYTES = 1024 * 1024  # read and dropped at most, then closed regardless


class PublicErrorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol (pinned version): its 400 for an unparseable request in the public shape,
    and a head that does not arrive whole in time closes its connection."""

    head_timeout_seconds = HEAD_TIMEOUT_SECONDS
    linger_seconds = LINGER_SECONDS
    _head_timer: asyncio.TimerHandle | None = None
    _linger_timer: asyncio.TimerHandle | None = None
    _dropped: int | None = None  # bytes read and dropped while lingering; None: not lingering

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        if self._dropped is not None:  # answered and closing: what still comes is not a request
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self.transport.close()
            return
        super().data_received(data)
        self._watch_head()

    def eof_received(self) -> bool | None:
        if self._dropped is not None:
            return None  # the client is done sending: close now
        return super().eof_received()  # type: ignore[func-returns-value]

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._dropped is not None:  # answered already: nothing more to say on it
            self.transport.close()
            return
        super().shutdown()

    def _close_lingering(self) -> None:
        """Stop sending, let the answer reach the client, then close (see the module's docstring)."""
        if self.transport.is_closing() or self._dropped is not None:
            return
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self._stop_head_timer()
        self._dropped = 0
        self.transport.write_eof()
        self.transport.resume_reading()  # uvicorn may have paused reading for the app's body
        self._linger_timer = self.loop.call_later(self.linger_seconds, self.transport.close)

    def _watch_head(self) -> None:
        if self._dropped is not None:
            return
        # h11 keeps the client IDLE until a request's head is parsed whole. Idle between requests of
        # a kept-alive connection is uvicorn's keep-alive timeout's; bytes of a head are ours.
        awaiting_head = self.conn.their_state is h11.IDLE and not self.transport.is_closing() and (
            self.conn.trailing_data[0] or self.cycle is None)
        if awaiting_head and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_seconds, self._head_too_slow)
        elif not awaiting_head:
            self._stop_head_timer()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.warning("request head not received whole in time; connection closed")
            self.transport.close()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def send_400_response(self, msg: str) -> None:
        # A request whose body turns unparseable (a bad chunk size) already has the app running:
        # it is told the client is gone (its receive() gets http.disconnect, its response goes
        # nowhere) instead of failing on a connection that has answered ("Exception in ASGI
        # application", LocalProtocolError).
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        # The 400 only where no response has begun: one that is complete (the app answered
        # without reading the body) or under way cannot be followed by another on this request,
        # and h11 would raise out of data_received ("Fatal error: protocol.data_received()").
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            headers = [(b"content-type", b"application/json"),
                       (b"content-length", str(len(UNPARSEABLE_REQUEST)).encode("ascii")),
                       (b"connection", b"close")]
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                          h11.Data(data=UNPARSEABLE_REQUEST), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
        self._close_lingering()


def http_server(app: Any, host: str, port: int) -> uvicorn.Server:
    """The service's server: no logging config of its own (the service's applies), no access log,
    no lifespan (the service starts what the app uses), SIGTERM left to the service."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, http=PublicErrorH11Protocol,
                                           log_config=None, access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours handle SIGTERM
    return server
