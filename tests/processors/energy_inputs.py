"""The energy rule's inputs and call as the energy and meter tests write them: the settings' defaults, and
transactionData samples as plain tuples."""

from __future__ import annotations

from typing import Any

from processors.energy import EnergyInputs, EnergyResult, RegisterSample, session_energy
from processors.settings import CorrelatorConfig

DEFAULTS = CorrelatorConfig.defaults()
DEFAULT_MAX_DURATION_S = DEFAULTS.max_session_age_ms / 1000


def make_inputs(*args: Any, transaction_data: Any = (), **kwargs: Any) -> EnergyInputs:
    """:class:`EnergyInputs` with transactionData samples written as plain tuples (resolution and mark may be left out)."""
    return EnergyInputs(*args, transaction_data=[RegisterSample(*t) for t in transaction_data], **kwargs)


def energy_of(inputs: EnergyInputs, max_power_w: float = DEFAULTS.max_power_w,
              max_duration_s: float = DEFAULT_MAX_DURATION_S) -> EnergyResult:
    """:func:`session_energy` with the settings' defaults."""
    return session_energy(inputs, max_power_w, max_duration_s)
