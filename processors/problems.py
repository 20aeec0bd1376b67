"""OCPP 2.0.1 component problems (NotifyEvent) and the faults that wait for them to be named. Tracker functions of
one :class:`ChargePoint`; the rules are :mod:`processors.evse_faults` (KPIS.md, SESSIONS.md).

A problem begins or ends a fault on its EVSE (0: the station, whose problem also takes every port down); a Faulted
status with no problem to name it waits :data:`~processors.evse_faults.NAMING_MS` for one, listed in
:attr:`~processors.state.CorrelatorState.naming` so the correlator's deadlines find it.
"""

from __future__ import annotations

from processors import evse_faults
from processors.charge_point import ChargePoint
from processors.events import Event
from processors.inputs import ProblemReported
from processors.outages import STATION
from processors.state import ConnectorState
from processors.transaction_identity import transaction_on


def on_problem(cp: ChargePoint, item: ProblemReported) -> list[Event]:
    """2.0.1 NotifyEvent: a component's problem begins or ends a fault on its EVSE (0: the station, whose problem
    also takes every port down: processors.evse_faults, KPIS.md)."""
    state = cp.state
    cp.saw_time(item.gw_ms, item.occurred_ms, item.flags)
    connector = state.connector(item.connector_id)
    occurred_ms = item.occurred_ms if item.occurred_ms is not None else item.gw_ms
    events: list[Event] = list(evse_faults.on_problem(cp.id, connector, item, occurred_ms,
                                                      transaction_on(state, item.connector_id), cp.protocol.version))
    naming_changed(cp, item.connector_id, connector)
    # The problem's code names an outage it joins (a Faulted status came, or comes, with it).
    if item.connector_id == STATION:
        if item.active:  # the EVSEs it took down, Faulted a moment before it came
            for waiting in list(state.naming):
                evse = state.connectors[waiting]
                events.extend(evse_faults.name_by_station(cp.id, waiting, evse, item, cp.protocol.version))
                naming_changed(cp, waiting, evse)
        events.extend(cp.outages.station_changed(item.gw_ms))
    else:
        events.extend(cp.outages.refresh(item.connector_id, item.gw_ms))
    return events


def station_problem(cp: ChargePoint) -> str:
    """The code of the station-level problem active now ('' if none): it names the faults of the EVSEs it takes
    down."""
    station = cp.state.connectors.get(STATION)
    return station.problems[-1] if station is not None and station.problems else ""


def naming_changed(cp: ChargePoint, connector: int, state: ConnectorState) -> None:
    """Keep the list of connectors whose fault waits for its name (their deadlines) in step with their faults."""
    naming = cp.state.naming
    waiting = state.fault is not None and not state.fault.announced
    if waiting and connector not in naming:
        naming.append(connector)
    elif not waiting and connector in naming:
        naming.remove(connector)


def naming_deadlines(cp: ChargePoint) -> list[int]:
    """When each fault waiting for its name goes out without one."""
    connectors = cp.state.connectors
    deadlines = []
    for connector in cp.state.naming:
        state = connectors.get(connector)
        if state is not None and state.fault is not None:
            deadlines.append(evse_faults.naming_deadline(state.fault))
    return deadlines


def announce_unnamed(cp: ChargePoint, deadline: int) -> list[Event]:
    """The faults whose naming wait ended at ``deadline`` go out, code unknown."""
    naming = cp.state.naming
    events: list[Event] = []
    for connector in list(naming):
        state = cp.state.connectors.get(connector)
        if state is None or state.fault is None:
            naming.remove(connector)
        elif evse_faults.naming_deadline(state.fault) <= deadline:
            events.extend(evse_faults.announce(cp.id, connector, state, cp.protocol.version))
            naming_changed(cp, connector, state)
    return events
