"""``ocpp-pipeline keys``: every key is checked before anything is sent (a bad import line refuses the whole file,
naming the line), the events carry the decoded key's curve and fingerprint, and ``keys list`` is the registry the
table's events fold into. Kafka is never reached when a key is refused (the settings point at a closed port)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_pipeline import cli
from ocpp_pipeline.keys import KeyCommandError, events_from_args, list_rows
from signed_meter.keys import decode_public_key
from tests.signed_meter.conftest import OCMF_DIR

SAMPLES = json.loads((OCMF_DIR / "samples.json").read_text())
P256 = next(s for s in SAMPLES if s["curve"] == "secp256r1")["public_key_hex"]
K1 = next(s for s in SAMPLES if s["curve"] == "secp256k1")["public_key_hex"]
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
POINT = decode_public_key(P256).point.hex()  # 04 || X || Y, as a label prints it


def args(action: str, **flags) -> argparse.Namespace:
    base = {"action": action, "charge_point": "CP-1", "connector": None, "public_key": P256, "curve": None,
            "meter_serial": "", "author": "ops", "reference": "T-1", "file": None}
    return argparse.Namespace(**(base | flags))


@pytest.mark.parametrize(("flags", "curve"), [
    ({}, "secp256r1"),
    ({"public_key": K1, "connector": 2}, "secp256k1"),
    ({"public_key": POINT, "curve": "secp256r1"}, "secp256r1"),  # a bare point on the curve named
    ({"public_key": POINT}, "secp256r1"),  # ... or the curve it is a point of
    ({"public_key": " " + P256.upper() + " "}, "secp256r1"),
], ids=["der-hex", "k1-connector", "point-with-curve", "point-without-curve", "upper-case-spaces"])
def test_good_keys_become_events_with_curve_and_fingerprint(flags, curve) -> None:
    (event,) = events_from_args(args("add", **flags), NOW)
    assert event.curve == curve and len(event.fingerprint) == 16
    assert event.action.value == "add" and event.author == "ops" and event.at == NOW
    assert event.connector_id == flags.get("connector")


@pytest.mark.parametrize(("flags", "message"), [
    ({"public_key": "not a key"}, "not usable"),
    ({"public_key": "04" + "11" * 64}, "not usable"),  # no point of any curve
    ({"public_key": P256, "curve": "secp384r1"}, "a secp256r1 key"),  # the DER says another curve
    ({"public_key": POINT, "curve": "secp384r1"}, "not usable"),  # a 256-bit point is no P-384 point
    ({"charge_point": "CP 1/x"}, "can never connect"),  # an unknown charge point: no charger can have this id
    ({"charge_point": ""}, "can never connect"),
    ({"connector": 0}, "is not a connector"),
    ({"author": "  "}, "--author"),
], ids=["garbage", "no-point", "wrong-curve-der", "wrong-curve-point", "bad-charge-point", "empty-charge-point",
        "connector-0", "no-author"])
def test_bad_keys_are_refused_with_the_reason(flags, message) -> None:
    with pytest.raises(KeyCommandError, match=message):
        events_from_args(args("add", **flags), NOW)


HEADER = "charge_point_id,connector_id,public_key,meter_serial\n"


@pytest.mark.parametrize(("lines", "line", "message"), [
    ([f"CP-1,,{P256},S1", "CP-2,1,zz,S2"], 3, "line 3"),
    ([f"CP-1,,{P256},S1", f"CP-2,0,{K1},S2"], 3, "connector_id"),
    ([f",1,{P256},S1"], 2, "required"),
    ([f"CP-1,,{P256},S1", f"CP 2,,{K1},"], 3, "can never connect"),
    ([f"CP-1,,{P256},S1", "", f"CP 2,,{K1},"], 4, "can never connect"),  # a blank line still counts
], ids=["bad-key", "connector-0", "no-charge-point", "bad-charge-point", "after-a-blank-line"])
def test_a_bad_line_refuses_the_whole_file_naming_it(tmp_path: Path, lines, line, message) -> None:
    path = tmp_path / "keys.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n")
    with pytest.raises(KeyCommandError, match=message) as raised:
        events_from_args(args("import", file=path), NOW)
    assert f"line {line}" in str(raised.value) and "nothing was registered" in str(raised.value)


def test_a_good_file_is_every_line_in_order(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_text(HEADER + f"CP-1,,{P256},S1\nCP-2,2,{K1},\n")
    events = events_from_args(args("import", file=path), NOW)
    assert [(e.charge_point_id, e.connector_id, e.curve, e.meter_serial) for e in events] == [
        ("CP-1", None, "secp256r1", "S1"), ("CP-2", 2, "secp256k1", "")]


def test_the_simulators_keys_file_imports(tmp_path: Path) -> None:
    from simulator.fleet import write_meter_keys
    from simulator.settings import SimulatorSettings

    path = tmp_path / "meter-keys.csv"
    keys, signing = write_meter_keys(SimulatorSettings(chargers=20, signing_share=0.5), path)
    assert keys and signing
    assert len(events_from_args(args("import", file=path), NOW)) == keys


def test_through_the_command_a_refused_file_exits_2_and_sends_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("OCPP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # nothing listens: a send would fail otherwise
    path = tmp_path / "keys.csv"
    path.write_text(HEADER + f"CP-1,,{P256},\nCP-2,,04abc,\n")
    assert cli.main(["keys", "import", str(path), "--author", "ops"]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "nothing was registered" in err
    assert cli.main(["keys", "add", "--charge-point", "CP-1", "--public-key", P256, "--curve", "secp384r1",
                     "--author", "ops"]) == 2
    assert "a secp256r1 key" in capsys.readouterr().err


ops = st.lists(st.tuples(st.sampled_from(["CP-1", "CP-2"]), st.sampled_from([P256, K1, P256.upper()]),
                         st.sampled_from(["add", "remove"]), st.sampled_from([None, 1])), max_size=12)


@settings(max_examples=40, deadline=None)
@given(ops)
def test_list_is_the_registry_the_events_fold_into(steps) -> None:
    from signed_meter.key_events import registry_of_records

    events = []
    for n, (cp, key, action, connector) in enumerate(steps):
        (event,) = events_from_args(args(action, charge_point=cp, public_key=key, connector=connector),
                                    NOW.replace(minute=n))
        events.append(event)
    listed = list_rows(events, history=False).rows
    registry = registry_of_records(events)
    assert sorted((r[0], r[1] or 0, r[3]) for r in listed) == sorted(
        (k.charge_point_id, k.connector_id or 0, decode_public_key(k.public_key).fingerprint) for k in registry.entries)
    assert len(list_rows(events, history=True).rows) == len(events)
