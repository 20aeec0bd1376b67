"""Handshake decisions: charge point id rules, subprotocol negotiation, Basic credentials, client certificates.
(The login itself, with the credentials file and the throttling, is tests/gateway/test_gatekeeper.py.)"""

from __future__ import annotations

import base64
from http import HTTPStatus

import pytest

from gateway.credentials import Credentials, Verdict, hash_secret
from gateway.errors import HandshakeRefused, RefusalKind
from gateway.handshake import (
    basic_password,
    charge_point_id_from_path,
    check_client_certificate,
    choose_subprotocol,
)


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/ocpp/CP-1", "CP-1"),
        ("/ocpp/CP-1?token=x", "CP-1"),
        ("/ocpp/a*b-c_d=e+f|g@h.i", "a*b-c_d=e+f|g@h.i"),
        ("/ocpp/CP%2D1", "CP-1"),  # percent-encoded, decoded once
        ("/ocpp/" + "x" * 48, "x" * 48),
    ],
)
def test_accepted_ids(path: str, expected: str) -> None:
    assert charge_point_id_from_path(path, "/ocpp") == expected


@pytest.mark.parametrize(
    "path, status",
    [
        ("/other/CP-1", HTTPStatus.NOT_FOUND),
        ("/ocpp/", HTTPStatus.NOT_FOUND),
        ("/ocpp", HTTPStatus.NOT_FOUND),
        ("/ocpp/CP/1", HTTPStatus.NOT_FOUND),
        ("/ocpp/" + "x" * 49, HTTPStatus.BAD_REQUEST),  # over-long id
        ("/ocpp/CP:1", HTTPStatus.BAD_REQUEST),  # breaks Basic auth
        ("/ocpp/CP%3A1", HTTPStatus.BAD_REQUEST),
        ("/ocpp/CP%2F1", HTTPStatus.BAD_REQUEST),  # an encoded slash never becomes a separator
        ("/ocpp/..%2F..%2Fetc", HTTPStatus.BAD_REQUEST),
        ("/ocpp/CP%0D%0AX-Injected:%201", HTTPStatus.BAD_REQUEST),  # header injection
        ("/ocpp/CP 1", HTTPStatus.BAD_REQUEST),
        ("/ocpp/CP%FF", HTTPStatus.BAD_REQUEST),  # not UTF-8
        ("/ocpp/%C3%A9", HTTPStatus.BAD_REQUEST),
    ],
)
def test_refused_paths(path: str, status: HTTPStatus) -> None:
    with pytest.raises(HandshakeRefused) as info:
        charge_point_id_from_path(path, "/ocpp")
    assert info.value.status == status


@pytest.mark.parametrize(
    "offered, chosen",
    [
        (["ocpp1.6"], "ocpp1.6"),
        (["ocpp2.0.1, ocpp1.6"], "ocpp1.6"),
        (["ocpp2.0.1", "ocpp1.6"], "ocpp1.6"),
        ([" ocpp1.6 ,ocpp2.0.1"], "ocpp1.6"),
    ],
)
def test_exactly_one_supported_subprotocol_is_chosen(offered: list[str], chosen: str) -> None:
    assert choose_subprotocol(offered, ("ocpp1.6",)) == chosen


@pytest.mark.parametrize("offered", [[], ["ocpp2.0.1"], ["ocpp2.0.1.1"], ["ocpp1.5"], ["OCPP1.6"]])
def test_no_supported_subprotocol_is_refused(offered: list[str]) -> None:
    with pytest.raises(HandshakeRefused) as info:
        choose_subprotocol(offered, ("ocpp1.6",))
    assert info.value.status == HTTPStatus.BAD_REQUEST


BOTH = ("ocpp1.6", "ocpp2.0.1")  # the default order of OCPP_GATEWAY_SUBPROTOCOLS
BOTH_201_FIRST = ("ocpp2.0.1", "ocpp1.6")


@pytest.mark.parametrize(
    "offered, chosen_16_first, chosen_201_first",
    [
        (["ocpp1.6"], "ocpp1.6", "ocpp1.6"),
        (["ocpp2.0.1"], "ocpp2.0.1", "ocpp2.0.1"),
        # Both offered, in either order, in one header or two: the gateway's preference decides.
        (["ocpp2.0.1, ocpp1.6"], "ocpp1.6", "ocpp2.0.1"),
        (["ocpp1.6, ocpp2.0.1"], "ocpp1.6", "ocpp2.0.1"),
        (["ocpp2.0.1", "ocpp1.6"], "ocpp1.6", "ocpp2.0.1"),
        (["ocpp1.6,ocpp2.0.1"], "ocpp1.6", "ocpp2.0.1"),
        # Odd offers (OCPP-QUIRKS.md, Protocol and OCPP 2.0.1).
        ([",ocpp2.0.1"], "ocpp2.0.1", "ocpp2.0.1"),  # an empty first entry (KEBA)
        ([" , ocpp2.0.1 ,"], "ocpp2.0.1", "ocpp2.0.1"),
        (["\tocpp2.0.1 "], "ocpp2.0.1", "ocpp2.0.1"),
        (["ocpp2.0.1.1, ocpp1.6"], "ocpp1.6", "ocpp1.6"),
        (["ocpp2.0.1.1, ocpp2.0.1"], "ocpp2.0.1", "ocpp2.0.1"),
        (["ocpp2.0, ocpp2.0.1"], "ocpp2.0.1", "ocpp2.0.1"),
        (["", "ocpp1.6"], "ocpp1.6", "ocpp1.6"),
        (["ocpp2.0.1, ocpp 1.6"], "ocpp2.0.1", "ocpp2.0.1"),  # not a token: skipped
    ],
)
def test_negotiation_with_both_versions(offered: list[str], chosen_16_first: str, chosen_201_first: str) -> None:
    assert choose_subprotocol(offered, BOTH) == chosen_16_first
    assert choose_subprotocol(offered, BOTH_201_FIRST) == chosen_201_first


@pytest.mark.parametrize(
    "offered", [[], [""], [","], [" "], ["ocpp2.0.1.1"], ["ocpp2.0"], ["ocpp2.1"], ["OCPP2.0.1"], ["ocpp1.5"], ["ocpp 1.6"]]
)
def test_none_supported_is_refused_with_both_versions(offered: list[str]) -> None:
    for supported in (BOTH, BOTH_201_FIRST, ("ocpp2.0.1",)):
        with pytest.raises(HandshakeRefused) as info:
            choose_subprotocol(offered, supported)
        assert info.value.status == HTTPStatus.BAD_REQUEST


def test_a_gateway_without_201_refuses_a_201_only_charger() -> None:
    with pytest.raises(HandshakeRefused):
        choose_subprotocol(["ocpp2.0.1"], ("ocpp1.6",))
    assert choose_subprotocol(["ocpp2.0.1", "ocpp1.6"], ("ocpp2.0.1",)) == "ocpp2.0.1"


def _basic(user: str, password: str | bytes) -> str:
    secret = password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(user.encode() + b":" + secret).decode()


@pytest.mark.parametrize(
    "header, expected",
    [
        (_basic("CP-1", "s3cret-key-0123456789"), b"s3cret-key-0123456789"),
        (_basic("CP-1", "with:colons:inside"), b"with:colons:inside"),  # the first colon ends the user
        (_basic("CP-1", bytes(range(256))[:20]), bytes(range(256))[:20]),  # a 1.6 AuthorizationKey: any octets
        ("basic " + base64.b64encode(b"CP-1:x").decode(), b"x"),  # the scheme is case-insensitive (RFC 7617)
    ],
)
def test_basic_password_is_the_octets_after_the_first_colon(header: str, expected: bytes) -> None:
    assert basic_password(header, "CP-1") == expected


@pytest.mark.parametrize(
    "header, charge_point_id, kind",
    [
        (None, "CP-1", RefusalKind.NO_CREDENTIALS),
        ("", "CP-1", RefusalKind.NO_CREDENTIALS),
        ("Bearer abc", "CP-1", RefusalKind.BAD_CREDENTIALS),
        ("Basic !!!notbase64", "CP-1", RefusalKind.BAD_CREDENTIALS),
        (_basic("CP-2", "s3cret-key-0123456789"), "CP-1", RefusalKind.BAD_CREDENTIALS),  # user must be the id in the path
        ("Basic " + base64.b64encode(b"CP-1").decode(), "CP-1", RefusalKind.BAD_CREDENTIALS),  # no colon
        ("Basic " + base64.b64encode(b"\xff\xfe:pw").decode(), "CP-1", RefusalKind.BAD_CREDENTIALS),  # user not UTF-8
    ],
)
def test_basic_credentials_refusals_are_one_401(header: str | None, charge_point_id: str, kind: RefusalKind) -> None:
    with pytest.raises(HandshakeRefused) as info:
        basic_password(header, charge_point_id)
    assert (info.value.status, info.value.reason, info.value.kind) == (HTTPStatus.UNAUTHORIZED, "valid Basic credentials required", kind)


def test_credentials_never_show_their_secrets(tmp_path) -> None:
    path = tmp_path / "creds.json"
    Credentials.set_entry(path, "CP-9", "topsecret-authorization-key")
    loaded = Credentials.load(path)
    assert "topsecret" not in repr(loaded) and "topsecret" not in path.read_text()
    assert loaded.verify("CP-9", "topsecret-authorization-key")
    assert not loaded.verify("CP-9", "topsecret-authorization-kez")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_credentials_tell_unknown_ids_from_wrong_passwords_for_metrics_only() -> None:
    credentials = Credentials({"CP-1": hash_secret("s3cret-key-0123456789")})
    assert credentials.check("CP-1", b"s3cret-key-0123456789") is Verdict.ACCEPTED
    assert credentials.check("CP-1", "s3cret-key-0123456789") is Verdict.ACCEPTED  # text: its UTF-8 octets
    assert credentials.check("CP-1", b"s3cret-key-012345678") is Verdict.WRONG_PASSWORD
    assert credentials.check("CP-2", b"s3cret-key-0123456789") is Verdict.UNKNOWN_CHARGE_POINT


def test_binary_authorization_keys_verify_as_octets(tmp_path) -> None:
    key = bytes.fromhex("00ff10e2" * 5)  # 20 octets, not UTF-8
    Credentials.set_entry(tmp_path / "c.json", "CP-16", key)
    loaded = Credentials.load(tmp_path / "c.json")
    assert loaded.verify("CP-16", key) and not loaded.verify("CP-16", key[:-1])


def test_entries_written_before_the_octets_change_still_verify() -> None:
    # Earlier versions hashed password.encode("utf-8"): the same octets a charger sends.
    import hashlib

    salt = bytes(range(16))
    legacy = f"sha256${salt.hex()}${hashlib.sha256(salt + 'pässwörd-0123456789'.encode()).hexdigest()}"
    assert Credentials({"CP-1": legacy}).verify("CP-1", "pässwörd-0123456789".encode("utf-8"))


def test_client_certificate_must_name_the_charge_point() -> None:
    cert = {"subject": ((("commonName", "CP-1"),),), "subjectAltName": (("DNS", "cp-1.example"),)}
    check_client_certificate(cert, "CP-1")
    check_client_certificate(cert, "cp-1.example")
    with pytest.raises(HandshakeRefused) as info:
        check_client_certificate(cert, "CP-2")
    assert info.value.status == HTTPStatus.FORBIDDEN
    with pytest.raises(HandshakeRefused):
        check_client_certificate(None, "CP-1")
