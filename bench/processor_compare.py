"""The pure frame processor of this checkout against another (a baseline commit), in the same run: frames
per CPU-second of each on the same synthetic fleet (``bench.worker_bench.charger_day``), interleaved, best
of several rounds, and the ratio. No broker, no ClickHouse: the processor's cost alone.

    git worktree add --detach /tmp/wt-base <commit>
    .venv/bin/python -m bench.processor_compare /tmp/wt-base --chargers 400 --rounds 3

Each checkout runs in its own interpreter (its own modules), fed the same envelopes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_MEASURE = """
import json, os, sys, time
root, chargers, sessions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, root); os.chdir(root)
from bench.worker_bench import charger_day, pure_processor
records = []
for n in range(chargers):
    records += [(e.key(), e.model_dump_json().encode()) for e in charger_day(n, sessions).envelopes]
started = time.process_time()
pure_processor(records, 4)
print(json.dumps({"frames": len(records), "cpu_s": time.process_time() - started}))
"""


def measure(root: Path, chargers: int, sessions: int) -> float:
    """Frames per CPU-second of the processor of the checkout at ``root``."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(root), str(chargers), str(sessions)],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["frames"] / result["cpu_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", type=Path, help="a checkout (git worktree) of the baseline commit")
    parser.add_argument("--chargers", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=3, help="sessions per charger")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best = {"baseline": 0.0, "this": 0.0}
    for _ in range(args.rounds):  # interleaved: a busy moment hurts both alike
        best["baseline"] = max(best["baseline"], measure(args.baseline.resolve(), args.chargers, args.sessions))
        best["this"] = max(best["this"], measure(ROOT, args.chargers, args.sessions))
    print(f"baseline ({args.baseline}): {best['baseline']:>9,.0f} frames per CPU-second")
    print(f"this checkout         : {best['this']:>9,.0f} frames per CPU-second")
    print(f"ratio                 : {best['this'] / best['baseline']:.3f}")


if __name__ == "__main__":
    main()
