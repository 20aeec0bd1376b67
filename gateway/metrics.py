"""Prometheus metrics of the gateway, served on the admin port (``OCPP_GATEWAY_ADMIN_PORT``, never the
chargers'). No per-charger or per-address labels: label values are bounded sets (the charger actions of
every OCPP version in :mod:`gateway.actions`, outcomes, :class:`~gateway.errors.RefusalKind`), so
cardinality stays flat at any fleet size and under any attack.

Several processes on one port (``gateway --processes N``): the scrape lands on any of them, so each
answers for the whole host. prometheus_client's multiprocess mode: every process writes its values to
memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (set by :mod:`gateway.supervisor` before the
workers start), and :meth:`GatewayMetrics.exposition` reads all of them: counters and histograms
summed; gauges by their ``multiprocess_mode`` (open connections and pending frames summed over the
live processes, ``kafka_up`` the minimum: 1 only when every process's producer is up).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.actions import CHARGER_ACTIONS
from gateway.errors import RefusalKind


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, multiprocess_dir: Path | None = None) -> None:
        """``multiprocess_dir``: the host's ``PROMETHEUS_MULTIPROC_DIR`` when this is one of several
        gateway processes (the values already go there: prometheus_client reads the variable at import)."""
        self.registry = registry or CollectorRegistry()
        self._multiprocess_dir = multiprocess_dir
        r = self.registry
        self.open_connections = Gauge("ocpp_gateway_open_connections", "open charger WebSocket connections", registry=r,
                                      multiprocess_mode="livesum")
        self.connections = Counter("ocpp_gateway_connections", "accepted charger connections", registry=r)
        self.replaced = Counter("ocpp_gateway_replaced_connections", "connections closed because the same charger connected again", registry=r)
        self.refusals = Counter("ocpp_gateway_handshake_refusals", "refused WebSocket upgrades", ["reason"], registry=r)
        access = Counter("ocpp_gateway_access_refusals", "refused WebSocket upgrades by kind (the client sees only the "
                         "HTTP status: every kind of refused login is the same 401)", ["kind"], registry=r)
        # Every kind from the start, at 0: a rate() over a series that appears with its first refusal misses it.
        self.access_refusals = {kind: access.labels(kind.value) for kind in RefusalKind}
        self.weak_password_logins = Counter(
            "ocpp_gateway_weak_password_logins", "logins admitted with a password outside the OCPP security profiles' "
            "rule (OCPP_GATEWAY_WEAK_PASSWORDS=warn)", registry=r)
        keys = Gauge("ocpp_gateway_login_throttle_keys", "charge point ids and client addresses with failed logins remembered",
                     ["ledger"], registry=r, multiprocess_mode="livesum")
        self.throttle_keys = {ledger: keys.labels(ledger) for ledger in ("charge_point", "address")}
        self.frames = Counter("ocpp_gateway_frames", "frames by direction, action and outcome", ["direction", "action", "outcome"], registry=r)
        self.publish_seconds = Histogram(
            "ocpp_gateway_publish_seconds", "time from receiving a transaction frame to Kafka's acknowledgement",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )
        self.publish_failures = Counter("ocpp_gateway_publish_failures", "Kafka sends that failed and were retried", registry=r)
        self.unacknowledged = Counter("ocpp_gateway_unacknowledged_calls", "transaction CALLs answered InternalError: Kafka did not acknowledge in time", registry=r)
        self.pending = Gauge("ocpp_gateway_pending_frames", "frames waiting for Kafka", registry=r, multiprocess_mode="livesum")
        self.loop_lag_max = Gauge(
            "ocpp_gateway_event_loop_lag_max_seconds", "longest event-loop stall seen (a timer that fired this late)",
            registry=r, multiprocess_mode="max",
        )
        self._frame_children: dict[tuple[str, str | None, str], Counter] = {}
        self.kafka_up = Gauge("ocpp_gateway_kafka_up", "1 when the last Kafka send succeeded", registry=r,
                              multiprocess_mode="livemin")

    def count_frame(self, direction: str, action: str | None, outcome: str) -> None:
        key = (direction, action, outcome)
        child = self._frame_children.get(key)
        if child is None:  # labels() takes a lock and builds a tuple: look each child up once
            child = self._frame_children[key] = self.frames.labels(direction, self.action_label(action), outcome)
        child.inc()

    @staticmethod
    def action_label(action: str | None) -> str:
        if action is None:
            return "unparsed"
        return action if action in CHARGER_ACTIONS else "other"

    def exposition(self) -> bytes:
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        host = CollectorRegistry()
        MultiProcessCollector(host, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(host)
