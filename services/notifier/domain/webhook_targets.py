"""Which webhook URLs and addresses the notifier may send to.

A webhook_url comes from the customer, so without these rules a PortRequested could make the
notifier POST to its own host, the cloud metadata service or the private network (SSRF). Only
http(s) URLs are sent to (https unless WEBHOOK_ALLOW_HTTP), and only to globally routable
addresses, unless an operator allows a private network (WEBHOOK_ALLOWED_PRIVATE_NETWORKS).
Every address a host resolves to is judged (adapters/pinned_transport.py resolves at send time
and connects only to an address judged here), so a name with one public and one private
answer is refused: which one a connection would get is not ours to choose.

IPv6 forms that carry an IPv4 address are judged by it too: IPv4-mapped (::ffff:a.b.c.d, as the
IPv4 address itself), NAT64 (64:ff9b::/96, routed to the embedded address by a NAT64 gateway)
and 6to4 (2002::/16). Numeric host spellings (2130706433, 0x7f.1, 0177.1) are not parsed
here: the system resolver turns them into the address that is then judged and connected to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
NAT64 = ipaddress.ip_network("64:ff9b::/96")
CLOUD_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class TargetRefused(Exception):
    """This webhook URL or address may not be sent to; final, never retried."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


@dataclass(frozen=True)
class WebhookTargets:
    """The operator's rules: by default https to public addresses only."""

    allow_http: bool = False
    allowed_private_networks: tuple[IPNetwork, ...] = ()

    def check_url(self, scheme: str, host: str) -> None:
        """Raises TargetRefused for a URL whose scheme or host can never be sent to."""
        if scheme == "https" or (scheme == "http" and self.allow_http):
            if not host:
                raise TargetRefused("webhook_url has no host; refused", "no_host")
            return
        if scheme == "http":
            raise TargetRefused("webhook_url must use https (http only where WEBHOOK_ALLOW_HTTP is set); refused",
                                "http")
        raise TargetRefused(f"webhook_url must be an https URL, not {scheme + ':' if scheme else 'one without a scheme'};"
                            " refused", "scheme")

    def check_addresses(self, host: str, addresses: Sequence[IPAddress]) -> list[IPAddress]:
        """The addresses to connect to, as judged; TargetRefused if any one of them is refused."""
        if not addresses:
            raise TargetRefused(f"webhook_url host {host} resolves to no address; refused", "no_address")
        vetted: list[IPAddress] = []
        for address in addresses:
            refused = self._refused_form(address)
            if refused is not None:
                kind, form = refused
                said = "is" if _is_literal(host) else "resolves to"
                described = "shared (carrier-grade NAT)" if kind == "shared" else kind
                article = "an" if kind[0] in "aeiou" else "a"
                shown = str(address) if form == address else f"{address} ({form})"
                note = " (cloud metadata)" if form in CLOUD_METADATA else ""
                raise TargetRefused(f"webhook_url {said} {shown}, {article} {described} address{note}; refused", kind)
            vetted.append(_unmapped(address))
        return vetted

    def refusal(self, address: IPAddress) -> str | None:
        """What kind of address this is when it may not be sent to (loopback, private, ...); None if it may."""
        refused = self._refused_form(address)
        return refused[0] if refused else None

    def _refused_form(self, address: IPAddress) -> tuple[str, IPAddress] | None:
        judged = _judged_forms(address)
        if any(form in network for form in [address, *judged] for network in self.allowed_private_networks):
            return None
        for form in judged:
            kind = _kind(form)
            if kind is not None:
                return kind, form
        return None


def _kind(address: IPAddress) -> str | None:
    # Spelled out, not just `is_global`: older Pythons call some reserved and multicast ranges global.
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in SHARED_ADDRESS_SPACE:
        return "shared"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-global"
    return None


def _unmapped(address: IPAddress) -> IPAddress:
    """::ffff:a.b.c.d is a.b.c.d to the kernel; it is judged, shown and connected to as that."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _judged_forms(address: IPAddress) -> list[IPAddress]:
    """The addresses a connection to `address` reaches: a NAT64 address is its embedded IPv4
    address (DNS64 hands those out for public IPv4 hosts), a 6to4 address is both."""
    address = _unmapped(address)
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    if address in NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address, address.sixtofour]
    return [address]


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
