"""The pure-Python core against its mypyc build (:mod:`infra.compiled_core`), in the same run: frames per
CPU-second of the :class:`~processors.pipeline.FrameProcessor` on the same synthetic fleet, interleaved rounds, best
of each, and the ratio; with ``--callgrind``, the instructions of the processing alone as well (the same script under
``valgrind --tool=callgrind`` with and without the processing, the difference), which the shared machine's load does
not move.

    make compile
    .venv/bin/python -m bench.compiled_bench --rounds 5 --callgrind

Each side runs in its own interpreter; the compiled one has the build first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from infra import compiled_core

ROOT = compiled_core.ROOT

_SCRIPT = """
import json, sys, time
chargers, sessions, run = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
from bench.worker_bench import charger_day, pure_processor
import processors.pipeline
records = []
for n in range(chargers):
    records += [(e.key(), e.model_dump_json().encode()) for e in charger_day(n, sessions).envelopes]
started = time.process_time()
if run:
    pure_processor(records, 4)
print(json.dumps({"frames": len(records), "cpu_s": time.process_time() - started,
                  "module": processors.pipeline.__file__}))
"""


def _env(build: Path | None) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*([str(build)] if build else []), str(ROOT)])}


def _run(build: Path | None, chargers: int, sessions: int, run: bool = True,
         prefix: tuple[str, ...] = ()) -> tuple[dict[str, object], str]:
    with tempfile.TemporaryDirectory() as cwd:  # not the checkout: its own processors/ would come first
        done = subprocess.run([*prefix, sys.executable, "-c", _SCRIPT, str(chargers), str(sessions), "1" if run else "0"],
                              cwd=cwd, env=_env(build), capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def frames_per_cpu_second(build: Path | None, chargers: int, sessions: int) -> float:
    result, _ = _run(build, chargers, sessions)
    if build is not None and not str(result["module"]).endswith(".so"):
        raise SystemExit(f"the compiled side ran {result['module']}")
    return float(result["frames"]) / float(result["cpu_s"])  # type: ignore[arg-type]


def instructions(build: Path | None, chargers: int, sessions: int) -> tuple[int, int]:
    """(frames, instructions of the processing alone) under callgrind."""
    counts = []
    for run in (False, True):
        with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
            result, stderr = _run(build, chargers, sessions, run,
                                  ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}"))
        counts.append(int(re.findall(r"Collected : (\d+)", stderr)[-1]))
    return int(result["frames"]), counts[1] - counts[0]  # type: ignore[call-overload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=ROOT / ".local" / "compiled", help="built if not current")
    parser.add_argument("--chargers", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=3, help="sessions per charger")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true", help="also count instructions (60 chargers)")
    args = parser.parse_args()
    if not compiled_core.is_current(args.build):
        compiled_core.build(args.build)
    best = {"pure": 0.0, "compiled": 0.0}
    for _ in range(args.rounds):  # interleaved: a busy moment hurts both alike
        best["pure"] = max(best["pure"], frames_per_cpu_second(None, args.chargers, args.sessions))
        best["compiled"] = max(best["compiled"], frames_per_cpu_second(args.build, args.chargers, args.sessions))
    print(f"pure Python : {best['pure']:>9,.0f} frames per CPU-second (best of {args.rounds})")
    print(f"compiled    : {best['compiled']:>9,.0f} frames per CPU-second")
    print(f"ratio       : {best['compiled'] / best['pure']:.3f}")
    if args.callgrind:
        frames, pure = instructions(None, 60, args.sessions)
        _, compiled = instructions(args.build, 60, args.sessions)
        print(f"instructions, {frames:,} frames: pure {pure:,} ({pure // frames:,}/frame), "
              f"compiled {compiled:,} ({compiled // frames:,}/frame), ratio {pure / compiled:.3f}")


if __name__ == "__main__":
    main()
