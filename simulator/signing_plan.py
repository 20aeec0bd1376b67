"""Which simulated chargers carry a signing meter, with which signing quirk, and the keys file an operator imports.

A share of the fleet signs (``OCPP_SIMULATOR_SIGNING_SHARE``); a share of those has one of
:data:`~simulator.lives.SIGNING_QUIRKS` (``OCPP_SIMULATOR_SIGNING_QUIRKY_SHARE``), the kinds in turn from the
first (a flipped signature byte: the first quirky one always fails verification), so a fleet with six quirky
signing chargers shows every kind. Who signs depends only on the seed and the charger's
number (never on the fleet's size, never on its OCPP version: a 2.0.1 charger signs as its 1.6 twin would), and
draws from its own random source, so the chargers and plans of a seed are the same with signing or without.
Both shares are held exactly over any run of chargers: charger *n* is chosen when ``floor(n * share + offset)``
steps up (a Beatty sequence), so 20 chargers at 0.2 are 4 signing chargers, whatever the seed.

The keys file is CSV in the format :func:`signed_meter.registry.parse_key_file` reads (``ocpp-pipeline keys
import FILE``): one line per meter - per connector, and two for connector 1 of a charger whose meter is
swapped - none for a charger whose key is only in its frames.
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

from signed_meter.registry import KEY_FILE_COLUMNS
from simulator.lives import SIGNING_QUIRKS, Profile, Quirk
from simulator.meter_models import AC_METERS, DC_METERS, MeterPlan
from simulator.ocmf_meter import meter_serial, meter_signer


def chosen(share: float, n: int, offset: float) -> int | None:
    """The 1-based rank of ``n`` among the chosen of 1, 2, ... at ``share`` (None: not chosen)."""
    rank = math.floor(n * share + offset)
    return rank if rank > math.floor((n - 1) * share + offset) else None


def with_meter(profile: Profile, *, seed: int, share: float, quirky_share: float) -> Profile:
    """``profile`` with its signing meter and signing quirk, when the shares choose it."""
    offsets = random.Random(f"{seed}:signing")
    signing_offset, quirky_offset = offsets.random(), offsets.random()
    rank = chosen(share, profile.number, signing_offset)
    if rank is None:
        return profile
    models = DC_METERS if profile.dc else AC_METERS
    rng = random.Random(f"{seed}:{profile.number}:meter")
    model = rng.choices(models, weights=[m.weight for m in models])[0]
    plan = MeterPlan(model, key_seed=f"{seed}:{profile.number}")
    quirky = chosen(quirky_share, rank, quirky_offset)
    quirks = profile.quirks if quirky is None else profile.quirks | {SIGNING_QUIRKS[(quirky - 1) % len(SIGNING_QUIRKS)]}
    return replace(profile, meter=plan, quirks=quirks)


@dataclass(frozen=True)
class MeterKeyRow:
    """One line of the keys file: a meter's public key for a charge point's connector."""

    charge_point_id: str
    connector_id: int
    public_key: str  # DER SubjectPublicKeyInfo, hex
    meter_serial: str


def key_rows(profile: Profile) -> list[MeterKeyRow]:
    """The keys an operator registers for ``profile``'s meters (from their labels), every meter it will have."""
    if profile.meter is None or profile.has(Quirk.KEY_ONLY_IN_FRAME):
        return []
    rows = []
    for connector in range(1, profile.connectors + 1):
        generations = (0, 1) if connector == 1 and profile.has(Quirk.METER_SWAPPED) else (0,)
        rows += [MeterKeyRow(profile.charge_point_id, connector, meter_signer(profile.meter, connector, g).public_key_hex,
                             meter_serial(profile, connector, g)) for g in generations]
    return rows


def key_file_text(profiles: list[Profile]) -> str:
    """The keys file of a fleet (a header and no lines when nothing signs)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KEY_FILE_COLUMNS)
    for profile in profiles:
        for row in key_rows(profile):
            writer.writerow([row.charge_point_id, row.connector_id, row.public_key, row.meter_serial])
    return out.getvalue()


def write_key_file(path: Path, profiles: list[Profile]) -> int:
    """Write the fleet's keys file (atomically: a reader never sees half of it); returns the number of keys."""
    text = key_file_text(profiles)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return text.count("\n") - 1
