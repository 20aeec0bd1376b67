"""The type gate stays a gate: ``make test`` runs mypy before pytest and fails when it fails, on the packages the
README promises, strictly, with no error silenced but where a third-party package has no types."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GATED = {"processors", "schemas", "kpi", "gateway"}


def mypy_config() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    return config


def test_make_test_runs_the_gate_first_with_the_packages_of_the_config() -> None:
    plan = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    mypy = [n for n, line in enumerate(plan) if re.search(r"(^|/)mypy(\s|$)", line)]
    pytest = [n for n, line in enumerate(plan) if re.search(r"(^|/)pytest(\s|$)", line)]
    assert mypy and pytest and mypy[0] < pytest[0], plan
    assert plan[mypy[0]].split()[1:] == [], "the packages come from [tool.mypy] files, not the Makefile"


def test_the_four_packages_are_checked_strictly() -> None:
    config = mypy_config()
    assert set(config["files"]) == GATED
    assert config["strict"] is True
    for override in config.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        # The four packages are held whole: no module of theirs has its errors silenced.
        if override.get("ignore_errors"):
            assert not {m.split(".")[0] for m in modules} & GATED, modules
        # A weaker rule for first-party code outside the gate only hides its errors, never loosens the gate's.
        if override.get("follow_imports") == "silent":
            assert not {m.split(".")[0] for m in modules} & GATED, modules


def test_mypy_is_installed_by_the_test_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert any(re.match(r"mypy\b", requirement) for requirement in extras)
