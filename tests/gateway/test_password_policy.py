"""The Basic-auth secret rule (OCPP 2.0.1 A00.FR.205, passwordString; OCPP 1.6 Security Whitepaper,
AuthorizationKey), at ``credentials add`` and at login, and the ``credentials`` command itself."""

from __future__ import annotations

import io
import json
import re
import string
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.credentials import Credentials
from gateway.errors import WeakPassword
from gateway.password_policy import PASSWORD_CHARACTERS, acceptable, authorization_key_octets, check_password
from ocpp_pipeline.cli import main

ALLOWED = "".join(sorted(PASSWORD_CHARACTERS))


def test_the_character_set_is_the_spec_s() -> None:
    assert PASSWORD_CHARACTERS == set(string.ascii_letters + string.digits + "*-_=:+|@.")


@pytest.mark.parametrize(
    "password, problem",
    [
        ("a" * 15, "15 characters; OCPP 2.0.1 security profiles ask 16-40"),
        ("a" * 41, "41 characters"),
        ("", "0 characters"),
        ("correct horse battery staple", "character 8 (U+0020) is not allowed"),
        ("sixteen-chars-ok!", "character 17 ('!') is not allowed"),
        ("pässwörd-pässwörd", "character 2 ('ä') is not allowed"),
        ("tab\tinside-the-password", "character 4 (U+0009)"),
    ],
)
def test_refused_passwords_say_which_rule(password: str, problem: str) -> None:
    with pytest.raises(WeakPassword, match=re.escape(problem)):
        check_password(password)


@pytest.mark.parametrize("password", ["a" * 16, "A" * 40, "0123456789abcdef", "Z*-_=:+|@.z*-_=:+|@.", "CP-0001:key|2026@site.x"])
def test_accepted_passwords(password: str) -> None:
    check_password(password)
    assert acceptable(password.encode())


@given(st.text(alphabet=ALLOWED, min_size=16, max_size=40))
def test_every_password_string_of_16_to_40_passes_both_checks(password: str) -> None:
    check_password(password)
    assert acceptable(password.encode())


@given(st.text(min_size=0, max_size=60))
def test_check_and_login_agree_on_text(password: str) -> None:
    """Whatever text ``credentials add`` accepts passes at login; text it refuses passes at login only as a
    1.6 AuthorizationKey would (16-20 octets)."""
    try:
        check_password(password)
    except WeakPassword as refusal:
        # The message tells the length and the first character refused, nothing else of the secret.
        blanked = "".join("a" if c in PASSWORD_CHARACTERS else c for c in password)
        with pytest.raises(WeakPassword) as again:
            check_password(blanked)
        assert str(again.value) == str(refusal)
        octets = password.encode("utf-8")
        assert acceptable(octets) == (16 <= len(octets) <= 20)
    else:
        assert acceptable(password.encode())


@pytest.mark.parametrize(
    "digits, octets",
    [("00" * 16, 16), ("ff" * 20, 20), ("0123456789ABCDEFabcdef0123456789", 16), ("  " + "1f" * 18 + "\n", 18)],
)
def test_authorization_keys(digits: str, octets: int) -> None:
    assert len(authorization_key_octets(digits)) == octets


@pytest.mark.parametrize(
    "digits, problem",
    [("00" * 15, "15 octets"), ("00" * 21, "21 octets"), ("0" * 33, "even number"), ("zz" * 16, "hexadecimal digits")],
)
def test_refused_authorization_keys(digits: str, problem: str) -> None:
    with pytest.raises(WeakPassword, match=problem):
        authorization_key_octets(digits)


@given(st.binary(min_size=16, max_size=20))
def test_any_16_to_20_octets_is_an_authorization_key(octets: bytes) -> None:
    assert authorization_key_octets(octets.hex()) == octets and acceptable(octets)


@given(st.binary(max_size=15) | st.binary(min_size=41, max_size=80))
def test_too_short_or_too_long_never_passes(octets: bytes) -> None:
    assert not acceptable(octets)


# --- the command -------------------------------------------------------------------------------


def credentials(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, stdin: str, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["credentials", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    "stdin, extra, message",
    [
        ("short\n", [], "the password has 5 characters; OCPP 2.0.1 security profiles ask 16-40"),
        ("sixteen-chars-ok!\n", [], "character 17 ('!') is not allowed in an OCPP passwordString"),
        ("\n", [], "read no password on standard input"),
        ("abcd\n", ["--authorization-key"], "the AuthorizationKey is 2 octets"),
    ],
)
def test_credentials_add_refuses_with_one_line(monkeypatch, capsys, tmp_path: Path, stdin: str, extra: list[str], message: str) -> None:
    code, output = credentials(monkeypatch, capsys, stdin, "add", "CP-1", "--file", str(tmp_path / "c.json"), *extra)
    assert code == 2
    (line,) = output.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"ocpp-pipeline credentials add: {message}")
    assert stdin.strip() not in line or not stdin.strip()  # never the secret itself
    assert not (tmp_path / "c.json").exists()


def test_credentials_add_then_set(monkeypatch, capsys, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    code, _ = credentials(monkeypatch, capsys, "First-Password-0123\n", "add", "CP-1", "--file", str(path))
    assert code == 0 and Credentials.load(path).verify("CP-1", "First-Password-0123")
    code, output = credentials(monkeypatch, capsys, "Second-Password-0123\n", "add", "CP-1", "--file", str(path))
    assert code == 2 and "already has credentials" in output and "`credentials set` replaces them" in output
    code, _ = credentials(monkeypatch, capsys, "Second-Password-0123\n", "set", "CP-1", "--file", str(path))
    assert code == 0 and Credentials.load(path).verify("CP-1", "Second-Password-0123")
    key = "00112233445566778899aabbccddeeff0011aabb"
    code, _ = credentials(monkeypatch, capsys, key + "\n", "add", "CP-16", "--file", str(path), "--authorization-key")
    assert code == 0 and Credentials.load(path).verify("CP-16", bytes.fromhex(key))
    assert set(json.loads(path.read_text())) == {"CP-1", "CP-16"}
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_credentials_refuse_an_id_that_can_never_connect(monkeypatch, capsys, tmp_path: Path) -> None:
    code, output = credentials(monkeypatch, capsys, "Valid-Password-0123\n", "add", "CP:1", "--file", str(tmp_path / "c.json"))
    assert code == 2 and "can never connect" in output
