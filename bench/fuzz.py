"""Fuzz the gateway with >= 100k adversarial frames and thousands of hostile handshakes over real
sockets, then check that every frame is on Kafka. Exit code 1 on any violation.

    .venv/bin/python -m bench.fuzz                          # needs the local broker running
    .venv/bin/python -m bench.fuzz --frames 200000 --connections 50 --handshakes 10000 --seed 7

The generator and the OCPP-J oracle are in tests/reliability/adversarial.py (the CI test runs a
short version of the same). Also runs the correlator property test with --correlator-examples.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections import Counter

from gateway.server import Gateway
from infra.settings import KafkaSettings
from infra.topic_admin import ensure_topics
from schemas.topics import TopicSpec
from tests.gateway.live import gateway_settings, read_envelopes
from tests.reliability import adversarial


async def run(args: argparse.Namespace) -> int:
    kafka = KafkaSettings()
    topic = f"bench.fuzz.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [TopicSpec(name=topic, partitions=4, retention_ms=3600_000)])
    gateway = Gateway(gateway_settings(), kafka, frames_topic=topic)
    await gateway.start()
    rng = random.Random(args.seed)
    report = adversarial.FuzzReport()
    per = args.frames // args.connections
    started = time.perf_counter()
    try:
        url = f"ws://127.0.0.1:{gateway.port}/ocpp"
        batches = [[adversarial.frame(rng, c * per + n) for n in range(per)] for c in range(args.connections)]
        await asyncio.gather(*(adversarial.fuzz_connection(url, f"FUZZ-{c}", b, report) for c, b in enumerate(batches)))
        frames_s = time.perf_counter() - started
        statuses: Counter[int] = Counter()
        for _ in range(args.handshakes):
            path = rng.choice(adversarial.HANDSHAKE_PATHS)
            statuses[await adversarial.handshake(gateway.port, adversarial.handshake_request(rng, path, gateway.port))] += 1
        assert await gateway.publisher.flush(60)
    finally:
        await gateway.stop()
    envelopes = await read_envelopes(kafka, topic, lambda e: sum(1 for x in e if x.direction == "in") >= report.sent,
                                     timeout_s=300)
    kept = sum(1 for e in envelopes if e.direction == "in")
    print(f"frames     {report.frames:,} adversarial (+{report.sent - report.frames:,} sentinels) in {frames_s:.1f} s "
          f"over {args.connections} connections (seed {args.seed})")
    print(f"answers    {report.answered:,} answered per OCPP-J, {report.unanswered_as_expected:,} results left unanswered, "
          f"{len(report.violations)} violations")
    print(f"kept       {kept:,} of {report.sent:,} inbound frames on Kafka")
    print(f"handshakes {sum(statuses.values()):,}: " + ", ".join(f"{code or 'closed'} x{n}" for code, n in sorted(statuses.items())))
    for violation in report.violations[:20]:
        print("  VIOLATION", violation)
    bad_status = set(statuses) - {0, 101, 400, 401, 403, 404, 431}
    return 1 if report.violations or kept != report.sent or bad_status else 0


def correlator_examples(n: int) -> int:
    """The correlator property test (tests/processors/test_correlator_properties.py) with n examples."""
    import os
    import subprocess

    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/processors/test_correlator_properties.py::test_the_correlator_never_raises_and_never_goes_negative_or_doubles"],
                            env={**os.environ, "CORRELATOR_EXAMPLES": str(n)}, capture_output=True, text=True)
    verdict = "no exception, no negative or doubled energy" if result.returncode == 0 else "FAILED\n" + result.stdout[-3000:]
    print(f"correlator {n:,} hypothesis examples (envelope sequences): {verdict} ({time.perf_counter() - started:.0f} s)")
    return result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--handshakes", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--correlator-examples", type=int, default=0)
    args = parser.parse_args()
    code = asyncio.run(run(args))
    if args.correlator_examples:
        code = code or correlator_examples(args.correlator_examples)
    sys.exit(code)


if __name__ == "__main__":
    main()
