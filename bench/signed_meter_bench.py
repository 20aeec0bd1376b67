"""Signed meter values: verified readings per CPU-second, by curve, and what parsing costs.

For each curve, one signed record (the real ones of ``../shared/ocmf`` where a real meter uses the
curve, else a fresh key signing an OCMF record of the same shape) is verified over and over through the
whole path a worker takes (:func:`signed_meter.verification.verify_signed_value`: read the sampled
value, parse the record, look up the registered key, check the signature). Beside it, in the same run:
the ECDSA check alone (``cryptography`` / ``ecdsa``), and the parse alone three ways - pyocmf's
``OCMF.from_string`` (the whole library), this package's :func:`signed_meter.record.read_record`
(pyocmf's section models, sections cut here) and a bare ``json.loads`` of the payload (the baseline: the
least any reader of the record must do). CPU time (``time.process_time``), so other load on the machine
moves the numbers less.

    .venv/bin/python -m bench.signed_meter_bench [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import decimal
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pyocmf

from signed_meter.arrival import from_ocpp16_sampled_value
from signed_meter.record import read_record
from signed_meter.registry import RegisteredKey
from signed_meter.signature import check
from signed_meter.signing import Signer
from signed_meter.verification import verify_signed_value

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "ocmf"
SYNTHETIC_PAYLOAD = (
    '{"FV":"1.0","GI":"BENCH","GS":"G1","PG":"T1","MS":"M1","IS":false,"RD":[{"TM":"2024-03-01T10:00:00,000+0000 S",'
    '"TX":"B","RV":12.345,"RI":"1-b:1.8.0","RU":"kWh","ST":"G"},{"TM":"2024-03-01T11:00:00,000+0000 S","TX":"E",'
    '"RV":23.456,"RI":"1-b:1.8.0","RU":"kWh","ST":"G"}]}'
)
SYNTHETIC_CURVES = ("secp521r1", "brainpoolP384r1", "secp192k1")


def records() -> list[tuple[str, str, str, str]]:
    """(curve, source, signed data, key hex): one real record per curve, then the synthetic ones."""
    out: dict[str, tuple[str, str, str, str]] = {}
    for sample in json.loads((SHARED / "samples.json").read_text(encoding="utf-8")):
        label = sample["curve"] + (" (Alfen)" if sample["format"] == "ALFEN" else "")
        out.setdefault(label, (label, sample["name"], sample["signed_data"], sample["public_key_hex"]))
    for curve in SYNTHETIC_CURVES:
        signer = Signer(curve)
        out[curve] = (curve, "synthetic", signer.sign(SYNTHETIC_PAYLOAD, sa=f"ECDSA-{curve}-SHA256"), signer.public_key_hex)
    return list(out.values())


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per CPU-second of ``fn``, measured for about ``seconds`` of CPU."""
    fn()  # warm caches (key decoding is cached per key text, as in the worker)
    calls, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(20):
            fn()
        calls += 20
    return calls / elapsed


def _pyocmf_parse(text: str) -> Callable[[], object]:
    def parse() -> object:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            return pyocmf.OCMF.from_string(text)

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement")
    args = parser.parse_args()
    print(f"{'curve':24} {'record':38} {'verified/s':>11} {'ECDSA only/s':>13} {'read_record µs':>15} "
          f"{'pyocmf µs':>10} {'json.loads µs':>14} {'read / json':>11}")
    for curve, source, text, key_hex in records():
        value = from_ocpp16_sampled_value({"format": "SignedData", "value": text, "context": "Transaction.Begin"})
        assert value is not None
        keys = [RegisteredKey("BENCH", None, key_hex)]
        verdict = verify_signed_value(value, keys)
        assert verdict.status == "verified", (source, verdict.detail)
        record, key = verdict.record, verdict.key
        assert record is not None and key is not None
        full = rate(lambda: verify_signed_value(value, keys), args.seconds)
        ecdsa = rate(lambda: check(record, key), args.seconds)
        ours = 1e6 / rate(lambda: read_record(text), args.seconds)
        payload = text[5 : text.rfind("|")] if text.startswith("OCMF|") else None
        theirs = 1e6 / rate(_pyocmf_parse(text), args.seconds) if payload is not None else float("nan")
        baseline = (1e6 / rate(lambda: json.loads(payload, parse_float=decimal.Decimal), args.seconds)
                    if payload is not None else float("nan"))
        print(f"{curve:24} {source[:38]:38} {full:11,.0f} {ecdsa:13,.0f} {ours:15.1f} {theirs:10.1f} {baseline:14.1f} "
              f"{ours / baseline:10.1f}x")


if __name__ == "__main__":
    main()
