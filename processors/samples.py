"""Meter samples of a session: MeterValues (OCPP 1.6, 6.31; 2.0.1 TransactionEvent Updated and MeterValues) and a
stop's transactionData, added to the session's readings (its register by :mod:`processors.energy`, its power and
state of charge). Tracker functions of one :class:`ChargePoint` (SESSIONS.md, *Energy*).

Samples name their transaction, or only their connector (that connector's open session). Samples of a session
already emitted amend it when they change its energy (``late_meter_values``); metered after the Available that
closed it, they show it went on: it opens again (``available_then_resumed``). Samples of a transaction never seen
leave their connector for its stop to find (``connector_from_meter_values``).
"""

from __future__ import annotations

from processors import emission
from processors.charge_point import ChargePoint
from processors.energy import RegisterSample
from processors.events import Event
from processors.inputs import MeterSamples
from processors.meter import BREAK_MARKS, ENERGY_REGISTER, POWER, SOC, Reading
from processors.session_record import session_record
from processors.state import SessionState
from processors.transaction_identity import closed_with, open_with
from schemas.flags import Flag
from schemas.records import ClosedBy

METER_HINTS_KEPT = 16
TRANSACTION_DATA_KEPT = 500  # register samples of one stop kept in the state


def on_samples(cp: ChargePoint, item: MeterSamples) -> list[Event]:
    if item.readings:
        cp.saw_time(item.gw_ms, item.readings[-1].at_ms, item.flags)
    connector = item.connector_id if item.connector_id is not None and item.connector_id > 0 else None
    port_rows: list[Event] = []
    if connector is not None and connector not in cp.state.outages.ports:
        port_rows.extend(cp.outages.port_seen(connector, item.gw_ms))  # meter values name a port too
    return port_rows + _samples(cp, item, connector)


def _samples(cp: ChargePoint, item: MeterSamples, connector: int | None) -> list[Event]:
    state = cp.state
    session: SessionState | None = None
    if item.transaction_id is not None:
        tx = state.aliases.get(item.transaction_id, item.transaction_id)
        open_ones = open_with(state, tx, connector)
        if open_ones:
            session = open_ones[0]
        else:
            closed = closed_with(state, tx, connector)
            if closed:  # never the connector's current session: these name another transaction
                return _samples_after_close(cp, closed[-1], item)
            if connector is not None:
                hints = state.meter_hints
                hints[tx] = connector  # a stop for this unknown transaction will need its connector
                while len(hints) > METER_HINTS_KEPT:
                    hints.pop(next(iter(hints)))
            return []
    elif connector is not None:
        key = state.connector(connector).tx
        session = state.sessions.get(key) if key else None
    if session is None:
        return []  # connector-level values outside a transaction
    if session.connector is None and connector is not None:
        session.connector = connector
        state.connector(connector).tx = session.session_id
    session.flag(*sorted(item.flags - {Flag.CONNECTOR_ID_INVALID}))
    if session.stopped:
        session.flag(Flag.METER_VALUES_AFTER_STOP)
    elif session.available_deadline is not None and item.transaction_id is not None and _metered_after_available(session, item):
        session.resume()  # the charger goes on metering the transaction after an Available
    add_readings(session, item.readings, transaction_data=False)
    return []


def _samples_after_close(cp: ChargePoint, session: SessionState, item: MeterSamples) -> list[Event]:
    """Samples for an emitted session. Closed by Available while the charger goes on metering it (a
    reboot that reported Available): it is going on, and is open again until it stops. Otherwise a
    revision only if they change its energy (they cannot when meterStop settled it); kept either way,
    so a later revision counts them."""
    last = session.emitted
    assert last is not None
    # Metered after the Available that closed it: it went on. Metered before it: a backlog of what it was.
    if (session.stop is None and last.closed_by is ClosedBy.AVAILABLE and _metered_after_available(session, item)
            and _reopen(cp, session)):
        add_readings(session, item.readings, transaction_data=False)
        return []
    add_readings(session, item.readings, transaction_data=False)
    candidate = session_record(cp.id, cp.config, session, last.closed_by, revision=last.revision,
                               version=last.version, received_ms=last.received_ms)
    if candidate.energy_wh == last.energy_wh:
        return []
    session.flag(Flag.LATE_METER_VALUES)
    return emission.reemit(cp, session, item.gw_ms)


def _reopen(cp: ChargePoint, session: SessionState) -> bool:
    connector = cp.state.connector(session.connector) if session.connector is not None else None
    if connector is not None and connector.tx is not None:
        return False  # another session holds the connector now: these are a backlog's late values
    del cp.state.closed[session.memory_key]
    cp.state.sessions[session.session_id] = session
    session.unflag(Flag.STOP_MISSING)
    session.flag(Flag.AVAILABLE_THEN_RESUMED)
    session.closed_gw_ms = None
    session.age_deadline = (session.start_gw_ms or 0) + cp.config.max_session_age_ms
    if connector is not None:
        connector.tx = session.session_id
    return True


def _metered_after_available(session: SessionState, item: MeterSamples) -> bool:
    """Samples that show the transaction went on after its Available: one of them metered after it."""
    return not item.readings or any(session.after_available(r.at_ms) for r in item.readings)


def add_readings(session: SessionState, readings: tuple[Reading, ...], *, transaction_data: bool) -> None:
    """The readings of one frame: a register sample goes to the stop's transactionData (``transaction_data``)
    or to the session's MeterValues reducer; power and SoC to their own fields."""
    for reading in readings:
        if reading.measurand == ENERGY_REGISTER:
            mark = BREAK_MARKS.get(reading.context, 0)  # where it stands to a break in metering (Interruption.*)
            if transaction_data:
                if len(session.td) >= TRANSACTION_DATA_KEPT:
                    # A state is kept for days and written at every flush: beyond this, only the newest
                    # reading replaces the last one kept (a register's energy is in its ends).
                    session.td.pop()
                    session.flag(Flag.TRANSACTION_DATA_TRUNCATED)
                session.td.append(RegisterSample(reading.at_ms, reading.value, reading.resolution, mark))
            else:
                session.mv.add(reading.value, reading.at_ms, reading.resolution, mark)
        elif reading.measurand == POWER:
            session.peak_w = reading.value if session.peak_w is None else max(session.peak_w, reading.value)
        elif reading.measurand == SOC:
            if session.soc[0] is None:
                session.soc[0] = reading.value
            session.soc[1] = reading.value
