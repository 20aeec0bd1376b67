"""Whose connection is it (gateway.client_address) and how many each address holds (gateway.connection_cap):
a header counts only from a trusted proxy, and then its rightmost untrusted hop."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.client_address import ClientAddresses, parse_address
from gateway.connection_cap import ConnectionTally

PROXIES = ("10.0.0.0/8", "127.0.0.0/8", "::1/128", "fd00::/8")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:51234", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ('"[2001:db8::1]"', "2001:db8::1"),
        ("::ffff:198.51.100.2", "198.51.100.2"),  # IPv4-mapped: the IPv4 client
        ("fe80::1%eth0", "fe80::1"),  # the zone names a link, not a client
        ("unknown", None),
        ("_hidden", None),
        ("", None),
        (None, None),
        ("300.1.1.1", None),
        ("1.2.3.4:5:6", None),
    ],
)
def test_parse_address(text: str | None, expected: str | None) -> None:
    parsed = parse_address(text)
    assert (str(parsed) if parsed is not None else None) == expected


@pytest.mark.parametrize(
    "peer, header, key, ask",
    [
        ("203.0.113.7", None, "203.0.113.7", False),  # a direct client
        ("203.0.113.7", "X-Forwarded-For", "203.0.113.7", False),  # a direct client's header is never read
        ("10.1.2.3", None, None, False),  # our proxy, naming no one: not a client
        ("10.1.2.3", "X-Forwarded-For", None, True),  # our proxy: the request names the client
        ("127.0.0.1", None, None, False),  # loopback (a sidecar, the simulator) is trusted by default
        ("2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64", False),  # IPv6: per /64
        ("::ffff:203.0.113.7", None, "203.0.113.7", False),
        ("not an address", None, None, False),
    ],
)
def test_of_peer(peer: str, header: str | None, key: str | None, ask: bool) -> None:
    assert ClientAddresses(PROXIES, header).of_peer(peer) == (key, ask)


@pytest.mark.parametrize(
    "header, values, expected",
    [
        ("X-Forwarded-For", ["203.0.113.7"], "203.0.113.7"),
        ("X-Forwarded-For", ["198.51.100.1, 203.0.113.7"], "203.0.113.7"),  # the rightmost hop: what our proxy saw
        ("X-Forwarded-For", ["198.51.100.1, 203.0.113.7, 10.0.0.5"], "203.0.113.7"),  # our own hops are skipped
        ("X-Forwarded-For", ["198.51.100.1", "203.0.113.7"], "203.0.113.7"),  # several header lines, in order
        ("X-Forwarded-For", ["forged, 203.0.113.7"], "203.0.113.7"),  # garbage left of the real hop is never reached
        ("X-Forwarded-For", ["203.0.113.7, garbage"], None),  # the chain is broken at our proxy's own entry
        ("X-Forwarded-For", ["10.0.0.1, 127.0.0.1"], None),  # only our hops: no client
        ("X-Forwarded-For", [], None),
        ("X-Real-IP", ["203.0.113.9"], "203.0.113.9"),
        ("Forwarded", ['for=192.0.2.60;proto=https;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"'], "2001:db8:cafe::/64"),
        ("Forwarded", ["for=192.0.2.60, for=10.0.0.2"], "192.0.2.60"),
        ("Forwarded", ["proto=https"], None),
    ],
)
def test_from_header(header: str, values: list[str], expected: str | None) -> None:
    assert ClientAddresses(PROXIES, header).from_header(values) == expected


ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
addresses = ipv4 | ipv6


@given(st.lists(addresses, max_size=6), addresses)
def test_a_trusted_proxy_s_header_gives_the_rightmost_untrusted_hop(forged: list, seen) -> None:
    """Whatever a client writes into the header (``forged``), our proxy appends the address it saw: the
    client is that address, unless it is one of ours (then whoever is left of it)."""
    addresses = ClientAddresses(PROXIES, "X-Forwarded-For")
    chain = [str(a) for a in forged] + [str(seen)]
    found = addresses.from_header([", ".join(chain)])
    untrusted = [a for a in [*forged, seen] if not addresses.trusted(parse_address(str(a)))]
    if not addresses.trusted(parse_address(str(seen))):
        assert found == addresses.key(parse_address(str(seen)))
    elif untrusted:
        assert found == addresses.key(parse_address(str(untrusted[-1])))
    else:
        assert found is None


@given(addresses, st.text(max_size=40))
def test_an_untrusted_peer_is_its_own_address_whatever_it_sends(peer, header_value: str) -> None:
    addresses = ClientAddresses(PROXIES, "X-Forwarded-For")
    key, ask = addresses.of_peer(str(peer))
    if addresses.trusted(parse_address(str(peer))):
        assert (key, ask) == (None, True)
    else:
        assert (key, ask) == (addresses.key(parse_address(str(peer))), False)


@given(ipv6, st.integers(0, 2**64 - 1))
def test_one_ipv6_host_cannot_rotate_out_of_its_key(address, host_bits: int) -> None:
    addresses = ClientAddresses((), None, ipv6_prefix_length=64)
    sibling = ipaddress.IPv6Address((int(address) >> 64 << 64) | host_bits)
    if address.ipv4_mapped is None and sibling.ipv4_mapped is None:
        assert addresses.of_peer(str(address))[0] == addresses.of_peer(str(sibling))[0]


def test_no_trusted_proxies_means_every_peer_is_a_client() -> None:
    assert ClientAddresses((), "X-Forwarded-For").of_peer("127.0.0.1") == ("127.0.0.1", False)


# --- the cap ----------------------------------------------------------------------------------------


def test_the_cap_counts_open_connections_per_address() -> None:
    tally = ConnectionTally(cap=2)
    assert [tally.opened("a"), tally.opened("a"), tally.opened("a"), tally.opened("b")] == [True, True, False, True]
    tally.closed("a")
    tally.closed("a")
    assert tally.opened("a")  # two of three closed: room again
    assert ConnectionTally(cap=0).opened("a")  # 0: no cap


@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abcd")), max_size=200), st.integers(0, 5))
def test_the_tally_is_exactly_the_open_connections(events: list[tuple[bool, str]], cap: int) -> None:
    tally, open_ = ConnectionTally(cap), {k: 0 for k in "abcd"}
    for opening, key in events:
        if opening:
            open_[key] += 1
            assert tally.opened(key) == (not cap or open_[key] <= cap)
        elif open_[key]:
            open_[key] -= 1
            tally.closed(key)
        assert tally.count(key) == open_[key]
    assert len(tally) == sum(1 for v in open_.values() if v)  # memory follows the open connections
