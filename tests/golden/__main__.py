"""Check, or record, the golden files (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from tests.golden import outputs

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "inputs.json"


def load_inputs() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(INPUTS.read_text())
    return data


def goldens(inputs: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """File name -> what the current code makes of its inputs."""
    return {
        "ddl.json": outputs.ddl_statements,
        "gateway.json": lambda: outputs.gateway_envelopes(inputs["gateway_frames"]),
        "worker.json": lambda: outputs.worker_outputs(inputs["worker_records"]),
        "exclusions.json": lambda: outputs.exclusion_rows(inputs["exclusion_records"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="record what this checkout makes of the inputs")
    parser.add_argument("--new-inputs", action="store_true", help="rebuild the inputs from tests.golden.corpus first")
    args = parser.parse_args()
    if args.new_inputs:
        from tests.golden import corpus

        INPUTS.write_text(outputs.canonical({
            "worker_records": corpus.worker_records(), "exclusion_records": corpus.exclusion_records(),
            "gateway_frames": corpus.gateway_frames(),
        }))
    inputs = load_inputs()
    differ = 0
    for name, make in goldens(inputs).items():
        text = outputs.canonical(make())
        path = HERE / name
        if args.write or args.new_inputs:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(text):,} characters)")
        elif json.loads(path.read_text()) != json.loads(text):
            differ += 1
            print(f"{name}: differs from what this checkout makes")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
