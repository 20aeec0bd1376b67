"""The real signed records of ``<repo>/../shared/ocmf`` (read there, never copied into the project)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

OCMF_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "ocmf"


def _load(name: str) -> list[dict[str, Any]]:
    path = OCMF_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: the signed-meter tests read the real records from ../shared/ocmf")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def samples() -> list[dict[str, Any]]:
    return _load("samples.json")


@pytest.fixture(scope="session")
def tampered() -> list[dict[str, Any]]:
    return _load("tampered.json")


@pytest.fixture(scope="session")
def sessions(samples: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        out.setdefault(sample["pair_id"], []).append(sample)
    return out
