"""Whose connection is it: the address that the per-address controls count (the connection cap,
:mod:`gateway.connection_cap`; failed-login throttling, :mod:`gateway.throttle`). Pure functions.

- A peer outside ``OCPP_GATEWAY_TRUSTED_PROXIES`` is the client itself: a header it sends is never read
  (anyone can write ``X-Forwarded-For``).
- A peer inside them is one of the operator's own hops (load balancer, ingress, mesh sidecar, the NAT of
  a private APN): it is never a client. When ``OCPP_GATEWAY_CLIENT_ADDRESS_HEADER`` is set, the client
  is read from that header the way nginx's ``real_ip_recursive`` does: the rightmost address that is not
  a trusted proxy (each hop appends the address it saw; everything left of our own proxies' entries
  may be forged). ``Forwarded`` (RFC 7239, its ``for=`` parameters) and comma lists such as
  ``X-Forwarded-For`` are read; ``X-Real-IP`` is a list of one. No header, or an entry that is not an
  address: no client address, and the per-address controls leave the connection alone (the
  per-charge-point ones still hold).
- IPv6 clients are counted per network of ``OCPP_GATEWAY_IPV6_PREFIX_LENGTH`` bits (64: one host
  usually holds a whole /64 and could otherwise take a fresh address per attempt); an IPv4-mapped
  IPv6 address is its IPv4 address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str | None) -> IPAddress | None:
    """An address as a socket or a proxy header gives it (``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:443``,
    ``"[2001:db8::1]"``, ``fe80::1%eth0``); ``None`` for anything else (``unknown``, an obfuscated id)."""
    if not text:
        return None
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port (a bare IPv6 address has at least two colons)
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` values of an RFC 7239 ``Forwarded`` header, in order (one per hop)."""
    found = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, content = pair.strip().partition("=")
            if name.strip().lower() == "for":
                found.append(content)
    return found


class ClientAddresses:
    def __init__(self, trusted_proxies: Iterable[str], header: str | None = None, ipv6_prefix_length: int = 64) -> None:
        self._trusted = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)
        self.header = header or None
        self._forwarded = (header or "").lower() == "forwarded"
        self._ipv6_prefix = ipv6_prefix_length

    def trusted(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self._trusted)

    def key(self, address: IPAddress) -> str:
        """The name under which an address is counted (IPv6: its network of the configured prefix)."""
        if isinstance(address, ipaddress.IPv6Address) and self._ipv6_prefix < 128:
            return str(ipaddress.IPv6Network((address, self._ipv6_prefix), strict=False))
        return str(address)

    def of_peer(self, peer: str | None) -> tuple[str | None, bool]:
        """``(key, ask_the_request)`` for a TCP peer: its key when it is the client; ``(None, True)`` when it
        is a trusted proxy whose requests name the client (``OCPP_GATEWAY_CLIENT_ADDRESS_HEADER`` set);
        ``(None, False)`` when there is no client address to count."""
        address = parse_address(peer)
        if address is None:
            return None, False
        if not self.trusted(address):
            return self.key(address), False
        return None, self.header is not None

    def from_header(self, values: Sequence[str]) -> str | None:
        """The client named by a trusted proxy's header (every line of it, in order), or ``None``."""
        entries: list[str] = []
        for value in values:
            entries += _forwarded_for(value) if self._forwarded else value.split(",")
        for entry in reversed(entries):
            address = parse_address(entry)
            if address is None:
                return None  # the chain is broken here: what is left of it says nothing trustworthy
            if not self.trusted(address):
                return self.key(address)
        return None  # only our own hops: not a client
