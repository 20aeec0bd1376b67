"""What a charger's Basic-auth secret must be (security profiles 1 and 2). Pure functions.

OCPP 2.0.1 (Part 2, A00.FR.205; the Security component's variable ``BasicAuthPassword``): "a randomly
chosen passwordString with a sufficiently high entropy, consisting of minimum 16 and maximum 40
characters"; ``passwordString`` (Part 2, primitive datatypes) may hold only ``a-z A-Z 0-9`` and
``* - _ = : + | @ .``. OCPP 1.6 (Security Whitepaper, configuration key ``AuthorizationKey``): the
password is 16 to 20 octets, configured as up to 40 hexadecimal digits; the charger sends the octets.

- :func:`check_password`: the 2.0.1 rule for a text password (``credentials add``); a
  :class:`~gateway.errors.WeakPassword` names the first rule broken, never the secret.
- :func:`authorization_key_octets`: a 1.6 AuthorizationKey's hexadecimal digits to its octets.
- :func:`acceptable`: a secret as presented at login (bytes): what ``credentials add`` would accept,
  either rule. Entries stored before the policy are salted hashes whose length no one can read; they
  are judged here at the charger's next login (``OCPP_GATEWAY_WEAK_PASSWORDS``).
"""

from __future__ import annotations

import binascii
import re
import string

from gateway.errors import WeakPassword

MIN_CHARACTERS, MAX_CHARACTERS = 16, 40  # OCPP 2.0.1 A00.FR.205
MIN_KEY_OCTETS, MAX_KEY_OCTETS = 16, 20  # OCPP 1.6 Security Whitepaper, AuthorizationKey
PASSWORD_CHARACTERS = frozenset(string.ascii_letters + string.digits + "*-_=:+|@.")
_SHOWN = "a-z A-Z 0-9 * - _ = : + | @ ."
_PASSWORD_STRING = re.compile(rb"[A-Za-z0-9*\-_=:+|@.]{%d,%d}" % (MIN_CHARACTERS, MAX_CHARACTERS))


def check_password(password: str) -> None:
    """The OCPP 2.0.1 rule: 16-40 characters of passwordString."""
    if not MIN_CHARACTERS <= len(password) <= MAX_CHARACTERS:
        raise WeakPassword(
            f"the password has {len(password)} characters; OCPP 2.0.1 security profiles ask "
            f"{MIN_CHARACTERS}-{MAX_CHARACTERS} (A00.FR.205)")
    for position, character in enumerate(password, 1):
        if character not in PASSWORD_CHARACTERS:
            shown = repr(character) if character.isprintable() and not character.isspace() else f"U+{ord(character):04X}"
            raise WeakPassword(f"character {position} ({shown}) is not allowed in an OCPP passwordString ({_SHOWN})")


def authorization_key_octets(hex_digits: str) -> bytes:
    """An OCPP 1.6 AuthorizationKey (hexadecimal, 32-40 digits) -> the 16-20 octets the charger sends."""
    digits = hex_digits.strip()
    try:
        octets = binascii.unhexlify(digits)
    except (binascii.Error, ValueError):
        raise WeakPassword("an AuthorizationKey is an even number of hexadecimal digits (0-9, a-f)") from None
    if not MIN_KEY_OCTETS <= len(octets) <= MAX_KEY_OCTETS:
        raise WeakPassword(
            f"the AuthorizationKey is {len(octets)} octets; the OCPP 1.6 Security Whitepaper asks "
            f"{MIN_KEY_OCTETS}-{MAX_KEY_OCTETS} ({2 * MIN_KEY_OCTETS}-{2 * MAX_KEY_OCTETS} hexadecimal digits)")
    return octets


def acceptable(secret: bytes) -> bool:
    """A secret presented at login meets one of the two rules: 16-40 passwordString characters (2.0.1)
    or 16-20 octets of anything (a 1.6 AuthorizationKey)."""
    return MIN_KEY_OCTETS <= len(secret) <= MAX_KEY_OCTETS or _PASSWORD_STRING.fullmatch(secret) is not None
