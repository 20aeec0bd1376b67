"""Signed meter values through the pure frame processor (issue 25): frames per CPU-second of signing chargers against
the same conversations unsigned, in the same run.

Each real session of ``../shared/ocmf`` (11, with their registered keys) is replayed as ``--chargers`` charge points
of each OCPP version: start, a MeterValues per signed record (1.6 ``format: SignedData`` / 2.0.1 TransactionEvent
``signedMeterValue``), stop. The unsigned run sends the same frames with each signed value replaced by a plain
register value of the same reading, so the difference is what reading, verifying, keeping (the state, written and
read back between batches) and judging the signed values costs. CPU time (``time.process_time``) of
:meth:`FrameProcessor.process` and ``take`` only (building the envelopes is left out); the best of ``--rounds``.

    .venv/bin/python -m bench.signed_processor_bench [--chargers 20] [--rounds 3] [--batch 200]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from processors.pipeline import FrameProcessor
from processors.settings import CorrelatorConfig
from schemas.envelope import FrameEnvelope
from signed_meter.registry import KeyRegistry, RegisteredKey
from tests.processors.signed_conversations import V16, V201, Conversation, load, pairs, sampled_16, sampled_201

REGISTER = "Energy.Active.Import.Register"


def _plain_16(record: dict[str, Any]) -> dict[str, Any]:
    wh = record["pair"]["end_register_wh"] if record["role"] in ("end", "begin_end") else record["pair"]["begin_register_wh"]
    return {"value": str(round(wh)), "context": record["ocpp16_context"], "measurand": REGISTER, "unit": "Wh"}


def _plain_201(record: dict[str, Any]) -> dict[str, Any]:
    value = dict(record["ocpp201_sampled_value"])
    value.pop("signedMeterValue", None)
    return value


def conversations(chargers: int, *, signed: bool) -> tuple[list[bytes], KeyRegistry, int]:
    """The envelopes (as the frames topic holds them), the registry, and how many signed values they carry."""
    envelopes: list[FrameEnvelope] = []
    keys = KeyRegistry()
    carried = 0
    for n in range(chargers):
        for pair_id, records in pairs(load("samples.json")).items():
            for version in (V16, V201):
                conv = Conversation(f"B{n}-{pair_id}-{version}", version)
                begin, end = records[0]["pair"]["begin_register_wh"], records[0]["pair"]["end_register_wh"]
                if version == V16:
                    conv.session_16(1, begin, end, [sampled_16(r) if signed else _plain_16(r) for r in records])
                else:
                    conv.session_201("t1", begin, [sampled_201(r) if signed else _plain_201(r) for r in records])
                carried += len(records) if signed else 0
                keys = keys.add(RegisteredKey(conv.charge_point_id, None, records[0]["public_key_hex"]))
                envelopes.extend(conv.envelopes)
    envelopes.sort(key=lambda e: e.gateway_ts_ms)  # the chargers' frames interleaved, as on a partition
    return [e.model_dump_json().encode() for e in envelopes], keys, carried


def run_once(values: list[bytes], keys: KeyRegistry, batch: int) -> tuple[float, dict[str, int], int]:
    states: dict[str, bytes] = {}
    processor = FrameProcessor(CorrelatorConfig.defaults(), states.get, meter_keys=keys)
    verdicts: dict[str, int] = {}
    sessions = 0
    started = time.process_time()
    for offset, value in enumerate(values):
        processor.process(0, offset, None, value)
        if (offset + 1) % batch == 0 or offset == len(values) - 1:
            out = processor.take()
            states.update(out.states)
            processor.persisted(out.states)
            sessions += len(out.sessions)
            for status, count in out.signed_values.items():
                verdicts[status] = verdicts.get(status, 0) + count
    processor.advance(0, 2_000_000_000_000)
    out = processor.take()
    sessions += len(out.sessions)
    return time.process_time() - started, verdicts, sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=20, help="copies of each real session, per version")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200, help="frames per take() (the states written and read back)")
    args = parser.parse_args()
    results = {}
    for signed in (False, True):
        values, keys, carried = conversations(args.chargers, signed=signed)
        best = None
        for _ in range(args.rounds):
            cpu, verdicts, sessions = run_once(values, keys, args.batch)
            best = cpu if best is None else min(best, cpu)
        assert best is not None
        results[signed] = (len(values), best, carried, verdicts, sessions)
    (frames, cpu_u, _, _, sessions_u), (frames_s, cpu_s, carried, verdicts, sessions_s) = results[False], results[True]
    print(f"{frames} frames per run ({sessions_u} / {sessions_s} session rows), {carried} signed values, verdicts {verdicts}")
    print(f"unsigned: {frames / cpu_u:,.0f} frames per CPU-second ({cpu_u * 1e6 / frames:.0f} µs per frame)")
    print(f"signed:   {frames_s / cpu_s:,.0f} frames per CPU-second ({cpu_s * 1e6 / frames_s:.0f} µs per frame)")
    print(f"ratio signed / unsigned: {(frames_s / cpu_s) / (frames / cpu_u):.2f}; "
          f"extra CPU per signed value: {(cpu_s - cpu_u) * 1e6 / max(carried, 1):.0f} µs")


if __name__ == "__main__":
    main()
