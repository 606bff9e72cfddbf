"""The HTTP server (uvicorn on h11) answering even what never reaches the app in the public shape.

A request h11 cannot parse (a non-ASCII request target, a NUL in a header line, a head over its
limit, bytes that are not HTTP at all) is refused by the server itself before any app code
runs; uvicorn answers those with a plain-text 400. Here the same refusal carries the public
error body, so a client parses every error of the API the same way.

A request head must also arrive whole within HEAD_TIMEOUT_SECONDS: uvicorn times idle keep-alive
connections out but not a head that stops half-sent, so a client dribbling heads could hold
connections open for good (a slowloris). The connection is then closed (no answer can precede a
request h11 has parsed).
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


class PublicErrorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol (pinned version): its 400 for an unparseable request in the public shape,
    and a head that does not arrive whole in time closes its connection."""

    head_timeout_seconds = HEAD_TIMEOUT_SECONDS
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
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
        self.transport.close()


def http_server(app: Any, host: str, port: int) -> uvicorn.Server:
    """The service's server: no logging config of its own (the service's applies), no access log,
    no lifespan (the service starts what the app uses), SIGTERM left to the service."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, http=PublicErrorH11Protocol,
                                           log_config=None, access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours handle SIGTERM
    return server
