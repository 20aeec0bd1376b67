"""Who may open an OCPP connection: the upgrade decisions in order, with the credentials check and the
failed-login throttling. Pure: the request's facts and the time come in as values (:class:`Attempt`),
an :class:`Admission` or a :class:`~gateway.errors.HandshakeRefused` comes out; the server
(:mod:`gateway.server`) reads the socket, counts the kinds and answers.

Order, for every security profile: the path (404 / 400), the subprotocol (400), then
- profiles 1-2: no Authorization header (401 challenge, not a failed login); a blocked address or charge
  point (401, the password **not checked**: a decoy hash takes its place, so a throttled attempt costs
  and looks what a checked one does); malformed credentials, an unknown id or a wrong password (401, a
  failed login for :class:`~gateway.throttle.LoginThrottle`); a right password outside the policy
  (:mod:`gateway.password_policy`): admitted and flagged (``warn``) or 401 (``refuse``);
- profile 3: the client certificate must name the charge point (401 none, 403 another's).

Every 401 of profiles 1-2 is the same status, text and challenge header, whatever its kind. The
per-address connection cap is the server's (it counts sockets, :mod:`gateway.connection_cap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gateway import handshake, password_policy
from gateway.credentials import Credentials, Verdict
from gateway.errors import HandshakeRefused, RefusalKind
from gateway.throttle import LoginThrottle

WeakPasswords = Literal["warn", "refuse"]

_FAILED = {Verdict.UNKNOWN_CHARGE_POINT: RefusalKind.UNKNOWN_CHARGE_POINT, Verdict.WRONG_PASSWORD: RefusalKind.WRONG_PASSWORD}


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a setattr call per field, per upgrade
class Attempt:
    path: str
    offered_subprotocols: Sequence[str]  # the raw Sec-WebSocket-Protocol header values
    authorization: tuple[str, ...] = ()  # every Authorization header value (one is expected)
    peer_certificate: dict[str, Any] | None = None  # profile 3: the verified TLS client certificate
    address: str | None = None  # the client's address key (gateway.client_address), None when unknown
    now: float = 0.0  # monotonic seconds


@dataclass(frozen=True, slots=True)
class Admission:
    charge_point_id: str
    subprotocol: str
    weak_password: bool = False  # admitted with a password outside the policy (OCPP_GATEWAY_WEAK_PASSWORDS=warn)


class Gatekeeper:
    def __init__(
        self,
        *,
        path_prefix: str,
        subprotocols: Sequence[str],
        security_profile: int,
        credentials: Credentials,
        throttle: LoginThrottle,
        weak_passwords: WeakPasswords = "warn",
    ) -> None:
        self.path_prefix = path_prefix
        self.subprotocols = tuple(subprotocols)
        self.security_profile = security_profile
        self.credentials = credentials
        self.throttle = throttle
        self.weak_passwords = weak_passwords

    def admit(self, attempt: Attempt) -> Admission:
        charge_point_id = handshake.charge_point_id_from_path(attempt.path, self.path_prefix)
        subprotocol = handshake.choose_subprotocol(attempt.offered_subprotocols, self.subprotocols)
        weak = False
        if self.security_profile in (1, 2):
            weak = self._login(charge_point_id, attempt)
        elif self.security_profile == 3:
            handshake.check_client_certificate(attempt.peer_certificate, charge_point_id)
        return Admission(charge_point_id, subprotocol, weak)

    def _login(self, charge_point_id: str, attempt: Attempt) -> bool:
        """Basic auth under throttling; ``True`` when admitted with a weak password."""
        if not attempt.authorization:
            raise handshake.unauthorized(RefusalKind.NO_CREDENTIALS)
        throttled = self.throttle.refusal(charge_point_id, attempt.address, attempt.now)
        if throttled is not None:
            self.credentials.decoy(attempt.authorization[0])
            raise handshake.unauthorized(throttled)
        try:
            if len(attempt.authorization) > 1:  # which one would a proxy or a log have looked at?
                raise handshake.unauthorized(RefusalKind.BAD_CREDENTIALS)
            password = handshake.basic_password(attempt.authorization[0], charge_point_id)
        except HandshakeRefused as refusal:
            refusal.blocked_for_s = self.throttle.failed(charge_point_id, attempt.address, attempt.now)
            raise
        verdict = self.credentials.check(charge_point_id, password)
        if verdict is not Verdict.ACCEPTED:
            wrong = handshake.unauthorized(_FAILED[verdict])
            wrong.blocked_for_s = self.throttle.failed(charge_point_id, attempt.address, attempt.now)
            raise wrong
        self.throttle.succeeded(charge_point_id, attempt.address)
        if password_policy.acceptable(password):
            return False
        if self.weak_passwords == "refuse":
            raise handshake.unauthorized(RefusalKind.WEAK_PASSWORD)
        return True
