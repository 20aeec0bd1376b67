"""The per-frame core compiled with mypyc: an opt-in build of the same sources, the pure-Python path the default.

``build(dest)`` copies ``processors/`` and ``schemas/`` into ``dest`` and compiles there the modules the
:class:`~processors.pipeline.FrameProcessor` runs per frame (:data:`MODULES`) into C extensions beside their
sources. Nothing in the checkout changes: the build is used by putting ``dest`` first on ``PYTHONPATH``, where the
extension of a module wins over its ``.py`` (``make compile`` builds ``.local/compiled``; the worker image's
``worker-compiled`` target, BENCHMARKS.md for what it gives).

    .venv/bin/python -m infra.compiled_core .local/compiled
    PYTHONPATH=.local/compiled .venv/bin/ocpp-pipeline worker

Left out, and why (each measured or refused by mypyc, BENCHMARKS.md):

- ``processors/envelope_decode.py``: its ``msgspec.Struct`` compiled reads the three methods it borrows from
  ``FrameEnvelope`` as fields, and every envelope then goes to pydantic (slower, and a trap).
- ``schemas/*``: pydantic models (``schemas/base.py`` fails in mypyc's C for its ``pydantic.main`` import) and the
  storable checks are code generated at run time; they stay Python.
- ``processors/settings.py``: pydantic-settings models, read once at start.
- ``processors/app.py`` and the rest of the Faust shell, the sink, the web views: I/O, not per frame.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What the FrameProcessor imports and runs per frame, but envelope_decode (above): one place for the list.
MODULES = tuple(f"processors/{name}.py" for name in (
    "attempts", "charge_point", "clock", "correlator", "deadlines", "emission", "energy", "events", "evse_faults",
    "faults", "frame_json", "inputs", "legacy_state", "meter", "normalize", "ocpp16", "ocpp201", "outages",
    "pipeline", "problems", "protocols", "samples", "seq_no", "session_record", "sessions", "signed_samples",
    "signed_values", "state", "state_codec", "status_timeline", "stops", "timestamps", "transaction_identity", "values",
    "vocabulary",
))
# What the FrameProcessor imports but runs as Python (the docstring says why); with MODULES, all it imports.
LEFT_PYTHON = ("processors/__init__.py", "processors/envelope_decode.py", "processors/settings.py")
PACKAGES = ("processors", "schemas")
STAMP = "compiled-from.txt"  # in dest: the digest of the sources it was built from

_SETUP = """
from setuptools import setup
from mypyc.build import mypycify

setup(name="ocpp_pipeline_compiled_core", ext_modules=mypycify({args!r}, opt_level="3", multi_file=True))
"""


class CompileError(RuntimeError):
    """mypyc or the C compiler refused the core; the message holds the tail of their output."""


def sources_digest(root: Path = ROOT) -> str:
    """A digest of every source file a build copies: a build is current while this is its stamp."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_current(dest: Path, root: Path = ROOT) -> bool:
    """Whether ``dest`` holds a build of the sources as they are now."""
    stamp = dest / STAMP
    return stamp.is_file() and stamp.read_text().strip() == sources_digest(root)


def build(dest: Path, root: Path = ROOT, jobs: int = 2) -> Path:
    """Compile the core of ``root`` into ``dest`` (replaced whole); returns ``dest``. Needs mypy (mypyc ships with
    it), a C compiler and Python's headers. Raises :class:`CompileError` when the build fails."""
    dest = dest.resolve()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for package in PACKAGES:
        shutil.copytree(root / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    work = dest / "build"
    work.mkdir()
    # Errors in the modules it only follows (schemas' pydantic models) are the type gate's business, not the build's.
    flags = ["--ignore-missing-imports", "--follow-imports=silent"]
    (work / "setup.py").write_text(_SETUP.format(args=[*flags, *MODULES]))
    done = subprocess.run([sys.executable, str(work / "setup.py"), "build_ext", "--inplace", f"--parallel={jobs}"],
                          cwd=dest, capture_output=True, text=True)
    if done.returncode != 0:
        raise CompileError(f"mypyc build of the core failed ({done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
    shutil.rmtree(work)  # the generated C and the objects, and mypy's cache: not needed to run
    shutil.rmtree(dest / ".mypy_cache", ignore_errors=True)
    (dest / STAMP).write_text(sources_digest(root) + "\n")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="the folder to build into (replaced); put it first on PYTHONPATH")
    parser.add_argument("--jobs", type=int, default=2, help="C files compiled in parallel")
    parser.add_argument("--if-stale", action="store_true", help="do nothing when dest is a build of these sources")
    args = parser.parse_args()
    if args.if_stale and is_current(args.dest):
        print(f"{args.dest}: current")
        return
    try:
        print(build(args.dest, jobs=args.jobs))
    except CompileError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
