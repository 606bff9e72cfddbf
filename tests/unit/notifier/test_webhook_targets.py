"""The webhook address rules: which URLs and addresses the notifier refuses (no servers)."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from notifier.adapters.pinned_transport import VettingBackend
from notifier.domain.webhook_targets import TargetRefused, WebhookTargets

STRICT = WebhookTargets()


def address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(("refused", "kind"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.0.0.5", "private"), ("172.16.0.1", "private"), ("172.31.255.254", "private"), ("192.168.1.1", "private"),
    ("fc00::1", "private"), ("fd12:3456::1", "private"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"), ("ff0e::1", "multicast"),
    ("100.64.0.1", "shared"), ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("192.0.2.1", "private"),  # documentation range: not routable
    # IPv4-mapped IPv6 is the IPv4 address to the kernel.
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.5", "private"), ("::ffff:169.254.169.254", "link-local"),
    # NAT64 and 6to4 reach the IPv4 address inside.
    ("64:ff9b::a00:5", "private"), ("64:ff9b::7f00:1", "loopback"), ("2002:a00:5::1", "private"),
    ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated): some Pythons call it global
])
def test_addresses_that_are_not_public_are_refused(refused, kind):
    assert STRICT.refusal(address(refused)) == kind


@pytest.mark.parametrize("public", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34",
                                    "64:ff9b::808:808", "172.32.0.1", "100.128.0.1"])
def test_public_addresses_are_sent_to(public):
    assert STRICT.refusal(address(public)) is None


def test_the_reason_names_the_address_and_what_it_is():
    with pytest.raises(TargetRefused) as refused:
        STRICT.check_addresses("hooks.example.com", [address("10.0.0.5")])
    assert str(refused.value) == "webhook_url resolves to 10.0.0.5, a private address; refused"
    with pytest.raises(TargetRefused) as literal:
        STRICT.check_addresses("169.254.169.254", [address("169.254.169.254")])
    assert str(literal.value) == "webhook_url is 169.254.169.254, a link-local address (cloud metadata); refused"
    with pytest.raises(TargetRefused) as mapped:
        STRICT.check_addresses("::ffff:7f00:1", [address("::ffff:7f00:1")])
    assert "::ffff:7f00:1 (127.0.0.1), a loopback address" in str(mapped.value)


def test_one_private_answer_among_public_ones_refuses_the_name():
    with pytest.raises(TargetRefused, match="192.168.0.7"):
        STRICT.check_addresses("hooks.example.com", [address("93.184.216.34"), address("192.168.0.7")])


def test_mapped_addresses_are_connected_to_as_the_ipv4_address():
    assert STRICT.check_addresses("h", [address("::ffff:93.184.216.34")]) == [address("93.184.216.34")]


def test_an_operator_allowance_lets_private_networks_through_and_nothing_more():
    local = WebhookTargets(allowed_private_networks=(ipaddress.ip_network("127.0.0.0/8"),
                                                     ipaddress.ip_network("10.1.0.0/16")))
    assert local.refusal(address("127.0.0.1")) is None
    assert local.refusal(address("::ffff:127.0.0.1")) is None
    assert local.refusal(address("10.1.2.3")) is None
    assert local.refusal(address("10.2.0.1")) == "private"
    assert local.refusal(address("::1")) == "loopback"
    assert local.refusal(address("169.254.169.254")) == "link-local"


@pytest.mark.parametrize(("url", "kind"), [
    ("http://hooks.example.com/x", "http"), ("ftp://hooks.example.com/x", "scheme"),
    ("file:///etc/passwd", "scheme"), ("hooks.example.com/x", "scheme"), ("gopher://127.0.0.1:6379/_x", "scheme"),
])
def test_only_https_urls_unless_http_is_allowed(url, kind):
    parsed = httpx.URL(url)
    with pytest.raises(TargetRefused) as refused:
        STRICT.check_url(parsed.scheme, parsed.host)
    assert refused.value.kind == kind
    STRICT.check_url("https", "hooks.example.com")
    WebhookTargets(allow_http=True).check_url("http", "hooks.example.com")
    with pytest.raises(TargetRefused):
        WebhookTargets(allow_http=True).check_url("ftp", "hooks.example.com")


@pytest.mark.parametrize(("url", "resolved"), [
    # httpx keeps these hosts as names; the system resolver reads them as numbers, and that
    # number is what is judged and what a connection would reach.
    ("http://2130706433/", "127.0.0.1"), ("http://0x7f.1/", "127.0.0.1"), ("http://0177.1/", "127.0.0.1"),
    ("http://127.1/", "127.0.0.1"), ("http://0/", "0.0.0.0"), ("http://167772165/", "10.0.0.5"),
    ("http://[::ffff:7f00:1]/", "::ffff:7f00:1 (127.0.0.1)"), ("http://[::1]:8080/", "::1"),
    ("http://localhost/", "127.0.0.1"),
])
async def test_numeric_and_local_spellings_are_judged_by_what_they_resolve_to(url, resolved):
    backend = VettingBackend(WebhookTargets(allow_http=True))
    host = httpx.URL(url).host
    with pytest.raises(TargetRefused) as refused:
        await backend.vetted(host, 80, timeout=5)
    assert resolved in str(refused.value)
