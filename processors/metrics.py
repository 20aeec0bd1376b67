"""Prometheus metrics of the worker (no per-charger labels)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames = Counter("ocpp_worker_frames", "frames processed", registry=r)
        self.bad_envelopes = Counter("ocpp_worker_invalid_envelopes", "records on the frames topic that are not envelopes (kept raw)", registry=r)
        self.processing_failures = Counter(
            "ocpp_worker_processing_failures",
            "frames (or clock moves) on which the correlator raised: the frame kept and flagged, the charger's state rolled back",
            registry=r)
        self.unstorable_rows = Counter(
            "ocpp_worker_unstorable_rows", "rows with a value outside its column's range, stored as null or clamped (flagged)",
            registry=r)
        self.sessions = Counter("ocpp_worker_sessions", "sessions emitted", registry=r)
        self.faults = Counter("ocpp_worker_fault_events", "fault events emitted", registry=r)
        self.flush_seconds = Histogram("ocpp_worker_flush_seconds", "time to write one batch (ClickHouse, topics, state)",
                                       buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r)
        self.sink_failures = Counter("ocpp_worker_sink_failures", "ClickHouse inserts that failed and were retried", registry=r)
        self.lag = Gauge("ocpp_worker_consumer_lag", "frames on the topic not yet processed by this worker", registry=r)
        self.recovery_seconds = Gauge(
            "ocpp_worker_recovery_seconds",
            "time the last rebalance or start took to index the deadlines of the newly assigned partitions' states",
            registry=r)
        self.watermark_age = Gauge("ocpp_worker_watermark_age_seconds", "wall time minus the oldest partition clock", registry=r)
        self.sql_requests = Counter(
            "ocpp_worker_sql_requests", "requests to /sql by outcome: ok, refused (the statement or a limit), "
            "unauthorized, wrong_folder, busy, unavailable", ["outcome"], registry=r)
        self.exclusions = Counter("ocpp_worker_exclusions", "exclusion events stored in outage_exclusions", registry=r)
        self.bad_exclusions = Counter(
            "ocpp_worker_invalid_exclusions", "records on the exclusions topic that are not valid exclusion events "
            "(skipped; they stay on the topic)", registry=r)
        self.signed_values = Counter(
            "ocpp_worker_signed_values", "signed meter values verified, by verdict (issue 25): an unparsable or invalid "
            "rate is an alert", ["status"], registry=r)
        self.meter_keys = Counter("ocpp_worker_meter_keys", "meter key events read into the key registry (and meter_keys)",
                                  registry=r)
        self.bad_meter_keys = Counter(
            "ocpp_worker_invalid_meter_keys", "records on the meter keys topic that are not valid meter key events "
            "(skipped; they stay on the topic)", registry=r)
        self.registered_meter_keys = Gauge("ocpp_worker_registered_meter_keys", "meter public keys in the key registry",
                                           registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
