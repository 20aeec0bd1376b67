"""The WebSocket upgrade decisions (DESIGN.md, Gateway; OCPP-J 1.6 section 3; OCPP 2.0.1 Part 4
section 3; OCPP 1.6 Security Whitepaper, security profiles 1-3). Pure functions of the request;
raise :class:`HandshakeRefused`. :class:`gateway.gatekeeper.Gatekeeper` puts them in order with the
credentials check and the throttling.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from gateway.errors import HandshakeRefused, RefusalKind

MAX_ID_LENGTH = 48
# Every refused login gets exactly this (and the same WWW-Authenticate challenge): the client cannot
# tell an unknown id from a wrong password from a throttled attempt.
UNAUTHORIZED = "valid Basic credentials required"
_ID_PATTERN = re.compile(r"[A-Za-z0-9*\-_=+|@.]{1,%d}" % MAX_ID_LENGTH)


def valid_charge_point_id(charge_point_id: str) -> bool:
    return _ID_PATTERN.fullmatch(charge_point_id) is not None


def charge_point_id_from_path(path: str, prefix: str) -> str:
    """``/<prefix>/<chargePointId>`` -> the URL-decoded id, checked against DESIGN.md's rules
    (at most 48 characters of ``A-Za-z0-9*-_=+|@.``)."""
    path = path.split("?", 1)[0]
    base = "/" + prefix.strip("/") + "/"
    if not path.startswith(base) or not path[len(base):] or "/" in path[len(base):]:
        raise HandshakeRefused(HTTPStatus.NOT_FOUND, f"OCPP endpoint is {base}<chargePointId>", RefusalKind.NOT_OCPP_PATH)
    segment = path[len(base):]
    # Decode exactly once: a %2F stays inside the id (and is then refused), never becomes a path separator.
    try:
        charge_point_id = unquote(segment, errors="strict") if "%" in segment else segment
    except UnicodeDecodeError:
        raise HandshakeRefused(HTTPStatus.BAD_REQUEST, "charge point id is not valid UTF-8", RefusalKind.BAD_CHARGE_POINT_ID) from None
    if not valid_charge_point_id(charge_point_id):
        raise HandshakeRefused(
            HTTPStatus.BAD_REQUEST,
            f"charge point id must be 1-{MAX_ID_LENGTH} characters of A-Za-z0-9*-_=+|@.",
            RefusalKind.BAD_CHARGE_POINT_ID,
        )
    return charge_point_id


def choose_subprotocol(offered_headers: Sequence[str], supported: Sequence[str]) -> str:
    """Exactly one subprotocol (RFC 6455 4.2.2; OCPP-J 1.6 and 2.0.1, section 3):
    the first of ``supported`` (the gateway's order of preference) that the charger offers, whatever
    the charger's own order; a refusal if it offers none of them.

    ``offered_headers`` are the raw ``Sec-WebSocket-Protocol`` header values (a client may send
    several headers, each a comma-separated list). Odd offers are tolerated, never matched loosely:
    empty entries (``,ocpp2.0.1``, a KEBA firmware) and whitespace are skipped; a name must match
    exactly (``ocpp2.0.1.1`` or ``OCPP1.6`` is not a supported protocol, and RFC 6455 lets a server
    echo only a name the client offered)."""
    offered = [p.strip() for header in offered_headers for p in header.split(",") if p.strip()]
    for protocol in supported:
        if protocol in offered:
            return protocol
    shown = ", ".join(offered) if offered else "none"
    raise HandshakeRefused(
        HTTPStatus.BAD_REQUEST,
        f"no supported OCPP subprotocol offered (offered: {shown[:200]}; supported: {', '.join(supported)})",
        RefusalKind.NO_SUBPROTOCOL,
    )


def unauthorized(kind: RefusalKind) -> HandshakeRefused:
    return HandshakeRefused(HTTPStatus.UNAUTHORIZED, UNAUTHORIZED, kind)


def basic_password(authorization: str | None, charge_point_id: str) -> bytes:
    """Security profiles 1 and 2 (HTTP Basic, RFC 7617): the password presented for ``charge_point_id``,
    as octets (a 1.6 AuthorizationKey may be any octets; a 2.0.1 BasicAuthPassword is UTF-8 text).

    Refused ``NO_CREDENTIALS`` without an Authorization header (a client that waits for the challenge),
    ``BAD_CREDENTIALS`` when it is not Basic, not base64, has no colon or names another user than the
    id in the path (ids cannot hold a colon, so the first colon ends the user)."""
    if not authorization:
        raise unauthorized(RefusalKind.NO_CREDENTIALS)
    if authorization[:6].lower() != "basic ":
        raise unauthorized(RefusalKind.BAD_CREDENTIALS)
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        raise unauthorized(RefusalKind.BAD_CREDENTIALS) from None
    user, sep, password = decoded.partition(b":")
    if not sep or user != charge_point_id.encode("utf-8"):
        raise unauthorized(RefusalKind.BAD_CREDENTIALS)
    return password


def check_client_certificate(peer_certificate: dict[str, Any] | None, charge_point_id: str) -> None:
    """Security profile 3: the TLS client certificate (already verified against the CA) must name the
    charge point: its subject commonName, or a DNS / URI subjectAltName, equals the id."""
    if not peer_certificate:
        raise HandshakeRefused(HTTPStatus.UNAUTHORIZED, "a client certificate is required", RefusalKind.NO_CERTIFICATE)
    names = {value for rdn in peer_certificate.get("subject", ()) for key, value in rdn if key == "commonName"}
    names |= {value for kind, value in peer_certificate.get("subjectAltName", ()) if kind in ("DNS", "URI")}
    if charge_point_id not in names:
        raise HandshakeRefused(HTTPStatus.FORBIDDEN, "the client certificate does not belong to this charge point",
                               RefusalKind.WRONG_CERTIFICATE)
