"""The packages import one way (issue 24, deliverable 1): the contracts at the bottom; the worker and the reports side
by side, neither importing the other (what both need lives in ``schemas``); the gateway apart from both.

Read from the source with ``ast``, so an import inside a function or under ``TYPE_CHECKING`` counts as much as one
at the top of a module: moving an import out of sight does not move a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("schemas", "signed_meter", "infra", "gateway", "processors", "kpi", "simulator", "ocpp_pipeline", "bench",
           "tests")

# (package, packages it must not import), one line per rule.
RULES: tuple[tuple[str, frozenset[str]], ...] = (
    ("schemas", frozenset(PROJECT) - {"schemas"}),  # the contracts are the bottom: they import nothing of the project
    ("kpi", frozenset({"processors"})),  # the reports read tables; they never import the worker
    ("processors", frozenset({"kpi"})),  # the worker never imports the reports
    ("gateway", frozenset({"processors", "kpi"})),  # the gateway writes frames; it knows neither side that reads them
)


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every import in the module at ``path``, wherever it stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def violations(package: str, forbidden: frozenset[str]) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {name}"
            for path in sorted((ROOT / package).rglob("*.py"))
            for name, line in sorted(imported_packages(path)) if name in forbidden]


@pytest.mark.parametrize(("package", "forbidden"), RULES, ids=[f"{p} does not import {', '.join(sorted(f))}"
                                                               for p, f in RULES])
def test_the_package_imports_one_way(package: str, forbidden: frozenset[str]) -> None:
    assert violations(package, forbidden) == []


def test_the_check_sees_imports_inside_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from processors.state import S\n"
                      "def f():\n    import kpi.uptime\n    from . import sibling\n")
    assert imported_packages(module) == {("typing", 1), ("processors", 3), ("kpi", 5)}
