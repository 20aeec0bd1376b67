"""A session's row (:class:`~schemas.records.Session`) from the correlator's state of it: pure.

Durations and clock skew: :func:`processors.clock.session_timing` (the charger's clock when its start and stop
were made by the clock its frames show, in order; else the gateway's, ``duration_from_gateway_clock``). Energy:
:func:`processors.energy.session_energy`, its plausibility judged by every duration the evidence supports.
"""

from __future__ import annotations

import hashlib
import json

from processors.clock import session_timing
from processors.energy import EnergyInputs, session_energy
from processors.events import codes
from processors.settings import CorrelatorConfig
from processors.state import Emitted, SessionState
from processors.vocabulary import PHASES
from schemas.base import ms_to_datetime
from schemas.flags import Flag
from schemas.records import ClosedBy, Session
from signed_meter.model import SignatureStatus
from signed_meter.session import SessionVerdict

# What a revision's digest leaves out: it changes with every revision, or follows from one that does.
_NOT_CONTENT = frozenset({"version", "revision", "received_at", "previous_energy_wh", "previous_duration_s"})
# Fields of the row added after digests were persisted: left out while empty, so a session remembered across the
# upgrade keeps its digest (and is not re-emitted for a field it never had).
_ADDED_LATER = ("id_token_type",)
# The same for the signed meter value fields (issue 25), left out while at their defaults.
_SIGNED_DEFAULTS = {"signed_start": "", "signed_stop": "", "signature_status": SignatureStatus.UNSIGNED.value,
                    "signed_energy_wh": None, "signed_energy_register": "", "signed_meter_serial": "", "signature_key": ""}


def record_digest(record: Session) -> str:
    """The content of an emitted row: a revision is emitted only when it differs."""
    content = record.model_dump(mode="json", exclude=set(_NOT_CONTENT))
    for name in _ADDED_LATER:
        if not content[name]:
            del content[name]
    for name, default in _SIGNED_DEFAULTS.items():
        if content.get(name) == default:
            del content[name]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def phase_times(s: SessionState) -> tuple[float | None, float | None, float | None]:
    """Seconds in each of :data:`PHASES` between the start and the stop (or the guess that closed it),
    gateway clock; ``None`` when no status was known during the session (or it never started)."""
    if s.phase_ms is None or s.start_gw_ms is None:
        return None, None, None
    totals = list(s.phase_totals)
    end = s.stop.gw_ms if s.stop is not None else s.closed_gw_ms
    if s.phase in PHASES and end is not None and end > s.phase_ms:
        totals[PHASES.index(s.phase)] += end - s.phase_ms
    return totals[0] / 1000, totals[1] / 1000, totals[2] / 1000


def session_record(charge_point_id: str, config: CorrelatorConfig, s: SessionState, closed_by: ClosedBy, *, revision: int,
                   version: int, received_ms: int, previous: Emitted | None = None) -> Session:
    """The row of a session as it stands: its duration, its energy by :mod:`processors.energy`, its flags."""
    # Clock skew is decided here from the evidence (states written before kept a flag set at the start: dropped).
    flags = set(s.flags) - {Flag.CLOCK_SKEW}
    stop_ms = s.stop.stopped_ms if s.stop is not None else None
    timing = session_timing(s.start_ms, s.start_gw_ms, s.clock_start, stop_ms, s.stop.gw_ms if s.stop is not None else None,
                            s.clock_stop, s.stop.gw_ms if s.stop is not None else s.closed_gw_ms, config.clock_skew_ms)
    if timing.skew:
        flags.add(Flag.CLOCK_SKEW)
    if timing.from_gateway:
        flags.add(Flag.DURATION_FROM_GATEWAY_CLOCK)
    # The charger's own duration whenever its clock made both timestamps (a stop from an offline backlog reaches
    # the gateway hours after it happened, and that time was not spent charging; a start from the queue reaches it
    # seconds before its stop); the gateway's when it is the row's. A clock doubt never withholds the energy.
    charger_s, gateway_s = timing.energy_s
    energy = session_energy(
        EnergyInputs(
            meter_start=s.meter_start, meter_stop=s.stop.meter_stop if s.stop is not None else None,
            has_stop=closed_by is ClosedBy.STOP_TRANSACTION, transaction_data=s.td, meter_values=s.mv,
            duration_s=charger_s, gateway_duration_s=gateway_s,
            started_ms=s.start_ms, stopped_ms=stop_ms,
            sampled_peak_power_w=s.peak_w,
        ),
        config.max_power_w,
        config.max_session_age_ms / 1000,
    )
    flags |= energy.flags
    if closed_by is not ClosedBy.STOP_TRANSACTION and s.start_ms is None:
        flags.add(Flag.STOP_WITHOUT_START)
    signed = s.signed().result(energy.energy_wh)
    flags |= {Flag(f.value) for f in signed.flags}
    charging_s, suspended_ev_s, suspended_evse_s = phase_times(s)
    return Session.trusted(
        charge_point_id=charge_point_id,
        connector_id=s.connector,
        transaction_id=s.transaction_id,
        id_tag=s.id_tag,
        started_at=ms_to_datetime(s.start_ms) if s.start_ms is not None else None,
        stopped_at=ms_to_datetime(stop_ms) if stop_ms is not None else None,
        meter_start_wh=s.meter_start,
        meter_stop_wh=s.stop.meter_stop if s.stop is not None else None,
        energy_wh=energy.energy_wh,
        energy_source=energy.source,
        stop_reason=s.stop.reason if s.stop is not None else "",
        stop_status=s.stop_status_text,
        stop_error_code=s.stop_error_code,
        stop_status_at=ms_to_datetime(s.stop_status_ms) if s.stop_status_ms is not None else None,
        duration_s=timing.duration_s,
        peak_power_w=energy.peak_power_w,
        soc_start_pct=s.soc[0],
        soc_end_pct=s.soc[1],
        sample_count=s.mv.count + len(s.td),
        closed_by=closed_by,
        flags=codes(flags),
        received_at=ms_to_datetime(received_ms),
        version=version,
        revision=revision,
        session_id=s.session_id,
        ocpp_version=s.protocol.version,
        previous_energy_wh=previous.energy_wh if previous is not None else None,
        previous_duration_s=previous.duration_s if previous is not None else None,
        charging_s=charging_s,
        suspended_ev_s=suspended_ev_s,
        suspended_evse_s=suspended_evse_s,
        blocked_after_stop_s=s.blocked_ms / 1000 if s.blocked_ms is not None else None,
        id_token_type=s.id_token_type,
        signed_start=signed.signed_start or "",
        signed_stop=signed.signed_stop or "",
        signature_status=signed.signature_status.value,
        signed_energy_wh=signed.signed_energy_wh,
        signed_energy_register=signed.energy_register or "",
        signed_meter_serial=signed.meter_serial or "",
        signature_key=deciding_key(signed),
    )


def deciding_key(verdict: SessionVerdict) -> str:
    """The fingerprint of the key that decided the session's verdict: the stop record's, else the start record's, else
    the first record's that has one; '' when no key was used."""
    ordered = sorted(verdict.records, key=lambda r: (r.value.signed_data != verdict.signed_stop,
                                                     r.value.signed_data != verdict.signed_start))
    return next((r.key.fingerprint for r in ordered if r.key is not None), "")
