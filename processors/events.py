"""What the correlator emits: rows of the tables it feeds (and, for sessions and faults, the topic records made of
them), typed. Each tracker returns the kinds it makes; the correlator hands them out in the order they were made.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.records import ChargeAttempt, FaultEvent, PortOutage, Session, StatusChange

Event = Session | FaultEvent | StatusChange | PortOutage | ChargeAttempt


def codes(flags: Iterable[str]) -> list[str]:
    """Flags as a row holds them: plain strings, sorted, each once (members of :class:`~schemas.flags.Flag` and the
    codes of the documented families)."""
    return sorted({str(f) for f in flags})
