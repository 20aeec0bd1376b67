"""Payloads for test records (signed with :class:`signed_meter.signing.Signer` on fresh keys)."""

from __future__ import annotations

from signed_meter.signing import Signer

__all__ = ["TM1", "TM2", "Signer", "payload"]

TM1 = "2024-03-01T10:00:00,000+0000 S"
TM2 = "2024-03-01T11:00:00,000+0000 S"


def payload(pg: int, *readings: tuple[str, str, str], ms: str = "M1", unit: str = "kWh",
            ri: str = "1-b:1.8.0") -> str:
    """An OCMF payload's text: readings as (TX, RV as a JSON literal, TM), written exactly as given."""
    rd = ",".join(
        f'{{"TM":"{tm}","TX":"{tx}","RV":{rv},"RI":"{ri}","RU":"{unit}","ST":"G"}}' for tx, rv, tm in readings
    )
    return f'{{"FV":"1.0","GI":"TEST","GS":"G1","PG":"T{pg}","MS":"{ms}","IS":false,"RD":[{rd}]}}'
