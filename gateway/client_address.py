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
import socket
from collections.abc import Iterable, Sequence
from typing import NamedTuple

_MAPPED_V4 = bytes(10) + b"\xff\xff"  # ::ffff:a.b.c.d
_PEER_CACHE = 65536


class Address(NamedTuple):
    """An IP address as the kernel holds it (``socket.inet_pton``): parsing with the C library costs about a
    tenth of :mod:`ipaddress`, and this runs on every upgrade."""

    family: int  # socket.AF_INET or socket.AF_INET6
    packed: bytes

    def __str__(self) -> str:
        return socket.inet_ntop(self.family, self.packed)


def parse_address(text: str | None) -> Address | None:
    """An address as a socket or a proxy header gives it (``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:443``,
    ``"[2001:db8::1]"``, ``fe80::1%eth0``); ``None`` for anything else (``unknown``, an obfuscated id)."""
    if not text:
        return None
    try:  # the common case first: a bare IPv4 address, as the kernel names a peer
        return Address(socket.AF_INET, socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):
        pass
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port (a bare IPv6 address has at least two colons)
        text = text.partition(":")[0]
    try:
        if ":" not in text:
            return Address(socket.AF_INET, socket.inet_pton(socket.AF_INET, text))
        packed = socket.inet_pton(socket.AF_INET6, text.partition("%")[0])  # a zone says which link, not who
    except (OSError, ValueError):
        return None
    if packed[:12] == _MAPPED_V4:
        return Address(socket.AF_INET, packed[12:])
    return Address(socket.AF_INET6, packed)


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
        networks = [ipaddress.ip_network(n, strict=False) for n in trusted_proxies]
        # (family, first address, mask) as integers: one AND and one compare per network.
        self._trusted = tuple(
            (socket.AF_INET if n.version == 4 else socket.AF_INET6, int(n.network_address), int(n.netmask)) for n in networks)
        self.header = header or None
        self._forwarded = (header or "").lower() == "forwarded"
        self._ipv6_keep = 128 - ipv6_prefix_length
        self._ipv6_prefix = ipv6_prefix_length
        # Peers seen lately and what they are: chargers reconnect from the same addresses (a storm after a
        # restart), and a look-up here is a tenth of a parse.
        self._peers: dict[str | None, tuple[str | None, bool]] = {}

    def trusted(self, address: Address) -> bool:
        value = int.from_bytes(address.packed, "big")
        for family, first, mask in self._trusted:
            if family == address.family and value & mask == first:
                return True
        return False

    def key(self, address: Address) -> str:
        """The name under which an address is counted (IPv6: its network of the configured prefix)."""
        if address.family == socket.AF_INET6 and self._ipv6_keep:
            value = int.from_bytes(address.packed, "big") >> self._ipv6_keep << self._ipv6_keep
            return f"{socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, 'big'))}/{self._ipv6_prefix}"
        return str(address)

    def of_peer(self, peer: str | None) -> tuple[str | None, bool]:
        """``(key, ask_the_request)`` for a TCP peer: its key when it is the client; ``(None, True)`` when it
        is a trusted proxy whose requests name the client (``OCPP_GATEWAY_CLIENT_ADDRESS_HEADER`` set);
        ``(None, False)`` when there is no client address to count."""
        found = self._peers.get(peer)
        if found is None:
            address = parse_address(peer)
            if address is None:
                found = None, False
            elif not self.trusted(address):
                found = self.key(address), False
            else:
                found = None, self.header is not None
            if len(self._peers) >= _PEER_CACHE:  # bounded whatever the peers: start over
                self._peers.clear()
            self._peers[peer] = found
        return found

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
