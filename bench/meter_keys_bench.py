"""What the worker's key registry costs to rebuild at its start (every worker reads ``ocpp.meter_keys.v1`` whole before
its first frame): :class:`processors.meter_key_intake.MeterKeyIntake` (decode, check, fold into one registry per charge
point) against folding the same events into one :class:`signed_meter.registry.KeyRegistry` (``registry_of``), same
events, same run (a ratio, BENCHMARKS.md "Meter keys").

    .venv/bin/python -m bench.meter_keys_bench [--keys 20000] [--baseline-keys 2000]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from processors.meter_key_intake import MeterKeyHolder, MeterKeyIntake
from signed_meter.key_events import record_of
from signed_meter.registry import KeyAction, KeyEvent, RegisteredKey, registry_of

AT = datetime(2026, 12, 6, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes


def events(count: int) -> list[KeyEvent]:
    out = []
    for n in range(count):
        der = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        out.append(KeyEvent(KeyAction.ADD, RegisteredKey(f"CP-{n:06d}", 1, der.hex(), None, "bench", "")))
    return out


def intake_rate(records: list[Record]) -> tuple[float, int]:
    holder = MeterKeyHolder()
    started = time.perf_counter()
    MeterKeyIntake(holder).take(0, records)
    return len(records) / (time.perf_counter() - started), holder.key_count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--baseline-keys", type=int, default=2_000)
    args = parser.parse_args()
    all_events = events(args.keys)
    records = [Record(n, record_of(e, AT).model_dump_json().encode()) for n, e in enumerate(all_events)]
    small = records[: args.baseline_keys]
    rate_small, _ = intake_rate(small)
    started = time.perf_counter()
    registry_of(all_events[: args.baseline_keys])
    baseline = args.baseline_keys / (time.perf_counter() - started)
    rate, keys = intake_rate(records)
    print(f"intake, {args.baseline_keys} keys: {rate_small:,.0f} events/s; one KeyRegistry (registry_of), same events: "
          f"{baseline:,.0f} events/s; ratio {rate_small / baseline:.1f}x")
    print(f"intake, {args.keys} keys: {rate:,.0f} events/s ({keys} keys registered; the start of a worker of a "
          f"{args.keys}-meter fleet waits {args.keys / rate:.1f} s for them)")


if __name__ == "__main__":
    main()
