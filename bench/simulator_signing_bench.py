"""The simulator's signing chargers: what a signed reading and a meter's keys cost the fleet process.

Per meter model (:mod:`simulator.meter_models`), CPU time (``time.process_time``) of:

- *signed MeterValues*: what a 1.6 signing charger does for one signed reading - the meter signs the
  register (:meth:`simulator.ocmf_meter.OcmfMeter.sign`), the record becomes a SignedData sampled value beside
  the register sample, and the MeterValues payload is JSON-encoded as the link sends it;
- *plain MeterValues* (the baseline, in the same run): the same MeterValues without the signed value, i.e.
  what the charger does for that message when it does not sign;
- *key derivation*: a meter's key pair from its seed (:func:`simulator.ocmf_meter.meter_signer`, uncached),
  paid once per meter when the keys file is written at a run's start.

    .venv/bin/python -m bench.simulator_signing_bench [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace

from bench.signed_meter_bench import rate
from signed_meter.model import TX_END
from simulator import lives
from simulator.meter_models import AC_METERS, DC_METERS, MeterPlan
from simulator.ocmf_meter import OcmfMeter, meter_signer, with_signed_16

T_MS = 1_764_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement")
    args = parser.parse_args()
    base = lives.make_profile(random.Random(3), 1, id_prefix="SIM-", connectors=(1, 1), quirky_share=0)
    print(f"{'meter':34} {'curve':16} {'signed MV/s':>12} {'plain MV/s':>11} {'signed / plain':>15} "
          f"{'sign µs':>8} {'keys/s':>8}")
    for model in AC_METERS + DC_METERS:
        profile = replace(base, meter=MeterPlan(model, "bench:1"), max_power_w=150_000 if model in DC_METERS else 22_000)
        meter = OcmfMeter(profile, 1)
        register = [38_123_456]

        def plain() -> str:
            register[0] += 7
            value = lives.meter_value(profile, T_MS, register[0], None, None, "Transaction.End")
            return json.dumps({"connectorId": 1, "transactionId": 42, "meterValue": [value]})

        def signed() -> str:
            register[0] += 7
            sent = meter.sign(TX_END, register[0], T_MS, "TAG0A1B2C")
            assert sent is not None
            value = with_signed_16(lives.meter_value(profile, T_MS, register[0], None, None, "Transaction.End"), sent)
            return json.dumps({"connectorId": 1, "transactionId": 42, "meterValue": [value]})

        seeds = iter(range(10**9))

        def derive() -> object:
            return meter_signer.__wrapped__(MeterPlan(model, f"bench:{next(seeds)}"), 1, 0)

        signed_rate, plain_rate, keys_rate = rate(signed, args.seconds), rate(plain, args.seconds), rate(derive, args.seconds)
        print(f"{model.vendor + ' ' + model.model[:16]:34} {model.curve:16} {signed_rate:12,.0f} {plain_rate:11,.0f} "
              f"{plain_rate / signed_rate:14.1f}x {1e6 / signed_rate - 1e6 / plain_rate:8.0f} {keys_rate:8,.0f}")


if __name__ == "__main__":
    main()
