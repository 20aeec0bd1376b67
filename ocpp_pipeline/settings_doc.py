"""Every ``OCPP_*`` variable in one table, rendered from the settings classes themselves.

``ocpp-pipeline settings`` prints it; the README carries a copy that a test keeps equal.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings

from gateway.settings import GatewaySettings
from infra.logs import LogSettings
from infra.settings import ClickHouseSettings, KafkaSettings, LocalKafkaSettings, SqlSettings
from processors.settings import WorkerSettings
from simulator.settings import SimulatorSettings

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    KafkaSettings, LocalKafkaSettings, ClickHouseSettings, GatewaySettings, WorkerSettings, SimulatorSettings, LogSettings,
    SqlSettings,
)


def _variable(cls: type[BaseSettings], name: str) -> str:
    field = cls.model_fields[name]
    alias = field.validation_alias
    if alias is not None and hasattr(alias, "choices"):
        return str(alias.choices[0])
    return (cls.model_config.get("env_prefix", "") + name).upper()


def _default(cls: type[BaseSettings], name: str) -> str:
    field = cls.model_fields[name]
    if field.is_required():
        return "(required)"
    if field.default_factory is not None:
        return f"({field.description.split('(default: ')[-1].rstrip(')')})" if "(default: " in (field.description or "") else "(computed)"
    value = field.get_default()
    if value is None:
        return "—"
    if isinstance(value, tuple):
        value = ",".join(value)
    return f"`{value}`"


def settings_table(classes: tuple[type[BaseSettings], ...] = SETTINGS_CLASSES) -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    seen: set[str] = set()
    for cls in classes:
        for name, field in cls.model_fields.items():
            var = _variable(cls, name)
            if var in seen:
                continue
            seen.add(var)
            rows.append(f"| `{var}` | {_default(cls, name)} | {field.description or ''} |")
    return "\n".join(rows)
