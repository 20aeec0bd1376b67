"""A signing charger's calibrated meter (Eichrecht, OCMF): keys, serial, pagination, the records it signs.

One meter per connector (EVSE), of the charger's :class:`~simulator.meter_models.MeterModel`. At a
transaction's begin and end the charger asks it for a signed reading of the connector's register - the same
Wh the charger reports as meterStart / meterStop and in its samples - and sends it as real chargers do:

- OCPP 1.6 (7.45 SampledValue): a sampled value ``format: "SignedData"`` whose ``value`` is the record
  (``OCMF|{payload}|{signature}``), context ``Transaction.Begin`` / ``Transaction.End``; with
  :attr:`~simulator.lives.Quirk.KEY_ONLY_IN_FRAME` the OCA application note's JSON document
  ``{"signedMeterData": base64, "encodingMethod": "OCMF", "publicKey": base64 of the key's hex}``;
- OCPP 2.0.1 (2.48 SignedMeterValueType): ``signedMeterValue`` beside the register value of the Started /
  Ended meter value (``signedMeterData`` base64 of the record, ``signingMethod``, ``encodingMethod: "OCMF"``,
  ``publicKey`` "" as the key is registered, or base64 of its DER with KEY_ONLY_IN_FRAME).

The payload is written here as text (``RV`` as the meter writes it: whole Wh, or kWh with three decimals) and
signed as written. Keys derive from the plan's key seed, the connector and the meter's generation (a swapped
meter is generation 1), so :func:`key_rows` can list them before the run for the operator's keys file.

The signing quirks act here, on the End record: its signature byte flipped, its reading raised after signing,
a record signed in between and never sent (pagination gap), none sent at all, or connector 1's meter replaced
before it signs (a new serial, a new key, pagination from 1). :class:`SentRecord` says what went out.
"""

from __future__ import annotations

import base64
import functools
import json
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from signed_meter.model import TX_END
from signed_meter.signing import Signer
from simulator import v201
from simulator.lives import Profile, Quirk
from simulator.meter_models import MeterPlan

OBIS_IMPORT = "1-b:1.8.0"  # the active import register every model signs (OCMF examples' spelling)
CHANGED_BY_WH = 1000  # PAYLOAD_CHANGED_AFTER_SIGNING: the End's reading raised by 1 kWh (a dearer bill)
FIRMWARE = {"1.6": "1.6.42", "2.0.1": v201.FIRMWARE}  # the charger's firmware (GV), as its BootNotification says
SIGNED_DATA = "SignedData"


@dataclass(frozen=True)
class SentRecord:
    """A signed record as the charger sent it, and what the simulator knows of it (the ground truth)."""

    tx: str  # OCMF TX of its reading: B or E
    text: str  # the record exactly as sent, under the OCPP transport
    register_wh: int  # the reading the record says, in Wh (after any change made to it)
    meter_serial: str
    pagination: int  # the PG counter (T<n>)
    signing_method: str  # the algorithm as a 2.0.1 signingMethod names it
    intact: bool = True  # False: the record was changed after it was signed (its payload or its signature)
    frame_key: str | None = None  # KEY_ONLY_IN_FRAME: the meter's public key (DER, hex), sent with the record


@functools.lru_cache(maxsize=65_536)
def meter_signer(plan: MeterPlan, connector: int, generation: int) -> Signer:
    """The key pair of a connector's meter (the same plan, connector and generation: the same keys)."""
    return Signer(plan.model.curve, secret=f"{plan.key_seed}:{connector}:{generation}".encode())


def meter_serial(profile: Profile, connector: int, generation: int) -> str:
    """``MS`` of a connector's meter: the make's prefix, the charger's number, the connector, the generation."""
    assert profile.meter is not None
    return f"{profile.meter.model.serial_prefix}{profile.number:07d}{connector}{generation}"


def first_pagination(plan: MeterPlan, connector: int) -> int:
    """Where an installed meter's counter stands when the run begins (meters count from their first day)."""
    return 1 + zlib.crc32(f"{plan.key_seed}:{connector}".encode()) % 5000


class OcmfMeter:
    """The meter of one connector: signs readings of its register, counts its records (``PG``)."""

    def __init__(self, profile: Profile, connector: int) -> None:
        if profile.meter is None:
            raise ValueError(f"{profile.charge_point_id} carries no signing meter")
        self.profile, self.plan, self.connector = profile, profile.meter, connector
        self.generation = 0
        self.pagination = first_pagination(self.plan, connector)

    @property
    def signer(self) -> Signer:
        return meter_signer(self.plan, self.connector, self.generation)

    @property
    def serial(self) -> str:
        return meter_serial(self.profile, self.connector, self.generation)

    def sign(self, tx: str, register_wh: int, ms: int, id_tag: str) -> SentRecord | None:
        """The record the charger sends for a ``tx`` (B / E) reading of ``register_wh`` at ``ms`` (None: the
        charger sends none), its quirks applied."""
        has = self.profile.has
        if tx == TX_END:
            if has(Quirk.METER_SWAPPED) and self.connector == 1 and self.generation == 0:
                self.generation, self.pagination = 1, 1  # a new meter, counting from its first record
            if has(Quirk.PAGINATION_GAP):
                self.pagination += 1  # a record signed in between (a periodic one) was never sent
        pagination, self.pagination = self.pagination, self.pagination + 1
        if tx == TX_END and has(Quirk.SIGNED_END_MISSING):
            return None  # signed by the meter, lost by the charger
        payload = self._payload(tx, register_wh, ms, id_tag, pagination)
        model = self.plan.model
        text = self.signer.sign(payload, model.signing_method)
        said_wh, intact = register_wh, True
        if tx == TX_END and has(Quirk.PAYLOAD_CHANGED_AFTER_SIGNING):
            said_wh, intact = register_wh + CHANGED_BY_WH, False
            text = text.replace(payload, self._payload(tx, said_wh, ms, id_tag, pagination), 1)
        if tx == TX_END and has(Quirk.SIGNATURE_BYTE_FLIPPED):
            text, intact = flip_signature_byte(text), False
        return SentRecord(tx, text, said_wh, self.serial, pagination, model.declared_method, intact,
                          self.signer.public_key_hex if has(Quirk.KEY_ONLY_IN_FRAME) else None)

    def _payload(self, tx: str, register_wh: int, ms: int, id_tag: str, pagination: int) -> str:
        """The payload's text, fields in the order the OCMF spec lists them; strings JSON-escaped."""
        p, model = self.profile, self.plan.model
        head = {"FV": "1.0", "GI": f"{p.vendor} {p.model}", "GS": f"SN{p.number:08d}", "GV": FIRMWARE[p.ocpp],
                "PG": f"T{pagination}", "MV": model.vendor, "MM": model.model, "MS": self.serial, "IS": bool(id_tag),
                "IT": "CENTRAL" if id_tag else "NONE", "ID": id_tag}
        reading = {"TM": ocmf_time(ms, model.time_status), "TX": tx, "RV": _Literal(register_value(register_wh, model.unit)),
                   "RI": OBIS_IMPORT, "RU": model.unit, "RT": "DC" if p.dc else "AC", "EF": "", "ST": "G"}
        return "{" + _members(head) + ',"RD":[{' + _members(reading) + "}]}"


class _Literal(str):
    """A JSON number written as given (``12.340`` keeps its last zero: the meter's resolution)."""


def _members(obj: dict[str, Any]) -> str:
    return ",".join(f"{json.dumps(k)}:{v if isinstance(v, _Literal) else json.dumps(v)}" for k, v in obj.items())


def register_value(register_wh: int, unit: str) -> str:
    """``RV`` as the meter writes it: whole Wh, or kWh with three decimals (``12345.678``)."""
    if unit == "Wh":
        return str(register_wh)
    return f"{register_wh // 1000}.{register_wh % 1000:03d}"


def ocmf_time(ms: int, status: str) -> str:
    """OCMF ``TM``: ``2024-03-01T10:00:00,123+0000 S`` (local time with offset; UTC here) and the clock's status."""
    moment = datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment},{ms % 1000:03d}+0000 {status}"


def flip_signature_byte(record: str) -> str:
    """The record with the last byte of its signature (``SD``, hex) changed: still DER, no longer valid."""
    head, _, section = record.rpartition("|")
    signature = json.loads(section)
    raw = bytearray(bytes.fromhex(signature["SD"]))
    raw[-1] ^= 0x01
    signature["SD"] = raw.hex().upper()
    return f"{head}|{json.dumps(signature, separators=(',', ':'))}"


# --- the OCPP transport ------------------------------------------------------------------------------------


def ocpp16_sampled_value(sent: SentRecord, context: str) -> dict[str, Any]:
    """The 1.6 sampled value of a signed record: the record as text, or the OCA document with the key."""
    value = sent.text
    if sent.frame_key is not None:
        value = json.dumps({"signedMeterData": _b64(sent.text.encode()), "encodingMethod": "OCMF",
                            "publicKey": _b64(sent.frame_key.encode())})  # the OCA note's base64 of the key's hex
    return {"value": value, "context": context, "format": SIGNED_DATA, "measurand": "Energy.Active.Import.Register",
            "location": "Outlet"}


def with_signed_16(meter_value: dict[str, Any], sent: SentRecord) -> dict[str, Any]:
    """A 1.6 ``meterValue`` with the signed record beside its register sample, in the register's context."""
    context = meter_value["sampledValue"][0].get("context", "Sample.Periodic")
    return meter_value | {"sampledValue": [*meter_value["sampledValue"], ocpp16_sampled_value(sent, context)]}


def ocpp201_signed_meter_value(sent: SentRecord) -> dict[str, str]:
    """2.0.1 ``signedMeterValue``: the record in base64, how it is signed and encoded, the key when it travels."""
    return {"signedMeterData": _b64(sent.text.encode()), "signingMethod": sent.signing_method, "encodingMethod": "OCMF",
            "publicKey": _b64(bytes.fromhex(sent.frame_key)) if sent.frame_key is not None else ""}


def with_signed_201(meter_value: dict[str, Any], sent: SentRecord) -> dict[str, Any]:
    """A 2.0.1 ``meterValue`` whose register sample (the first) carries the signed record."""
    register, *others = meter_value["sampledValue"]
    return meter_value | {"sampledValue": [register | {"signedMeterValue": ocpp201_signed_meter_value(sent)}, *others]}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
