"""An httpx transport that connects only to addresses the webhook rules allow (no SSRF).

The check and the connection share one DNS answer: the network backend resolves the host,
judges every address (domain/webhook_targets.py) and connects to a judged address itself, so
a name re-pointed between check and connect (DNS rebinding) cannot reach anything else. The
URL is left as it is, so the Host header, TLS SNI and certificate check use the host name, and
the connection pool keys connections by that name: a connection is never shared between two
names that happen to resolve alike.

httpx 0.28 cannot be given an httpcore network backend, so this is a small transport over
httpcore's public AsyncConnectionPool(network_backend=...), mapping httpcore's errors to
httpx's as httpx's own transport does. No proxy is used: a proxy would resolve and connect on
its own, past these rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpcore
import httpx

from ..domain.webhook_targets import IPAddress, TargetRefused, WebhookTargets

Resolver = Callable[[str, int], Awaitable[list[str]]]

# Most specific first: an httpcore error becomes the httpx error of the same name.
_ERRORS: tuple[tuple[type[Exception], type[Exception]], ...] = tuple(
    (getattr(httpcore, name), getattr(httpx, name)) for name in (
        "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "TimeoutException",
        "ConnectError", "ReadError", "WriteError", "NetworkError",
        "RemoteProtocolError", "LocalProtocolError", "ProtocolError", "UnsupportedProtocol", "ProxyError"))


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's answer, as a connection would get it (numeric spellings like 0x7f.1 included)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class VettingBackend(httpcore.AsyncNetworkBackend):
    """Resolves, judges every address, and connects to the judged addresses only."""

    def __init__(self, targets: WebhookTargets, resolver: Resolver = system_resolver,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.targets, self.resolver = targets, resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def vetted(self, host: str, port: int, timeout: float | None = None) -> list[IPAddress]:
        return self.targets.check_addresses(host, await self.resolve(host, port, timeout))

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        with contextlib.suppress(ValueError):
            return [ipaddress.ip_address(host)]
        try:
            answers = await asyncio.wait_for(self.resolver(host, port), timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from None
        except OSError as error:  # a resolver failure may pass: retried like a refused connection
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        addresses: dict[IPAddress, None] = {}
        for answer in answers:
            # A scope id (fe80::1%eth0) is kept off: the address alone is judged, and refused.
            addresses[ipaddress.ip_address(answer.split("%", 1)[0])] = None
        return list(addresses)

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self.vetted(host, port, timeout):
            try:
                return await self.inner.connect_tcp(str(address), port, timeout=timeout,
                                                    local_address=local_address, socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error  # the next judged address may answer
        assert failure is not None  # vetted() returns at least one address or raises
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("webhooks are not sent over unix sockets; refused", "unix_socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncBaseTransport):
    def __init__(self, targets: WebhookTargets, *, limits: httpx.Limits, resolver: Resolver = system_resolver,
                 network_backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.backend = VettingBackend(targets, resolver, network_backend)
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=self.backend)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                             target=request.url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        with _httpx_errors():
            response = await self.pool.handle_async_request(core)
        assert isinstance(response.stream, typing.AsyncIterable)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_ResponseStream(response.stream), extensions=response.extensions)

    async def aclose(self) -> None:
        await self.pool.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self.stream:
                yield part

    async def aclose(self) -> None:
        if hasattr(self.stream, "aclose"):
            with _httpx_errors():
                await self.stream.aclose()


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for core_error, httpx_error in _ERRORS:
            if isinstance(error, core_error):
                raise httpx_error(str(error)) from error
        raise
