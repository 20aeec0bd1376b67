"""Logging of the long-running commands: text for people, JSON lines for log collectors.

``OCPP_LOG_FORMAT=json`` makes every record one JSON object (``ts``, ``level``, ``logger``,
``message``, ``exc`` when there is one) - what Loki, Elasticsearch or Cloud Logging ingest
without parsing rules. Credentials never reach a log line: the gateway logs charge point ids
and reasons, never headers or passwords (``tests/gateway/test_security_profiles.py``).
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCPP_LOG_", frozen=True)

    format: Literal["text", "json"] = Field("text", description="log format of gateway and worker: text or json (one object per line)")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for the root logger (Faust's worker takes the same)."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if fmt == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def configure(level: str, fmt: str) -> None:
    logging.config.dictConfig(logging_config(level, fmt))
