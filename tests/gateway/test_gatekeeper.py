"""Who may connect (gateway.gatekeeper): the decisions in order, and no oracle: an unknown id, a wrong
password and a throttled attempt are the same 401 to the client, and a throttled attempt is never checked."""

from __future__ import annotations

import base64
from http import HTTPStatus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.credentials import Credentials, Verdict, hash_secret
from gateway.errors import HandshakeRefused, RefusalKind
from gateway.gatekeeper import Admission, Attempt, Gatekeeper
from gateway.handshake import UNAUTHORIZED
from gateway.throttle import Backoff, LoginThrottle

RIGHT = "Right-Password-0123"
WEAK = "short-one"
CERT = {"subject": ((("commonName", "CP-1"),),)}


class RecordingCredentials(Credentials):
    """The real credentials, counting what was checked and what was burnt on a decoy."""

    def __init__(self, hashes: dict[str, str]) -> None:
        super().__init__(hashes)
        self.checks = 0
        self.decoys = 0

    def check(self, charge_point_id: str, secret: str | bytes) -> Verdict:
        self.checks += 1
        return super().check(charge_point_id, secret)

    def decoy(self, secret: str | bytes) -> None:  # type: ignore[override]
        self.decoys += 1
        Credentials.decoy(secret)


def basic(user: str, password: str) -> tuple[str, ...]:
    return ("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),)


def gatekeeper(profile: int = 1, *, weak_passwords: str = "warn", free: int = 2) -> Gatekeeper:
    credentials = RecordingCredentials({"CP-1": hash_secret(RIGHT), "CP-WEAK": hash_secret(WEAK)})
    throttle = LoginThrottle(Backoff(free, 1.0, 8.0, 3600.0), Backoff(10 * free, 1.0, 8.0, 3600.0), capacity=64)
    return Gatekeeper(path_prefix="/ocpp", subprotocols=("ocpp1.6", "ocpp2.0.1"), security_profile=profile,
                      credentials=credentials, throttle=throttle, weak_passwords=weak_passwords)  # type: ignore[arg-type]


def attempt(charge_point: str = "CP-1", authorization: tuple[str, ...] = (), *, path: str | None = None,
            offered: tuple[str, ...] = ("ocpp1.6",), cert: dict | None = None, address: str | None = "203.0.113.7",
            now: float = 0.0) -> Attempt:
    return Attempt(path or f"/ocpp/{charge_point}", offered, authorization, cert, address, now)


def outcome(keeper: Gatekeeper, a: Attempt) -> Admission | tuple[HTTPStatus, str, RefusalKind]:
    try:
        return keeper.admit(a)
    except HandshakeRefused as refusal:
        return refusal.status, refusal.reason, refusal.kind


@pytest.mark.parametrize(
    "profile, a, expected",
    [
        (0, attempt(), Admission("CP-1", "ocpp1.6")),
        (0, attempt(offered=("ocpp2.0.1", "ocpp1.6")), Admission("CP-1", "ocpp1.6")),
        (0, attempt(path="/metrics"), (HTTPStatus.NOT_FOUND, "OCPP endpoint is /ocpp/<chargePointId>", RefusalKind.NOT_OCPP_PATH)),
        (0, attempt(path="/healthz"), (HTTPStatus.NOT_FOUND, "OCPP endpoint is /ocpp/<chargePointId>", RefusalKind.NOT_OCPP_PATH)),
        (0, attempt(path="/ocpp/CP:1"), RefusalKind.BAD_CHARGE_POINT_ID),
        (0, attempt(offered=("ocpp2.1",)), RefusalKind.NO_SUBPROTOCOL),
        (1, attempt(authorization=basic("CP-1", RIGHT)), Admission("CP-1", "ocpp1.6")),
        (2, attempt(authorization=basic("CP-1", RIGHT)), Admission("CP-1", "ocpp1.6")),
        (1, attempt(), RefusalKind.NO_CREDENTIALS),
        (1, attempt(authorization=("Bearer x",)), RefusalKind.BAD_CREDENTIALS),
        (1, attempt(authorization=basic("CP-2", RIGHT)), RefusalKind.BAD_CREDENTIALS),  # another user than the path's id
        (1, attempt(authorization=basic("CP-1", RIGHT) * 2), RefusalKind.BAD_CREDENTIALS),  # two Authorization headers
        (1, attempt("CP-2", basic("CP-2", RIGHT)), RefusalKind.UNKNOWN_CHARGE_POINT),
        (1, attempt(authorization=basic("CP-1", RIGHT + "x")), RefusalKind.WRONG_PASSWORD),
        (1, attempt(path="/ocpp/CP-1", offered=()), RefusalKind.NO_SUBPROTOCOL),  # before any credential is looked at
        (1, attempt("CP-WEAK", basic("CP-WEAK", WEAK)), Admission("CP-WEAK", "ocpp1.6", weak_password=True)),
        (3, attempt(cert=CERT), Admission("CP-1", "ocpp1.6")),
        (3, attempt(), (HTTPStatus.UNAUTHORIZED, "a client certificate is required", RefusalKind.NO_CERTIFICATE)),
        (3, attempt("CP-2", cert=CERT), RefusalKind.WRONG_CERTIFICATE),
    ],
)
def test_decisions(profile: int, a: Attempt, expected: object) -> None:
    result = outcome(gatekeeper(profile), a)
    if isinstance(expected, RefusalKind):
        assert isinstance(result, tuple) and result[2] is expected
        if profile in (1, 2) and result[0] == HTTPStatus.UNAUTHORIZED:
            assert result[:2] == (HTTPStatus.UNAUTHORIZED, UNAUTHORIZED)
    else:
        assert result == expected


def test_weak_passwords_refused_when_so_configured() -> None:
    keeper = gatekeeper(weak_passwords="refuse")
    assert outcome(keeper, attempt("CP-WEAK", basic("CP-WEAK", WEAK))) == (HTTPStatus.UNAUTHORIZED, UNAUTHORIZED, RefusalKind.WEAK_PASSWORD)
    assert isinstance(outcome(keeper, attempt(authorization=basic("CP-1", RIGHT))), Admission)
    # The right weak password is not a failed login: nothing gets throttled by it.
    for n in range(10):
        outcome(keeper, attempt("CP-WEAK", basic("CP-WEAK", WEAK), now=float(n)))
    assert keeper.throttle.refusal("CP-WEAK", "203.0.113.7", 10.0) is None


def test_the_right_password_is_refused_unchecked_while_blocked() -> None:
    keeper = gatekeeper(free=2)
    credentials = keeper.credentials
    assert isinstance(credentials, RecordingCredentials)
    for _ in range(3):
        outcome(keeper, attempt(authorization=basic("CP-1", "guess-guess-guess")))
    checks = credentials.checks
    assert outcome(keeper, attempt(authorization=basic("CP-1", RIGHT), now=0.5)) == (
        HTTPStatus.UNAUTHORIZED, UNAUTHORIZED, RefusalKind.THROTTLED_CHARGE_POINT)
    assert credentials.checks == checks and credentials.decoys == 1
    assert isinstance(outcome(keeper, attempt(authorization=basic("CP-1", RIGHT), now=1.0)), Admission)  # block over


PASSWORDS = {"right": RIGHT, "wrong": "Wrong-Password-0123", "garbled": None, "none": None}


@given(st.lists(st.tuples(st.sampled_from(["CP-1", "CP-2"]), st.sampled_from(sorted(PASSWORDS)),
                          st.sampled_from(["203.0.113.7", "198.51.100.1", None]), st.floats(0, 5)), max_size=60))
def test_no_oracle(script: list[tuple[str, str, str | None, float]]) -> None:
    """Any mix of right, wrong, garbled and absent credentials, known and unknown ids, from a few addresses:
    every refusal is the same 401 whatever its kind; a throttled attempt is never checked; the right
    password for the known id is admitted exactly when nothing blocks it."""
    keeper = gatekeeper(free=2)
    credentials = keeper.credentials
    assert isinstance(credentials, RecordingCredentials)
    now = 0.0
    for charge_point, password, address, gap in script:
        now += gap
        header = () if password == "none" else ("Basic !!garbled",) if password == "garbled" else basic(charge_point, PASSWORDS[password])
        blocked = keeper.throttle.refusal(charge_point, address, now)
        checks, decoys = credentials.checks, credentials.decoys
        result = outcome(keeper, attempt(charge_point, header, address=address, now=now))
        if isinstance(result, Admission):
            assert (charge_point, password, blocked) == ("CP-1", "right", None)
            continue
        status, reason, kind = result
        assert (charge_point, password, blocked) != ("CP-1", "right", None)  # the right password, unblocked, opens
        assert (status, reason) == (HTTPStatus.UNAUTHORIZED, UNAUTHORIZED)  # one face for every kind
        if kind in (RefusalKind.THROTTLED_ADDRESS, RefusalKind.THROTTLED_CHARGE_POINT):
            assert kind is blocked and header
            assert (credentials.checks, credentials.decoys) == (checks, decoys + 1)  # not checked, same work
        else:
            assert kind is not RefusalKind.WEAK_PASSWORD
            assert credentials.checks == checks + (kind in (RefusalKind.UNKNOWN_CHARGE_POINT, RefusalKind.WRONG_PASSWORD))
