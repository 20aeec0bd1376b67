"""``ocpp-pipeline outages exclude``: record an operator exclusion and re-emit the outage rows it covers.

Outage rows written before the exclusion existed carry ``excluded_reason = ''``; they are read back
(``FINAL``: the newest version), given the reason :func:`kpi.exclusions.excluded_reason` picks with
every exclusion of the charger (the same rule the worker applies when it writes a row), and inserted
again with ``version + 1`` when the reason changes. Recording the same exclusion twice changes nothing.
The uptime report does not depend on this column (it intersects outages with exclusions itself); the
column is for people and tools reading ``port_outages`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from kpi.exclusions import EVERY_PORT, excluded_reason, fetch_exclusions, to_ms
from schemas.records import OutageExclusion, PortOutage
from schemas.tables import OUTAGE_EXCLUSIONS, PORT_OUTAGES


@dataclass(frozen=True)
class Recorded:
    exclusion: OutageExclusion
    reemitted: int  # outage rows written again with a new excluded_reason

    def describe(self) -> str:
        e = self.exclusion
        port = "every port" if e.connector_id == EVERY_PORT else f"port {e.connector_id}"
        return (f"exclusion {e.exclusion_id} recorded: {e.charge_point_id} {port}, "
                f"{e.from_at.isoformat()} to {e.to_at.isoformat()}, {e.reason.value}; "
                f"{self.reemitted} outage row{'s' if self.reemitted != 1 else ''} re-emitted")


def record_exclusion(client: Client, database: str, exclusion: OutageExclusion) -> Recorded:
    client.insert(OUTAGE_EXCLUSIONS.name, [exclusion.row()], column_names=list(OUTAGE_EXCLUSIONS.column_names),
                  database=database)
    exclusions = fetch_exclusions(client, database, [exclusion.charge_point_id]).get(exclusion.charge_point_id, [])
    changed = [
        outage.model_copy(update={"excluded_reason": reason, "version": outage.version + 1})
        for outage in covered_outages(client, database, exclusion)
        if (reason := excluded_reason(outage.connector_id, to_ms(outage.started_at),
                                      None if outage.ended_at is None else to_ms(outage.ended_at),
                                      exclusions)) != outage.excluded_reason
    ]
    if changed:
        client.insert(PORT_OUTAGES.name, [o.row() for o in changed], column_names=list(PORT_OUTAGES.column_names),
                      database=database)
    return Recorded(exclusion, len(changed))


def covered_outages(client: Client, database: str, exclusion: OutageExclusion) -> list[PortOutage]:
    """The newest version of every outage of the exclusion's charger (and port, unless every port) that
    overlaps its window; an open outage overlaps if it began before the window ends."""
    columns = ", ".join(PORT_OUTAGES.column_names)
    port = "" if exclusion.connector_id == EVERY_PORT else "AND connector_id = {port:UInt32} "
    result = client.query(
        f"SELECT {columns} FROM `{database}`.`{PORT_OUTAGES.name}` FINAL "
        "WHERE charge_point_id = {cp:String} " + port
        + "AND started_at < {to:DateTime64(3, 'UTC')} AND (ended_at IS NULL OR ended_at > {from:DateTime64(3, 'UTC')}) "
        "ORDER BY connector_id, started_at",
        parameters={"cp": exclusion.charge_point_id, "port": exclusion.connector_id,
                    "from": exclusion.from_at, "to": exclusion.to_at},
    )
    return [PortOutage(**dict(zip(PORT_OUTAGES.column_names, row))) for row in result.result_rows]
