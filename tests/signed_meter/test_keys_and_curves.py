"""Every curve and SA spelling OCMF allows verifies; every key spelling decodes to the same key."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signed_meter.curves import CURVES, parse_algorithm
from signed_meter.errors import UnusablePublicKey
from signed_meter.keys import decode_public_key
from signed_meter.model import SignatureStatus, SignedFlag
from signed_meter.registry import RegisteredKey
from signed_meter.verification import verify_text
from tests.signed_meter.signing import TM1, Signer, payload

# (SA as written, curve) - the spec table's spellings, the field's, and case / separator variants
SA_SPELLINGS = [
    ("ECDSA-secp192r1-SHA256", "secp192r1"),
    ("ECDSA-secp192k1-SHA256", "secp192k1"),
    ("ECDSA-secp256r1-SHA256", "secp256r1"),
    (None, "secp256r1"),  # SA absent: the default
    ("ECDSA-secp256k1-SHA256", "secp256k1"),
    ("ECDSA-secp384r1-SHA256", "secp384r1"),
    ("ECDSA-secp521r1-SHA256", "secp521r1"),
    ("ECDSA-brainpool256r1-SHA256", "brainpoolP256r1"),  # the spec table's spelling
    ("ECDSA-brainpoolP256r1-SHA256", "brainpoolP256r1"),  # NZR's
    ("ECDSA-brainpool384r1-SHA256", "brainpoolP384r1"),
    ("ECDSA-brainpoolP384r1-SHA256", "brainpoolP384r1"),
    ("ecdsa-secp256r1-sha256", "secp256r1"),
    ("ECDSA-secp256r1-SHA-256", "secp256r1"),
]
SIGNERS = {curve: Signer(curve) for curve in CURVES}


@pytest.mark.parametrize(("sa", "curve"), SA_SPELLINGS)
def test_every_sa_spelling_verifies_on_its_curve(sa, curve):
    signer = SIGNERS[curve]
    text = signer.sign(payload(1, ("B", "1.000", TM1)), sa=sa)
    verdict = verify_text(text, [RegisteredKey("CP", None, signer.public_key_hex)])
    assert verdict.status is SignatureStatus.VERIFIED, verdict.detail


@pytest.mark.parametrize("hash_name", ["SHA256", "SHA384", "SHA512"])
def test_hashes_beside_sha256(hash_name):
    signer = SIGNERS["secp384r1"]
    text = signer.sign(payload(1, ("B", "1", TM1)), sa=f"ECDSA-secp384r1-{hash_name}", hash_name=hash_name)
    assert verify_text(text, [RegisteredKey("CP", None, signer.public_key_hex)]).status is SignatureStatus.VERIFIED


def test_base64_signature_encoding():
    signer = SIGNERS["secp256r1"]
    text = signer.sign(payload(1, ("B", "1", TM1)), se="base64")
    assert verify_text(text, [RegisteredKey("CP", None, signer.public_key_hex)]).status is SignatureStatus.VERIFIED


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("RSA-2048-SHA256", (None, None)),
        ("ECDSA-secp256r1", (None, None)),
        ("ECDSA-curve25519-SHA256", (None, "SHA256")),
        ("ECDSA-secp256r1-MD5", ("secp256r1", None)),
        ("", (None, None)),
    ],
)
def test_unknown_algorithms(declared, expected):
    assert parse_algorithm(declared) == expected


def test_an_unknown_algorithm_is_unsupported_not_invalid():
    signer = SIGNERS["secp256r1"]
    text = signer.sign(payload(1, ("B", "1", TM1)), sa="RSA-2048-SHA256")
    verdict = verify_text(text, [RegisteredKey("CP", None, signer.public_key_hex)])
    assert verdict.status is SignatureStatus.UNSUPPORTED
    assert SignedFlag.ALGORITHM_UNSUPPORTED in verdict.flags


def _spellings(signer: Signer) -> list[tuple[str, str]]:
    der = bytes.fromhex(signer.public_key_hex)
    point = signer.point
    size = CURVES[signer.curve][1]
    compressed = bytes([2 + (point[-1] & 1)]) + point[1 : 1 + size]
    return [
        ("hex lower", der.hex()),
        ("hex upper", der.hex().upper()),
        ("hex spaced", " ".join(der.hex()[i : i + 4] for i in range(0, len(der.hex()), 4))),
        ("base64 DER", base64.b64encode(der).decode()),
        ("base64 of hex text (OCA)", base64.b64encode(der.hex().upper().encode()).decode()),
        ("oca prefix", base64.b64encode(b"oca:base16:asn1:" + der.hex().encode()).decode()),
        ("uncompressed point", point.hex()),
        ("bare X||Y", point[1:].hex()),
        ("compressed point", compressed.hex()),
        ("compressed point, base32", base64.b32encode(compressed).decode().rstrip("=")),
    ]


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_every_key_spelling_decodes_to_the_same_key(curve):
    signer = SIGNERS[curve]
    want = decode_public_key(signer.public_key_hex)
    assert want.curve == curve
    for name, text in _spellings(signer):
        assert decode_public_key(text, curve) == want, name


@pytest.mark.parametrize(
    "text",
    ["", "zz", "30", "3059" + "00" * 89, "04" + "11" * 64, "not a key at all", "A" * 5000, "02" + "ff" * 32],
)
def test_keys_that_are_not_keys(text):
    with pytest.raises(UnusablePublicKey):
        decode_public_key(text, "secp256r1")


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(curve=st.sampled_from(sorted(CURVES)), rv=st.decimals(min_value=0, max_value=10**9, places=3),
       ms=st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"]), max_size=20), flip=st.integers(min_value=0))
def test_signed_payloads_verify_and_any_changed_byte_fails(curve, rv, ms, flip):
    signer = SIGNERS[curve]
    text = payload(7, ("B", str(rv), TM1), ms="X").replace('"MS":"X"', f'"MS":{json.dumps(ms)}')
    record = signer.sign(text, sa=f"ECDSA-{curve}-SHA256")
    keys = [RegisteredKey("CP", None, signer.public_key_hex)]
    assert verify_text(record, keys).status is SignatureStatus.VERIFIED
    start = len("OCMF|")
    position = start + flip % len(text)
    original = record[position]
    changed = record[:position] + ("0" if original != "0" else "1") + record[position + 1 :]
    assert verify_text(changed, keys).status in (SignatureStatus.INVALID, SignatureStatus.UNPARSABLE)


# P-521's X has 521 bits: its first byte is 0 or 1, never the DER tag.
@pytest.mark.parametrize("curve", [c for c in sorted(CURVES) if c != "secp521r1"])
def test_a_bare_point_whose_first_byte_looks_like_der_is_still_a_point(curve):
    """X||Y with X beginning 0x30 (a DER SEQUENCE tag) is a bare point on the record's curve, not broken DER:
    found by the random keys of the test above (one key in 256)."""
    signer = next(s for s in (Signer(curve) for _ in range(10_000)) if s.point[1] == 0x30)
    assert decode_public_key(signer.point[1:].hex(), curve) == decode_public_key(signer.public_key_hex)
