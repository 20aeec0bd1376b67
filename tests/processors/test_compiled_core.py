"""The mypyc build of the core (:mod:`infra.compiled_core`, opt-in) makes the rows the pure-Python core makes: the
recorded corpus replayed through the compiled modules, in a process of its own.

Compiling takes 1-2 minutes on 2 cores, so the replay runs on a build of the current sources that is already there
(``make compile``: ``.local/compiled``), or builds one into a temporary folder when ``TEST_COMPILED_CORE=1``;
otherwise it is skipped and says so. The list of compiled modules is checked always."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import compiled_core

ROOT = compiled_core.ROOT
CACHED = ROOT / ".local" / "compiled"
WANTED = os.environ.get("TEST_COMPILED_CORE") == "1"  # not OCPP_*: the suite drops those at its start

_REPLAY = """
import importlib, importlib.machinery, json, sys
from tests.processors.recorded_corpus import load, replay
modules = [path[:-3].replace("/", ".") for path in sys.argv[1:]]
python = [m for m in modules
          if not importlib.import_module(m).__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))]
streams = load()
print(json.dumps({"streams": len(streams), "python": python,
                  "differ": [s["name"] for s in streams if replay(s) != s["outputs"]]}))
"""


def test_every_module_the_frame_processor_imports_is_compiled_or_left_python_on_purpose() -> None:
    """The core moves: a module added to it is compiled, or named in LEFT_PYTHON with its reason."""
    done = subprocess.run([sys.executable, "-c", "import sys, processors.pipeline; print('\\n'.join(sys.modules))"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    imported = {f"{name.replace('.', '/')}.py" for name in done.stdout.split() if name.startswith("processors.")}
    imported.add("processors/__init__.py")
    assert imported == set(compiled_core.MODULES) | set(compiled_core.LEFT_PYTHON)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if compiled_core.is_current(CACHED):
        return CACHED
    if not WANTED:
        pytest.skip("no current build in .local/compiled (make compile) and TEST_COMPILED_CORE is not 1")
    return compiled_core.build(tmp_path_factory.mktemp("compiled"))


def test_the_compiled_core_gives_the_recorded_rows(compiled: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(compiled), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", _REPLAY, *compiled_core.MODULES], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["python"] == []  # each listed module ran compiled
    assert result["streams"] > 90
    assert result["differ"] == []
