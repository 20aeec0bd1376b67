"""The per-address connection cap: how many connections one client address may hold open on one gateway
process (``OCPP_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS``). Pure counting, no I/O.

A connection is counted from the moment the TCP connection (after TLS) is made, or, behind a trusted
proxy, from the moment its request names the client (:mod:`gateway.client_address`), until it closes,
whatever becomes of it: an upgrade still in progress holds a socket too. One beyond the cap is answered
429 and closed. Only addresses with open connections are kept, so memory follows the open sockets.

Why per process: what the cap protects is one process's sockets, memory and event loop; a site behind
one NAT with N chargers passes as long as N is within the cap, however the kernel spreads its
connections over the processes (``--processes``) and the load balancer over the pods.
"""

from __future__ import annotations


class ConnectionTally:
    def __init__(self, cap: int) -> None:
        """``cap``: connections per address, 0 for no cap (still counted, for the metric)."""
        self.cap = cap
        self._open: dict[str, int] = {}

    def opened(self, address: str) -> bool:
        """Count a connection; ``False`` when it takes its address beyond the cap (it is counted all the
        same until :meth:`closed`: it is open)."""
        count = self._open.get(address, 0) + 1
        self._open[address] = count
        return not self.cap or count <= self.cap

    def closed(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def count(self, address: str) -> int:
        return self._open.get(address, 0)

    def __len__(self) -> int:
        """Addresses with open connections."""
        return len(self._open)
