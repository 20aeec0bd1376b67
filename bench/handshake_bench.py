"""Handshake bench: what the gateway's hardening (issue 22: connection cap, client address, failed-login
throttling, password policy) costs per WebSocket upgrade, against the gateway before it, in the same run.

    .venv/bin/python -m bench.handshake_bench                       # both parts, baseline = merge-base with main
    .venv/bin/python -m bench.handshake_bench --handshakes 3000 --baseline-ref 52481ed

1. Decisions alone (no sockets): µs per upgrade decision of the code before (path, subprotocol, Basic
   header, hash check) and now (client address, cap tally, throttle look-up and bookkeeping, policy), for a
   good login, a wrong password, and (now only) a throttled attempt.
2. Real sockets: two gateway processes on this machine, security profile 1, the same credentials file,
   one at ``--baseline-ref`` (its tree exported with ``git archive`` into a temporary folder, run with this
   virtualenv), one at the working tree; the same client opens and closes ``--handshakes`` connections with
   Basic credentials against each, ``--concurrency`` at a time, first all good logins, then all wrong
   passwords (each id once). Reported: handshakes/s and the server's CPU µs per handshake (its user+system
   CPU over the handshakes; steadier than rates on a shared machine), and the ratios now / before.

The hardened gateway runs with no trusted proxy (the loopback client is a client address: the cap tally
and the address ledger do their work on every handshake) and a per-address free-failure count above the
run's, so every wrong password is checked and booked (the dearest path; a throttled attempt is cheaper).
Its own broker in a temporary folder, on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bench.gateway_bench import ROOT, Server, free_port, raise_fd_limit

PASSWORD = "Bench-Password-0123456789"


# --- 1. decisions alone ---------------------------------------------------------------------------


def _per_call_us(fn, rounds: int = 5, n: int = 20_000) -> float:
    """Median over rounds of the mean µs per call."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter_ns() - started) / n / 1000)
    return statistics.median(samples)


def decisions() -> dict[str, float]:
    from gateway import handshake
    from gateway.client_address import ClientAddresses
    from gateway.connection_cap import ConnectionTally
    from gateway.credentials import Credentials, hash_secret
    from gateway.errors import HandshakeRefused
    from gateway.gatekeeper import Attempt, Gatekeeper
    from gateway.throttle import Backoff, LoginThrottle

    credentials = Credentials({f"CP-{n:05d}": hash_secret(PASSWORD) for n in range(1000)})
    good = "Basic " + base64.b64encode(f"CP-00007:{PASSWORD}".encode()).decode()
    wrong = "Basic " + base64.b64encode(b"CP-00007:Wrong-Password-0123456789").decode()
    offered = ["ocpp1.6"]

    def before(header: str):
        def run() -> None:  # what the gateway did per upgrade before (gateway/handshake.py at the baseline)
            charge_point_id = handshake.charge_point_id_from_path("/ocpp/CP-00007", "/ocpp")
            handshake.choose_subprotocol(offered, ("ocpp1.6", "ocpp2.0.1"))
            try:
                credentials.verify(charge_point_id, handshake.basic_password(header, charge_point_id))
            except HandshakeRefused:
                pass
        return run

    addresses, tally = ClientAddresses(()), ConnectionTally(1000)
    never = 10**9

    def now_(header: str, *, throttled: bool = False):
        throttle = LoginThrottle(Backoff(0 if throttled else never, 1e9, 1e9, 3600), Backoff(never, 1.0, 300, 3600), 65536)
        keeper = Gatekeeper(path_prefix="/ocpp", subprotocols=("ocpp1.6", "ocpp2.0.1"), security_profile=1,
                            credentials=credentials, throttle=throttle)
        if throttled:
            throttle.failed("CP-00007", "203.0.113.7", 0.0)
        clock = iter(range(10**9))

        def run() -> None:
            address, _ = addresses.of_peer("203.0.113.7")
            tally.opened(address)
            try:
                keeper.admit(Attempt("/ocpp/CP-00007", offered, (header,), None, address, float(next(clock)) * 1e-6))
            except HandshakeRefused:
                pass
            tally.closed(address)
        return run

    return {
        "before_good_us": _per_call_us(before(good)), "now_good_us": _per_call_us(now_(good)),
        "before_wrong_us": _per_call_us(before(wrong)), "now_wrong_us": _per_call_us(now_(wrong)),
        "now_throttled_us": _per_call_us(now_(wrong, throttled=True)),
    }


def throttle_memory_mib(capacity: int = 65536) -> float:
    """What the throttle holds when an attacker fills it: both ledgers and the last-good-address map at
    ``capacity``, 48-character ids, IPv6 /64 keys, all failed within the hour (none forgiven yet)."""
    import tracemalloc

    from gateway.throttle import Backoff, LoginThrottle

    tracemalloc.start()
    throttle = LoginThrottle(Backoff(5, 1, 300, 3600), Backoff(100, 1, 300, 3600), capacity)
    before = tracemalloc.get_traced_memory()[0]
    for i in range(capacity + 1000):
        charge_point, address = f"CP-{i:045d}", f"2001:db8:{i >> 16:x}:{i & 0xffff:x}::/64"
        throttle.failed(charge_point, address, i * 1e-3)
        throttle.succeeded(charge_point, address)
        throttle.failed(charge_point, address, i * 1e-3)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / 2**20


# --- 2. real sockets --------------------------------------------------------------------------------


def export_tree(ref: str, into: Path) -> Path:
    """The gateway's source at ``ref`` (``git archive``: the repository is only read)."""
    archive = into / "tree.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def start_gateway(name: str, tree: Path, env: dict[str, str], log_dir: Path) -> Server:
    port, admin_port = free_port(), free_port()
    env = {**env, "PYTHONPATH": str(tree), "OCPP_GATEWAY_HOST": "127.0.0.1", "OCPP_GATEWAY_PORT": str(port),
           "OCPP_GATEWAY_ADMIN_PORT": str(admin_port), "OCPP_GATEWAY_PROCESSES": "1", "OCPP_GATEWAY_ID": name}
    log = open(log_dir / f"{name}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", "from ocpp_pipeline.cli import main; raise SystemExit(main())",
                             "gateway", "--log-level", "warning"], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for probe_port in (admin_port, port):  # the baseline answers /readyz on the chargers' port
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{probe_port}/readyz", timeout=2).close()
                return Server(name, proc, port, admin_port)
            except OSError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{name} did not start: see {log_dir / f'{name}.log'}")


async def handshakes(port: int, count: int, concurrency: int, *, right: bool, id_offset: int) -> tuple[int, float]:
    """Open and close ``count`` connections; ``(opened, seconds)``."""
    sem = asyncio.Semaphore(concurrency)
    opened = 0

    async def one(n: int) -> None:
        nonlocal opened
        charge_point = f"CP-{(n + id_offset) % 100_000:05d}"
        secret = PASSWORD if right else f"Wrong-{n:06d}-password-x"
        header = {"Authorization": "Basic " + base64.b64encode(f"{charge_point}:{secret}".encode()).decode()}
        async with sem:
            try:
                ws = await connect(f"ws://127.0.0.1:{port}/ocpp/{charge_point}", subprotocols=["ocpp1.6"],
                                   additional_headers=header, compression=None, open_timeout=60, ping_interval=None)
            except InvalidStatus:
                return
            opened += 1
            await ws.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    return opened, time.perf_counter() - started


def sockets_run(args: argparse.Namespace, work: Path) -> dict[str, dict[str, list[float]]]:
    from gateway.credentials import Credentials
    from infra.local_kafka import LocalBroker
    from tests.conftest import broker_settings_in

    ref = args.baseline_ref or subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, check=True,
                                              capture_output=True, text=True).stdout.strip()
    baseline_tree = export_tree(ref, work)
    credentials = work / "credentials.json"
    Credentials.set_entry(credentials, "CP-00000", PASSWORD)  # then the rest in one write: set_entry rewrites the file
    import json

    data = json.loads(credentials.read_text())
    data.update({f"CP-{n:05d}": data["CP-00000"] for n in range(1, 100_000)})
    credentials.write_text(json.dumps(data))
    broker = LocalBroker(broker_settings_in(work / "kafka-home"))
    broker.start()
    results: dict[str, dict[str, list[float]]] = {}
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCPP_")} | {
            "OCPP_HOME": str(work / "home"), "OCPP_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "OCPP_KAFKA_PARTITIONS": "2", "OCPP_GATEWAY_SECURITY_PROFILE": "1", "OCPP_GATEWAY_CREDENTIALS_FILE": str(credentials),
            "OCPP_GATEWAY_PING_INTERVAL_S": "0", "OCPP_GATEWAY_TRUSTED_PROXIES": "", "OCPP_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "100000",
            "OCPP_GATEWAY_LOGIN_FREE_FAILURES_PER_ADDRESS": str(10 * args.handshakes),
        }
        for round_ in range(args.rounds):
            for name, tree in (("before", baseline_tree), ("now", ROOT)):
                server = start_gateway(f"{name}-{round_}", tree, env, work)
                try:
                    asyncio.run(handshakes(server.port, 200, args.concurrency, right=True, id_offset=90_000))  # warm-up
                    for kind, right in (("good", True), ("wrong", False)):
                        cpu = server.cpu_s()
                        opened, seconds = asyncio.run(handshakes(server.port, args.handshakes, args.concurrency, right=right,
                                                                 id_offset=round_ * 2 * args.handshakes + (0 if right else args.handshakes)))
                        assert opened == (args.handshakes if right else 0), (name, kind, opened)
                        row = results.setdefault(f"{name} {kind}", {"per_s": [], "cpu_us": []})
                        row["per_s"].append(args.handshakes / seconds)
                        row["cpu_us"].append((server.cpu_s() - cpu) / args.handshakes * 1e6)
                finally:
                    server.stop()
    finally:
        broker.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=2000, help="per kind (good, wrong) and server")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="alternating before/now rounds; medians reported")
    parser.add_argument("--baseline-ref", help="git ref of the gateway before (default: the merge-base with main)")
    parser.add_argument("--no-sockets", action="store_true", help="the decisions part only")
    args = parser.parse_args()
    raise_fd_limit()
    print(f"load average at start {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    d = decisions()
    print("1. upgrade decisions alone (µs per upgrade, median of 5 x 20k):")
    print(f"   good login     before {d['before_good_us']:6.2f}  now {d['now_good_us']:6.2f}  (+{d['now_good_us'] - d['before_good_us']:.2f} µs)")
    print(f"   wrong password before {d['before_wrong_us']:6.2f}  now {d['now_wrong_us']:6.2f}  (+{d['now_wrong_us'] - d['before_wrong_us']:.2f} µs)")
    print(f"   throttled                     now {d['now_throttled_us']:6.2f}")
    print(f"   throttle memory when full (65,536 keys per ledger): {throttle_memory_mib():.1f} MiB per process")
    if args.no_sockets:
        return
    with tempfile.TemporaryDirectory(prefix="ocpp-handshake-bench-") as folder:
        r = sockets_run(args, Path(folder))
    print(f"\n2. real handshakes, profile 1 (Basic), {args.handshakes} per kind, {args.concurrency} at a time, "
          f"{args.rounds} rounds (median, and min-max):")
    print(f"   {'':<13} {'handshakes/s':>24} {'server CPU µs/handshake':>28}")
    for key, row in r.items():
        rate, cpu = row["per_s"], row["cpu_us"]
        print(f"   {key:<13} {statistics.median(rate):>8.0f} ({min(rate):>5.0f}-{max(rate):<5.0f})"
              f"{statistics.median(cpu):>16.1f} ({min(cpu):>6.1f}-{max(cpu):<6.1f})")
    print(f"   load average at the end {os.getloadavg()[0]:.1f}")
    for kind in ("good", "wrong"):
        before, now = r[f"before {kind}"], r[f"now {kind}"]
        # Rounds alternate before/now, so round i of each ran under about the same load: ratios per round.
        cpu = [n / b for n, b in zip(now["cpu_us"], before["cpu_us"])]
        rate = [n / b for n, b in zip(now["per_s"], before["per_s"])]
        print(f"   {kind}: now / before = {statistics.median(cpu):.3f}x CPU per handshake (rounds {min(cpu):.2f}-{max(cpu):.2f}), "
              f"{statistics.median(rate):.3f}x handshakes/s (rounds {min(rate):.2f}-{max(rate):.2f})")


if __name__ == "__main__":
    main()
