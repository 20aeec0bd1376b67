"""What simulated chargers do, decided ahead from a seeded random source: pure, no I/O, no clock.

A charger has a :class:`Profile` (connectors, power, how its firmware orders messages, its quirks
from ``OCPP-QUIRKS.md``); each of its connectors alternates idle gaps and sessions, each session
planned by :func:`plan_session` with one of the endings of the seed article (a user stop, the EV
full, an EVSE limit, a remote stop, the cable pulled, a power loss, a fault). The payload builders
turn a moment of that life into OCPP 1.6J payloads, quirks applied (:mod:`simulator.v201`: the same
life in OCPP 2.0.1); :class:`ExpectedSession` and :class:`ExpectedFault` are what the pipeline must
make of it.

Time here is *simulated* seconds; the charger divides waits by the time scale. Meter registers
advance with real elapsed time at the planned power, so energy always agrees with the timestamps
the charger sends (no implausible-power flags at any time scale).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from simulator.meter_models import MeterPlan


class Ending(StrEnum):
    """How a session ends (the seed: the transition out of Charging, then StopTransaction)."""

    USER_STOP = "user_stop"
    EV_FULL = "ev_full"
    EVSE_LIMIT = "evse_limit"
    REMOTE_STOP = "remote_stop"
    CABLE_PULLED = "cable_pulled"
    POWER_LOSS = "power_loss"
    FAULT = "fault"
    EMERGENCY_STOP = "emergency_stop"


@dataclass(frozen=True)
class EndingSpec:
    transition: str  # the status the connector goes to from Charging
    reason: str  # StopTransaction.reason
    weight: int  # relative frequency


ENDINGS: dict[Ending, EndingSpec] = {
    Ending.USER_STOP: EndingSpec("Finishing", "Local", 38),
    Ending.EV_FULL: EndingSpec("SuspendedEV", "Local", 20),
    Ending.EVSE_LIMIT: EndingSpec("SuspendedEVSE", "Local", 6),
    Ending.REMOTE_STOP: EndingSpec("Finishing", "Remote", 14),
    Ending.CABLE_PULLED: EndingSpec("Available", "EVDisconnected", 12),
    Ending.POWER_LOSS: EndingSpec("Available", "PowerLoss", 4),
    Ending.FAULT: EndingSpec("Faulted", "Other", 6),
    Ending.EMERGENCY_STOP: EndingSpec("Finishing", "EmergencyStop", 3),  # the driver hit the emergency button
}


class Quirk(StrEnum):
    """What real chargers do that the spec does not say (``OCPP-QUIRKS.md``), one per line there."""

    METER_STOP_UNKNOWN = "meter_stop_unknown"  # meterStop -1; the energy is in transactionData
    NUMERIC_SAMPLES = "numeric_samples"  # sampledValue.value as a JSON number
    KWH_REGISTER = "kwh_register"  # register samples in kWh
    PER_PHASE = "per_phase"  # L1/L2/L3 register values beside the total
    NAIVE_TIMESTAMPS = "naive_timestamps"  # timestamps without a time zone
    LATE_TRANSACTION_END = "late_transaction_end"  # Transaction.End MeterValues after the stop
    RESENT_STOP = "resent_stop"  # the same StopTransaction sent twice
    FLOAT_METER = "float_meter"  # meterStart / meterStop as JSON floats (a schema violation)
    NON_ENUM_ERROR_CODE = "non_enum_error_code"  # a fault with errorCode "Error" (Legrand)
    FINISHING_WITH_ERROR = "finishing_with_error"  # Finishing reported with an errorCode (ABB)
    REGISTER_PER_SESSION = "register_per_session"  # the register restarts at 0 every session (ABB Terra AC)
    NEVER_STOPS = "never_stops"  # no StopTransaction at all: unplugged, then Available
    STALE_FAULT_AFTER_BOOT = "stale_fault_after_boot"  # an old Faulted on connector 0 replayed after boot (Alfen)
    OFFERS_TWO_PROTOCOLS = "offers_two_protocols"  # subprotocols "ocpp2.0.1, ocpp1.6"
    # OCPP 2.0.1 (OCPP-QUIRKS.md, section OCPP 2.0.1); KWH_REGISTER above applies to both versions.
    EVSE_ONLY_ON_START = "evse_only_on_start"  # evse omitted from Updated / Ended (EVerest #1835)
    ID_TOKEN_EVERY_EVENT = "id_token_every_event"  # idToken repeated in every TransactionEvent (libocpp #577)
    ENDED_WITHOUT_TRIGGER = "ended_without_trigger"  # Ended without the required triggerReason (MicroOcpp #405)
    UPDATED_AFTER_ENDED = "updated_after_ended"  # an Updated replayed, offline, after the Ended (lbbrhzn/ocpp #2141)
    EMPTY_FIRST_SUBPROTOCOL = "empty_first_subprotocol"  # Sec-WebSocket-Protocol ",ocpp2.0.1" (KEBA; OCPP.Core #91)
    NO_AUTHORIZATION = "no_authorization"  # a start button: idToken "" of type NoAuthorization (ocpp-go #223)
    # transactionId numbered per EVSE ("1", "2", ... on each: the same id open on two EVSEs at once), seqNo counted
    # per transaction (OCPP 2.0.1 Edition 2's reading)
    PER_EVSE_TRANSACTION_IDS = "per_evse_transaction_ids"
    # Signing chargers (an OCMF meter, simulator.ocmf_meter), either version: what goes wrong with signed readings.
    SIGNATURE_BYTE_FLIPPED = "signature_byte_flipped"  # the End's signature arrives with one byte changed
    SIGNED_END_MISSING = "signed_end_missing"  # a signed Begin, never a signed End
    PAYLOAD_CHANGED_AFTER_SIGNING = "payload_changed_after_signing"  # the End's reading raised after it was signed
    PAGINATION_GAP = "pagination_gap"  # a record signed between Begin and End is never sent (PG skips one)
    METER_SWAPPED = "meter_swapped"  # connector 1's meter replaced during its first session (new serial, new key)
    KEY_ONLY_IN_FRAME = "key_only_in_frame"  # no key registered; the frames carry it (1.6: the OCA document)


# The quirks a charger of each version may draw (in this order: the draws of a seed depend on it).
QUIRKS_V16: tuple[Quirk, ...] = (
    Quirk.METER_STOP_UNKNOWN, Quirk.NUMERIC_SAMPLES, Quirk.KWH_REGISTER, Quirk.PER_PHASE, Quirk.NAIVE_TIMESTAMPS,
    Quirk.LATE_TRANSACTION_END, Quirk.RESENT_STOP, Quirk.FLOAT_METER, Quirk.NON_ENUM_ERROR_CODE,
    Quirk.FINISHING_WITH_ERROR, Quirk.REGISTER_PER_SESSION, Quirk.NEVER_STOPS, Quirk.STALE_FAULT_AFTER_BOOT,
    Quirk.OFFERS_TWO_PROTOCOLS,
)
QUIRKS_V201: tuple[Quirk, ...] = (
    Quirk.EVSE_ONLY_ON_START, Quirk.ID_TOKEN_EVERY_EVENT, Quirk.KWH_REGISTER, Quirk.ENDED_WITHOUT_TRIGGER,
    Quirk.UPDATED_AFTER_ENDED, Quirk.EMPTY_FIRST_SUBPROTOCOL, Quirk.NO_AUTHORIZATION, Quirk.PER_EVSE_TRANSACTION_IDS,
)
# Given only to signing chargers, in this order (simulator.signing_plan), never drawn by make_profile: the first two
# quirky signing chargers fail verification and verify with the frame's key only.
SIGNING_QUIRKS: tuple[Quirk, ...] = (
    Quirk.SIGNATURE_BYTE_FLIPPED, Quirk.KEY_ONLY_IN_FRAME, Quirk.PAYLOAD_CHANGED_AFTER_SIGNING, Quirk.SIGNED_END_MISSING,
    Quirk.PAGINATION_GAP, Quirk.METER_SWAPPED,
)
SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}  # OCPP version -> WebSocket subprotocol


FINISHING_ERROR = ("OtherError", "0x0031", "cable check")  # what an ABB reports with Finishing

FAULT_CODES: tuple[tuple[str, str, str], ...] = (  # errorCode, vendorErrorCode, info
    ("GroundFailure", "", ""),
    ("OverCurrentFailure", "", ""),
    ("HighTemperature", "T-81", "inlet 78C"),
    ("EVCommunicationError", "", "CP line lost"),
    ("ConnectorLockFailure", "L-2", ""),
    ("OtherError", "E-1203", "RCD tripped"),
    ("OtherError", "0x4012", "contactor welded"),
)

# (max power W, share): AC 7.4 / 11 / 22 kW, DC 50 / 150 kW.
POWER_CLASSES: tuple[tuple[float, int], ...] = ((7_400, 30), (11_000, 30), (22_000, 20), (50_000, 12), (150_000, 8))


@dataclass(frozen=True)
class Profile:
    """A charger: what it is and how its firmware behaves, fixed for its whole life."""

    number: int
    charge_point_id: str
    connectors: int
    max_power_w: float
    status_after_stop: bool  # the transition comes after StopTransaction (else before)
    transaction_data: bool  # StopTransaction carries transactionData (Begin and End samples)
    quirks: frozenset[Quirk]
    vendor: str
    model: str
    ocpp: str = "1.6"  # the OCPP version it speaks: "1.6" or "2.0.1"
    meter: MeterPlan | None = None  # a signing charger's calibrated meters (simulator.signing_plan); None: unsigned

    @property
    def subprotocol(self) -> str:
        return SUBPROTOCOLS[self.ocpp]

    @property
    def dc(self) -> bool:
        return self.max_power_w >= 50_000

    def has(self, quirk: Quirk) -> bool:
        return quirk in self.quirks


def make_profile(rng: random.Random, number: int, *, id_prefix: str, connectors: tuple[int, int],
                 quirky_share: float, ocpp: str = "1.6") -> Profile:
    """A charger from ``rng``. Both versions draw exactly the same numbers: a 2.0.1 charger is its 1.6
    twin (power, connectors, vendor, firmware habits) with the 2.0.1 counterparts of the twin's quirks."""
    power = _weighted(rng, POWER_CLASSES)
    drawn: list[Quirk] = []
    if rng.random() < quirky_share:
        drawn = rng.sample(QUIRKS_V16, k=rng.choice((1, 1, 2)))
    if ocpp == "1.6":
        quirks = frozenset(drawn)
    else:
        quirks = frozenset(QUIRKS_V201[QUIRKS_V16.index(q) % len(QUIRKS_V201)] for q in drawn)
    vendor, model = rng.choice((("Alfen", "Eve Double"), ("ABB", "Terra AC"), ("Keba", "P30"), ("Wallbox", "Commander 2"),
                                ("Kempower", "S-Series"), ("Legrand", "Green'Up")))
    evses = rng.randint(*connectors)
    if Quirk.PER_EVSE_TRANSACTION_IDS in quirks:
        evses = max(evses, min(2, connectors[1]))  # numbering per EVSE is a habit of stations with several
    return Profile(
        number=number,
        charge_point_id=f"{id_prefix}{number:05d}",
        connectors=evses,
        max_power_w=power,
        status_after_stop=rng.random() < 0.4,
        # meterStop -1 is only usable with transactionData: such chargers always send it.
        transaction_data=Quirk.METER_STOP_UNKNOWN in drawn or rng.random() < 0.3,
        quirks=quirks,
        vendor=vendor,
        model=model,
        ocpp=ocpp,
    )


@dataclass(frozen=True)
class SessionPlan:
    """One session on one connector, in simulated seconds from its start."""

    id_tag: str
    power_w: float
    ending: Ending
    charge_s: float  # charging time (until the ending, or until the EV / EVSE suspends)
    suspended_s: float  # EV_FULL / EVSE_LIMIT: time parked after charging stops
    status_gap_s: float  # between the transition and StopTransaction (the seed: 1 s to tens of s)
    unplug_s: float  # after the stop until the connector is Available again
    fault: tuple[str, str, str]  # errorCode, vendorErrorCode, info (FAULT only)
    fault_s: float  # how long the fault lasts
    reboot_s: float  # POWER_LOSS: time without power
    soc_start: float


def plan_session(rng: random.Random, profile: Profile) -> SessionPlan:
    ending = _weighted(rng, tuple((e, s.weight) for e, s in ENDINGS.items()))
    if profile.has(Quirk.NEVER_STOPS):
        ending = Ending.CABLE_PULLED  # it is unplugged and says Available, but never StopTransaction
    fault = rng.choice(FAULT_CODES)
    if profile.has(Quirk.NON_ENUM_ERROR_CODE):
        fault = ("Error", "", "")
    # Real sessions: DC 15-60 min, AC 30 min - 4 h (log-uniform-ish).
    lo, hi = (900, 3600) if profile.dc else (1800, 14_400)
    return SessionPlan(
        id_tag=driver_card(rng),
        power_w=round(profile.max_power_w * rng.uniform(0.55, 0.98)),
        ending=ending,
        charge_s=lo * (hi / lo) ** rng.random(),
        suspended_s=rng.uniform(300, 3600),
        status_gap_s=rng.uniform(1, 30),
        unplug_s=rng.uniform(10, 300),
        fault=fault,
        fault_s=rng.uniform(120, 1800),
        reboot_s=rng.uniform(20, 120),
        soc_start=round(rng.uniform(5, 60), 1),
    )


def idle_gap_s(rng: random.Random, mean_s: float) -> float:
    """Time a connector stays free between sessions (exponential: arrivals are independent)."""
    return rng.expovariate(1 / mean_s) if mean_s > 0 else 0.0


def idle_fault(rng: random.Random, profile: Profile) -> tuple[str, str, str]:
    """The fault of a free connector (how often: :attr:`simulator.incidents.Behaviours.idle_fault_share`)."""
    return ("Error", "", "") if profile.has(Quirk.NON_ENUM_ERROR_CODE) else rng.choice(FAULT_CODES)


def first_register_wh(rng: random.Random, profile: Profile) -> int:
    return 0 if profile.has(Quirk.REGISTER_PER_SESSION) else rng.randrange(0, 40_000_000)


def energy_wh(power_w: float, real_seconds: float) -> int:
    """Whole Wh a connector delivers at ``power_w`` in ``real_seconds`` (registers count whole Wh)."""
    return int(power_w * real_seconds / 3600)


# --- payloads ---------------------------------------------------------------------------------


def timestamp(ms: int, profile: Profile) -> str:
    text = datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "") if profile.has(Quirk.NAIVE_TIMESTAMPS) else text.replace("+00:00", "Z")


def _value(number: float, profile: Profile) -> Any:
    # str(), not "%g": a lifetime register of 38,123.456 kWh must keep its Wh (%g keeps 6 digits).
    return number if profile.has(Quirk.NUMERIC_SAMPLES) else str(number)


def meter_value(profile: Profile, ms: int, register_wh: int, power_w: float | None, soc: float | None,
                context: str = "Sample.Periodic") -> dict[str, Any]:
    """One ``meterValue`` element: the energy register (quirks applied), power and SoC."""
    if profile.has(Quirk.KWH_REGISTER):
        register: dict[str, Any] = {"value": _value(round(register_wh / 1000, 3), profile), "unit": "kWh"}
    else:
        register = {"value": _value(register_wh, profile), "unit": "Wh"}
    register |= {"measurand": "Energy.Active.Import.Register", "context": context, "location": "Outlet"}
    samples = [register]
    if profile.has(Quirk.PER_PHASE):
        thirds = (register_wh // 3, register_wh // 3, register_wh - 2 * (register_wh // 3))
        samples += [{"value": _value(v, profile), "unit": "Wh", "measurand": "Energy.Active.Import.Register",
                     "phase": p, "context": context} for v, p in zip(thirds, ("L1", "L2", "L3"))]
    if power_w is not None:
        samples.append({"value": _value(int(power_w), profile), "unit": "W", "measurand": "Power.Active.Import", "context": context})
    if soc is not None:
        samples.append({"value": _value(round(soc, 1), profile), "unit": "Percent", "measurand": "SoC", "context": context})
    return {"timestamp": timestamp(ms, profile), "sampledValue": samples}


def boot_payload(profile: Profile) -> dict[str, Any]:
    return {"chargePointVendor": profile.vendor, "chargePointModel": profile.model,
            "chargePointSerialNumber": f"SN{profile.number:08d}", "firmwareVersion": "1.6.42"}


def status_payload(profile: Profile, connector: int, status: str, ms: int, fault: tuple[str, str, str] | None = None,
                   ) -> dict[str, Any]:
    error_code, vendor_code, info = fault or ("NoError", "", "")
    payload: dict[str, Any] = {"connectorId": connector, "errorCode": error_code, "status": status,
                               "timestamp": timestamp(ms, profile)}
    if vendor_code:
        payload |= {"vendorId": profile.vendor, "vendorErrorCode": vendor_code}
    if info:
        payload["info"] = info
    return payload


def authorize_payload(id_tag: str) -> dict[str, Any]:
    return {"idTag": id_tag}


def driver_card(rng: random.Random) -> str:
    """A driver's RFID card."""
    return f"TAG{rng.randrange(16**6):06X}"


def start_payload(profile: Profile, connector: int, plan: SessionPlan, meter_start: int, ms: int) -> dict[str, Any]:
    return {"connectorId": connector, "idTag": plan.id_tag, "timestamp": timestamp(ms, profile),
            "meterStart": float(meter_start) if profile.has(Quirk.FLOAT_METER) else meter_start}


def stop_payload(profile: Profile, plan: SessionPlan, transaction_id: int, meter_start: int, meter_stop: int,
                 start_ms: int, ms: int, reason: str) -> dict[str, Any]:
    payload: dict[str, Any] = {"transactionId": transaction_id, "timestamp": timestamp(ms, profile), "reason": reason,
                               "idTag": plan.id_tag}
    if profile.has(Quirk.METER_STOP_UNKNOWN):
        payload["meterStop"] = -1
    else:
        payload["meterStop"] = float(meter_stop) if profile.has(Quirk.FLOAT_METER) else meter_stop
    if profile.transaction_data:
        payload["transactionData"] = [
            meter_value(profile, start_ms, meter_start, None, None, "Transaction.Begin"),
            meter_value(profile, ms, meter_stop, None, None, "Transaction.End"),
        ]
    return payload


# --- what the pipeline must produce ------------------------------------------------------------


@dataclass
class ExpectedSession:
    """A session as the simulator lived it; ``sessions`` rows must say the same."""

    charge_point_id: str
    connector_id: int
    transaction_id: str
    id_tag: str
    energy_wh: float
    stop_reason: str
    stop_status: str
    closed_by: str
    ending: str
    quirks: list[str] = field(default_factory=list)
    ocpp_version: str = "ocpp1.6"  # the subprotocol the charger spoke (the ``ocpp_version`` of the row)
    backlog: bool = False  # made before the charger's first connection, flushed from its queue (simulator.backlog)
    # closed_by "available" only: real seconds from that Available to the connector's next plug-in that led to
    # a start (None: none came). A plug-in within the worker's status window reads as the transaction going on,
    # and the next start closes it (:func:`simulator.expectations.expected_closed_by`).
    replugged_after_s: float | None = None
    # Signed meter values (simulator.signed_truth): what the pipeline must make of the signed readings the charger
    # sent; an unsigned session is "unsigned" with nothing else.
    signed_start: str | None = None  # the signed Begin record, exactly as sent (under the OCPP transport)
    signed_stop: str | None = None  # the signed End record, exactly as sent
    signature_status: str = "unsigned"
    signed_energy_wh: float | None = None
    signed_meter_serial: str | None = None  # the meter that signed both (None: none, or two)
    signed_flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "session"} | asdict(self)


@dataclass
class ExpectedFault:
    """A fault as the simulator caused it: one ``began`` event, and ``cleared`` when it ended."""

    charge_point_id: str
    connector_id: int
    error_code: str
    cleared: bool
    ocpp_version: str = "ocpp1.6"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "fault"} | asdict(self)


def session_stop_status(plan: SessionPlan, profile: Profile) -> str:
    """The transition out of Charging the correlator should attach to the session."""
    if profile.has(Quirk.NEVER_STOPS):
        return "Available"  # unplugged without a stop: Charging -> Available
    return ENDINGS[plan.ending].transition


def _weighted(rng: random.Random, choices: tuple[tuple[Any, int], ...]) -> Any:
    values, weights = zip(*choices)
    return rng.choices(values, weights=weights, k=1)[0]
