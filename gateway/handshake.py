"""The WebSocket upgrade decisions (DESIGN.md, Gateway; OCPP-J 1.6 section 3; OCPP 2.0.1 Part 4
section 3; OCPP 1.6 Security Whitepaper, security profiles 1-3). Pure functions of the request;
raise :class:`HandshakeRefused`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from http import HTTPStatus
from urllib.parse import unquote

from gateway.credentials import Credentials
from gateway.errors import HandshakeRefused

MAX_ID_LENGTH = 48
_ID_PATTERN = re.compile(r"[A-Za-z0-9*\-_=+|@.]{1,%d}" % MAX_ID_LENGTH)


def charge_point_id_from_path(path: str, prefix: str) -> str:
    """``/<prefix>/<chargePointId>`` -> the URL-decoded id, checked against DESIGN.md's rules
    (at most 48 characters of ``A-Za-z0-9*-_=+|@.``)."""
    path = path.split("?", 1)[0]
    base = "/" + prefix.strip("/") + "/"
    if not path.startswith(base):
        raise HandshakeRefused(HTTPStatus.NOT_FOUND, f"OCPP endpoint is {base}<chargePointId>")
    segment = path[len(base):]
    if not segment or "/" in segment:
        raise HandshakeRefused(HTTPStatus.NOT_FOUND, f"OCPP endpoint is {base}<chargePointId>")
    # Decode exactly once: a %2F stays inside the id (and is then refused), never becomes a path separator.
    try:
        charge_point_id = unquote(segment, errors="strict") if "%" in segment else segment
    except UnicodeDecodeError:
        raise HandshakeRefused(HTTPStatus.BAD_REQUEST, "charge point id is not valid UTF-8") from None
    if not _ID_PATTERN.fullmatch(charge_point_id):
        raise HandshakeRefused(
            HTTPStatus.BAD_REQUEST,
            f"charge point id must be 1-{MAX_ID_LENGTH} characters of A-Za-z0-9*-_=+|@.",
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
    )


def check_basic_auth(authorization: str | None, charge_point_id: str, credentials: Credentials) -> None:
    """Security profiles 1 and 2: HTTP Basic, user = charge point id, password = its AuthorizationKey."""
    challenge = HandshakeRefused(HTTPStatus.UNAUTHORIZED, "valid Basic credentials required")
    if not authorization or not authorization[:6].lower() == "basic ":
        raise challenge
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise challenge from None
    user, sep, password = decoded.partition(":")
    if not sep or user != charge_point_id or not credentials.verify(charge_point_id, password):
        raise challenge


def check_client_certificate(peer_certificate: dict | None, charge_point_id: str) -> None:
    """Security profile 3: the TLS client certificate (already verified against the CA) must name the
    charge point: its subject commonName, or a DNS / URI subjectAltName, equals the id."""
    if not peer_certificate:
        raise HandshakeRefused(HTTPStatus.UNAUTHORIZED, "a client certificate is required")
    names = {value for rdn in peer_certificate.get("subject", ()) for key, value in rdn if key == "commonName"}
    names |= {value for kind, value in peer_certificate.get("subjectAltName", ()) if kind in ("DNS", "URI")}
    if charge_point_id not in names:
        raise HandshakeRefused(HTTPStatus.FORBIDDEN, "the client certificate does not belong to this charge point")
