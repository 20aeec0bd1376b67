"""The calibrated meters a signing charger may carry (Eichrecht, OCMF): what each signs with and how it writes.

Every model here is one whose signed records are in ``../shared/ocmf`` (real devices, published keys): its
curve, how its records spell the algorithm (``SA``; absent on the SEAL gateway's Carlo Gavazzi records, which
means P-256), its register unit and the status letter of its clock (OCMF ``TM``: S synchronised, I informative,
U unsynchronised, R relative). A simulated meter writes records the way its model does, so the pipeline meets
every curve and spelling the field sends. Pure data: :mod:`simulator.ocmf_meter` signs with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeterModel:
    """A meter model as its records show it (OCMF ``MV`` / ``MM``, ``SA``, ``RU``, the ``TM`` status)."""

    vendor: str
    model: str
    curve: str  # a name of signed_meter.curves.CURVES
    signing_method: str | None  # OCMF SA as this model writes it; None: left out (the spec's default, P-256)
    unit: str  # "Wh" or "kWh" (kWh with three decimals: every Wh is signed)
    time_status: str  # the TM status letter
    serial_prefix: str  # meter serials of this make begin so (``MS``)
    weight: int  # how common among signing chargers of its kind (AC or DC)

    @property
    def declared_method(self) -> str:
        """The algorithm as a 2.0.1 ``signingMethod`` says it (the default when the record leaves SA out)."""
        return self.signing_method or "ECDSA-secp256r1-SHA256"


AC_METERS: tuple[MeterModel, ...] = (
    MeterModel("BAUER Electronic", "BSM-WS36A-H01-1311-0000", "secp256r1", "ECDSA-secp256r1-SHA256", "Wh", "S", "001BZR", 3),
    MeterModel("Carlo Gavazzi", "EM340-DIN.AV2.3.X.S1.PF", "secp256r1", None, "kWh", "U", "CG", 2),
    MeterModel("DZG", "DVH4013", "secp256k1", "ECDSA-secp256k1-SHA256", "kWh", "I", "1DZG00", 2),
    MeterModel("NZR", "EcoCount SL", "brainpoolP256r1", "ECDSA-brainpoolP256r1-SHA256", "Wh", "S", "NZR", 1),
    MeterModel("NZR", "EcoCount SL", "secp384r1", "ECDSA-secp384r1-SHA256", "Wh", "S", "NZR", 1),  # SHA-256, as OCMF says
    MeterModel("eBZ", "LD3", "secp192r1", "ECDSA-secp192r1-SHA256", "Wh", "I", "1EBZ03", 1),
)
DC_METERS: tuple[MeterModel, ...] = (
    MeterModel("LEM", "DCBM 400/600", "secp256r1", "ECDSA-secp256r1-SHA256", "kWh", "R", "LEM", 2),
    MeterModel("DZG", "GSH01.1K2L", "secp256k1", "ECDSA-secp256k1-SHA256", "kWh", "I", "1DZG00", 1),
)


@dataclass(frozen=True)
class MeterPlan:
    """A signing charger's meters: one of ``model`` per connector (EVSE), keys derived from ``key_seed``.

    The keys depend only on the simulator's seed and the charger's number, so a run with the same seed has
    the same keys (the ones an operator registered from the keys file stay valid)."""

    model: MeterModel
    key_seed: str
