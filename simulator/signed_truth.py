"""What the pipeline must make of a session's signed readings, from what the charger knows it sent.

The simulator knows which of its records are intact, whose key the operator registered and which meter
signed each, so the verdict follows from the facts (issue 25, the rules of ``signed_meter.session``):

- ``signature_status``: ``unsigned`` without records; ``invalid`` when a record was changed after signing;
  ``verified_with_frame_key`` when its key travels only in the frames; else ``verified``;
- ``signed_start`` / ``signed_stop``: the Begin / End record exactly as sent (None when none went);
- ``signed_energy_wh``: End - Begin of the register both sign, when one meter signed both;
- flags: ``signed_begin_without_end`` / ``signed_end_without_begin``, ``signed_meter_serial_changed`` (two
  meters), ``signed_pagination_gap`` (one meter's records not numbered one after the other),
  ``signed_energy_mismatch`` (the session's energy off the signed energy by the meter's step, 1 Wh, or more).

``tests/simulator/test_signing.py`` holds these against what ``signed_meter`` itself finds in the frames.
:func:`signature_differences` compares them with a session row that has the signature columns (issue 25,
part 2); a row without them is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from signed_meter.model import TX_BEGIN, TX_END, SignatureStatus, SignedFlag
from simulator.ocmf_meter import SentRecord

SIGNED_FLAGS = frozenset(flag.value for flag in SignedFlag)
STEP_WH = 1  # every simulated meter signs whole Wh (kWh with three decimals)
ENERGY_TOLERANCE_WH = 1.0  # as the session energy's (simulator.expectations)


def expected_signatures(records: Sequence[SentRecord], energy_wh: float) -> dict[str, Any]:
    """The signature fields of an expected session (:class:`~simulator.lives.ExpectedSession`)."""
    if not records:
        return {"signature_status": SignatureStatus.UNSIGNED.value, "signed_start": None, "signed_stop": None,
                "signed_energy_wh": None, "signed_meter_serial": None, "signed_flags": []}
    if not all(r.intact for r in records):
        status = SignatureStatus.INVALID
    elif any(r.frame_key is not None for r in records):
        status = SignatureStatus.VERIFIED_WITH_FRAME_KEY
    else:
        status = SignatureStatus.VERIFIED
    begin = next((r for r in records if r.tx == TX_BEGIN), None)
    end = next((r for r in reversed(records) if r.tx == TX_END), None)
    flags: set[SignedFlag] = set()
    if begin is not None and end is None:
        flags.add(SignedFlag.BEGIN_WITHOUT_END)
    if end is not None and begin is None:
        flags.add(SignedFlag.END_WITHOUT_BEGIN)
    serials = {r.meter_serial for r in records}
    if len(serials) > 1:
        flags.add(SignedFlag.METER_SERIAL_CHANGED)
    for serial in serials:
        numbers = sorted({r.pagination for r in records if r.meter_serial == serial})
        if numbers[-1] - numbers[0] + 1 != len(numbers):
            flags.add(SignedFlag.PAGINATION_GAP)
    signed_energy = None
    if begin is not None and end is not None and len(serials) == 1:
        signed_energy = float(end.register_wh - begin.register_wh)
        if abs(energy_wh - signed_energy) >= STEP_WH:
            flags.add(SignedFlag.ENERGY_MISMATCH)
    return {"signature_status": status.value, "signed_start": begin.text if begin else None,
            "signed_stop": end.text if end else None, "signed_energy_wh": signed_energy,
            "signed_meter_serial": serials.pop() if len(serials) == 1 else None,
            "signed_flags": sorted(flag.value for flag in flags)}


def signature_differences(expected: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, str]:
    """Field -> what differs, between an expected session and a row with the signature columns (else {})."""
    if "signature_status" not in row:
        return {}
    want = {"signature_status": expected.get("signature_status", SignatureStatus.UNSIGNED.value),
            "signed_start": expected.get("signed_start"), "signed_stop": expected.get("signed_stop")}
    got = {field: row.get(field) or None for field in want}
    got["signature_status"] = row["signature_status"]
    diffs = {field: f"{field} {_short(got[field])} != {_short(value)}" for field, value in want.items() if got[field] != value}
    energy, wanted_energy = row.get("signed_energy_wh"), expected.get("signed_energy_wh")
    if (energy is None) != (wanted_energy is None) or (
            energy is not None and abs(float(energy) - float(wanted_energy)) > ENERGY_TOLERANCE_WH):  # type: ignore[arg-type]
        diffs["signed_energy_wh"] = f"signed_energy_wh {energy!r} != {wanted_energy!r}"
    if "signed_meter_serial" in row and (row["signed_meter_serial"] or None) != expected.get("signed_meter_serial"):
        diffs["signed_meter_serial"] = f"signed_meter_serial {row['signed_meter_serial']!r} != {expected.get('signed_meter_serial')!r}"
    flags = sorted(f for f in row.get("flags", ()) if f in SIGNED_FLAGS)
    if flags != sorted(expected.get("signed_flags", ())):
        diffs["signed_flags"] = f"signed flags {flags} != {sorted(expected.get('signed_flags', ()))}"
    return diffs


def _short(text: Any) -> str:
    return repr(text) if not isinstance(text, str) or len(text) <= 60 else repr(text[:57] + "...")
