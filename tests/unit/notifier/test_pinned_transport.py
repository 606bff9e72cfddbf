"""Webhooks connect only to the address that was judged, with the host name kept for Host and
TLS SNI; refused URLs are final failures with their reason (no servers: a recording network
backend stands in for the sockets)."""

from __future__ import annotations

import socket
import typing

import httpcore
import httpx
from prometheus_client import REGISTRY

from notifier.adapters.pinned_transport import PinnedTransport
from notifier.adapters.webhook_client import WebhookClient
from notifier.domain.attempts import Outcome
from notifier.domain.webhook_targets import TargetRefused, WebhookTargets

PUBLIC = "93.184.216.34"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
OK_AND_CLOSE = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
LIMITS = httpx.Limits(max_connections=4)


class RecordedStream(httpcore.AsyncNetworkStream):
    def __init__(self, answer: bytes) -> None:
        self.answer, self.written, self.server_hostname = [answer], b"", None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.answer.pop(0) if self.answer else b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written += buffer

    async def aclose(self) -> None:
        pass

    async def start_tls(self, ssl_context: typing.Any, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        self.server_hostname = server_hostname
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        return None


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Where connections were opened to; the listed addresses refuse them."""

    def __init__(self, answer: bytes = OK, unreachable: tuple[str, ...] = ()) -> None:
        self.answer, self.unreachable = answer, unreachable
        self.connects: list[tuple[str, int]] = []
        self.streams: list[RecordedStream] = []

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Any = None) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host in self.unreachable:
            raise httpcore.ConnectError("connection refused")
        self.streams.append(RecordedStream(self.answer))
        return self.streams[-1]


class Answers:
    """A DNS that answers each lookup with the next of its answers (the last from then on)."""

    def __init__(self, *answers: list[str] | Exception) -> None:
        self.answers, self.lookups = list(answers), 0

    async def __call__(self, host: str, port: int) -> list[str]:
        answer = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(backend: RecordingBackend, resolver: Answers, targets: WebhookTargets | None = None) -> httpx.AsyncClient:
    transport = PinnedTransport(targets or WebhookTargets(), limits=LIMITS, resolver=resolver, network_backend=backend)
    return httpx.AsyncClient(transport=transport, follow_redirects=False)


async def test_the_connection_goes_to_the_judged_address_with_the_host_name_in_host_and_sni():
    backend = RecordingBackend()
    async with client(backend, Answers([PUBLIC])) as http:
        response = await http.post("https://hooks.example.com/porting", content=b"{}")
    assert response.status_code == 200 and response.text == "ok"
    assert backend.connects == [(PUBLIC, 443)]
    [stream] = backend.streams
    assert stream.server_hostname == "hooks.example.com"  # SNI and the certificate check use the name
    assert stream.written.startswith(b"POST /porting HTTP/1.1\r\n")
    assert b"\r\nHost: hooks.example.com\r\n" in stream.written


async def test_a_name_re_pointed_at_a_private_address_after_the_check_cannot_be_reached():
    # The first lookup is public; the name then rebinds to loopback. Each connection is made
    # to the answer of its own, judged lookup, so the second one is refused, never opened.
    backend, dns = RecordingBackend(OK_AND_CLOSE), Answers([PUBLIC], ["127.0.0.1"])
    async with client(backend, dns) as http:
        first = await http.post("https://rebind.example.com/", content=b"{}")
        try:
            await http.post("https://rebind.example.com/", content=b"{}")
            raise AssertionError("the rebound name was sent to")
        except TargetRefused as refused:
            assert "127.0.0.1, a loopback address" in str(refused)
    assert first.status_code == 200
    assert backend.connects == [(PUBLIC, 443)] and dns.lookups == 2


async def test_a_kept_alive_connection_serves_only_its_own_host_name():
    backend = RecordingBackend()
    async with client(backend, Answers([PUBLIC])) as http:
        await http.post("https://a.example.com/", content=b"{}")
        await http.post("https://b.example.com/", content=b"{}")
    assert backend.connects == [(PUBLIC, 443), (PUBLIC, 443)]
    assert [s.server_hostname for s in backend.streams] == ["a.example.com", "b.example.com"]


async def test_a_name_with_any_private_answer_opens_no_connection():
    backend = RecordingBackend()
    async with client(backend, Answers([PUBLIC, "10.0.0.5"])) as http:
        try:
            await http.post("https://mixed.example.com/", content=b"{}")
            raise AssertionError("sent")
        except TargetRefused as refused:
            assert str(refused) == "webhook_url resolves to 10.0.0.5, a private address; refused"
    assert backend.connects == []


async def test_the_next_judged_address_is_tried_when_one_does_not_answer():
    backend = RecordingBackend(unreachable=("2606:4700::1",))
    async with client(backend, Answers(["2606:4700::1", PUBLIC])) as http:
        response = await http.post("https://two.example.com/", content=b"{}")
    assert response.status_code == 200
    assert backend.connects == [("2606:4700::1", 443), (PUBLIC, 443)]


def refused_count(kind: str) -> float:
    return REGISTRY.get_sample_value("notifier_webhook_targets_refused_total", {"kind": kind}) or 0.0


async def test_a_refused_url_is_a_final_failure_with_its_reason_and_counted():
    webhooks = WebhookClient("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", targets=WebhookTargets(allow_http=True))
    before = {kind: refused_count(kind) for kind in ("private", "link-local", "loopback", "scheme")}
    results = {url: await webhooks.post(url, "msg_refused", b"{}") for url in (
        "http://10.0.0.5/hooks", "http://169.254.169.254/latest/meta-data/", "http://2130706433/",
        "file:///etc/passwd")}
    await webhooks.close()
    assert {r.outcome for r in results.values()} == {Outcome.FAILED}
    assert results["http://10.0.0.5/hooks"].detail == "webhook_url is 10.0.0.5, a private address; refused"
    assert "cloud metadata" in results["http://169.254.169.254/latest/meta-data/"].detail
    assert results["http://2130706433/"].detail == "webhook_url resolves to 127.0.0.1, a loopback address; refused"
    assert "https" in results["file:///etc/passwd"].detail
    assert {kind: refused_count(kind) - before[kind] for kind in before} == {
        "private": 1, "link-local": 1, "loopback": 1, "scheme": 1}


async def test_http_is_refused_unless_allowed_and_urls_httpx_cannot_read_are_final():
    webhooks = WebhookClient("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    plain = await webhooks.post("http://hooks.example.com/", "msg_http", b"{}")
    octal = await webhooks.post("https://0177.0.0.1/", "msg_octal", b"{}")  # httpx: not an IPv4 address
    await webhooks.close()
    assert plain.outcome is Outcome.FAILED and "must use https" in plain.detail
    assert octal.outcome is Outcome.FAILED and "invalid webhook URL" in octal.detail


async def test_a_name_that_does_not_resolve_is_retried_not_refused():
    webhooks = WebhookClient("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                             resolver=Answers(socket.gaierror(socket.EAI_AGAIN, "Temporary failure")))
    result = await webhooks.post("https://hooks.example.com/", "msg_dns", b"{}")
    await webhooks.close()
    assert result.outcome is Outcome.RETRYABLE and "cannot resolve hooks.example.com" in result.detail
