"""OCPP 2.0.1 TransactionEvent ``seqNo``: resends, replays and gaps. Pure; SESSIONS.md, *OCPP 2.0.1*.

Stations count ``seqNo`` per transaction (each transaction restarts its count: OCPP 2.0.1 Edition 2's reading) or
per station (one counter for every transaction). The sequence shows which (:func:`numbering`): a transaction whose
Started is numbered no higher than the station's last number (another transaction's) restarted the count; one whose
Started continues it (the last + 1) shares it. A jump in a transaction's numbers (:func:`verdict`) is a gap:

- counted per transaction: a jump in the transaction's own sequence, whatever other EVSEs sent between;
- counted per station, or not known yet: only when no other transaction's event came between (the numbers
  skipped are other transactions' otherwise).

A number the transaction already passed is a resend or a replay from the offline queue (``seq_no_repeated``).
"""

from __future__ import annotations

from enum import StrEnum


class Numbering(StrEnum):
    """How a station counts ``seqNo`` (kept in the correlator's state: the values are persisted)."""

    PER_TRANSACTION = "transaction"  # each transaction restarts its count
    PER_STATION = "station"  # one counter for every transaction


class Verdict(StrEnum):
    OK = "ok"
    REPEATED = "repeated"  # a number the transaction already passed: a resend or a replay
    GAP = "gap"  # events of the transaction are missing


def numbering(known: Numbering | None, station_last: int | None, seq_no: int, opens: bool) -> Numbering | None:
    """How the station counts, after an event numbered ``seq_no`` (``opens``: a Started, the first of its
    transaction) following ``station_last`` (the station's last number, of any transaction)."""
    if not opens or station_last is None:
        return known
    if seq_no <= station_last:
        return Numbering.PER_TRANSACTION  # a new transaction went back below the station's count: it restarted
    if seq_no == station_last + 1:
        return Numbering.PER_STATION  # it went on with the station's count
    return known  # a jump: events missing somewhere, nothing shown


def verdict(mode: Numbering | None, last: int | None, station_last: int | None, seq_no: int) -> Verdict:
    """An event numbered ``seq_no`` of a transaction whose last was ``last`` (``None``: its first)."""
    if last is None:
        return Verdict.OK
    if seq_no <= last:
        return Verdict.REPEATED
    if seq_no > last + 1 and (mode is Numbering.PER_TRANSACTION or station_last == last):
        return Verdict.GAP
    return Verdict.OK
