"""Failed-login throttling for Basic auth (security profiles 1-2), per charge point id and per client
address. Pure: time is an argument (monotonic seconds); no I/O.

Each key has a failure *score*: every failed login adds 1, and the score halves every
``half_life_s`` (so failures are forgiven gradually, not all at once at some reset time). Once the score
passes ``free_failures``, every failure blocks the key for ``base_s · 2^(score − free − 1)`` seconds, at
most ``max_s``: 1, 2, 4, ... seconds for consecutive failures, capped. While a key is blocked, an attempt
on it is refused **without the password being checked** (:class:`~gateway.gatekeeper.Gatekeeper` burns
the same hash on a decoy, and the client gets the same 401 as for a wrong password), and it is not counted
as a failure: a charger retrying through a block is not punished further, it just waits.

Keys:
- the charge point id, for attempts from anywhere but the address of its last good login;
- (id, that address): a charger at home keeps a ledger of its own, so failures that someone elsewhere
  sends for its id do not lock it out (account lockout is a denial of service anyone can aim at a known
  id); a charger with a wrong password at home is throttled all the same;
- the client address (:mod:`gateway.client_address`; none behind a trusted proxy that does not name
  the client), with many more free failures: a site behind one NAT shares it, and one misconfigured
  charger there must not lock out its neighbours.

Memory is bounded whatever an attacker sends: each ledger holds at most ``capacity`` keys, the least
recently failed going first (a key forgotten this way starts again from zero, which costs an attacker
``capacity`` failed logins from elsewhere in between); the last-good-address map grows only with
successful logins. Each gateway process keeps its own ledgers (``--processes N`` spreads one client's
connections over N of them).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

from gateway.errors import RefusalKind

_NEGLIGIBLE = 0.05  # a score this small, unblocked, is forgotten when met


@dataclass(frozen=True)
class Backoff:
    free_failures: float
    base_s: float
    max_s: float
    half_life_s: float

    def decayed(self, score: float, elapsed_s: float) -> float:
        return score * 0.5 ** (elapsed_s / self.half_life_s) if elapsed_s > 0 else score

    def wait_s(self, score: float) -> float:
        """How long a key with this score (just failed) is blocked."""
        excess = score - self.free_failures
        if excess <= 0:
            return 0.0
        return min(self.base_s * math.pow(2.0, min(excess - 1, 64)), self.max_s)


class _Entry:
    __slots__ = ("score", "at", "until")

    def __init__(self, score: float, at: float, until: float) -> None:
        self.score, self.at, self.until = score, at, until


class FailureLedger:
    """Decaying failure scores of at most ``capacity`` keys."""

    def __init__(self, backoff: Backoff, capacity: int) -> None:
        self.backoff = backoff
        self.capacity = capacity
        # A plain dict keeps insertion order and is quicker than an OrderedDict: popping a key and setting it
        # again moves it to the end, so the first key is the least recently failed.
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def blocked(self, key: Hashable, now: float) -> bool:
        entry = self._entries.get(key)
        return entry is not None and now < entry.until

    def fail(self, key: Hashable, now: float) -> float:
        """Count a failure; returns the seconds the key is now blocked for (0: not blocked)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            self._make_room(now)
            entry = _Entry(0.0, now, now)
        entry.score = self.backoff.decayed(entry.score, now - entry.at) + 1.0
        entry.at = now
        wait = self.backoff.wait_s(entry.score)
        entry.until = max(entry.until, now + wait)
        self._entries[key] = entry
        return wait

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def _make_room(self, now: float) -> None:
        # The oldest entry goes if it has been forgiven anyway (keeps the ledger small in quiet times),
        # or if the ledger is full.
        if not self._entries:
            return
        key, oldest = next(iter(self._entries.items()))
        forgiven = now >= oldest.until and self.backoff.decayed(oldest.score, now - oldest.at) < _NEGLIGIBLE
        if forgiven or len(self._entries) >= self.capacity:
            del self._entries[key]


class LoginThrottle:
    def __init__(self, per_charge_point: Backoff, per_address: Backoff, capacity: int) -> None:
        self.charge_points = FailureLedger(per_charge_point, capacity)
        self.addresses = FailureLedger(per_address, capacity)
        self._home: dict[str, str] = {}  # charge point id -> address of its last good login, oldest first
        self._capacity = capacity

    def _charge_point_key(self, charge_point_id: str, address: str | None) -> Hashable:
        at_home = address is not None and self._home.get(charge_point_id) == address
        return (charge_point_id, address) if at_home else charge_point_id

    def refusal(self, charge_point_id: str, address: str | None, now: float) -> RefusalKind | None:
        """Why an attempt must be refused unchecked, or ``None`` when its password may be checked."""
        if address is not None and self.addresses.blocked(address, now):
            return RefusalKind.THROTTLED_ADDRESS
        if self.charge_points.blocked(self._charge_point_key(charge_point_id, address), now):
            return RefusalKind.THROTTLED_CHARGE_POINT
        return None

    def failed(self, charge_point_id: str, address: str | None, now: float) -> float:
        """A checked login failed; returns the longer of the two waits it imposed."""
        wait = self.charge_points.fail(self._charge_point_key(charge_point_id, address), now)
        if address is not None:
            wait = max(wait, self.addresses.fail(address, now))
        return wait

    def succeeded(self, charge_point_id: str, address: str | None) -> None:
        """A good login makes its address the id's home, whose ledger starts clean. The id's shared ledger
        (failures sent from anywhere else) stays, and so does the address's score: a success undoes
        neither an attacker's failures nor another charger's at the same address."""
        if address is None:
            return
        self.charge_points.forget((charge_point_id, address))
        self._home.pop(charge_point_id, None)
        if len(self._home) >= self._capacity:
            del self._home[next(iter(self._home))]
        self._home[charge_point_id] = address
