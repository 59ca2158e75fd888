"""Prometheus metrics of one gateway instance (its own registry, so tests can run several).

Names (all prefixed ``gateway_``):

* ``events_total{source,outcome}`` — events by outcome: new, applied, unchanged, late
  (out-of-order, refused by the state machine), duplicate, quarantined.
* ``requests_refused_total{source,reason}`` — refused inbound requests: signature,
  malformed, too_large, backpressure, unknown_source, unknown_tenant.
* ``commit_seconds`` — histogram of one group commit (plan + durable write batch).
* ``commit_events`` — histogram of events per group commit.
* ``quarantined`` — gauge: events currently in quarantine (all tenants).
* ``outbox_events`` / ``outbox_bytes`` — gauges: the upstream backlog.
* ``forwarded_events_total`` — events the upstream acknowledged (2xx).
* ``forward_batches_total{result}`` — upstream batches: ok, retry, rejected (split),
  dead_letter.
* ``dead_letters`` — gauge: events the upstream refused, held for ``outbox requeue``.
* ``outbox_oldest_age_seconds`` — gauge: how long the oldest outbox event has waited.
* ``upstream_consecutive_failures`` / ``upstream_last_success_timestamp_seconds`` — gauges.
* ``channel_connected{source,tenant}`` / ``channel_reconnects_total{source,tenant}`` — the
  outbound message channels (the Pinduoduo WebSocket): connected now, lost or failed attempts.
* ``device_up{station,device,kind}`` / ``device_reconnects{...}`` / ``device_events{...}`` —
  gauges of each pack-station device: up now, times it went down, scans/labels/weights since start.
* ``store_writable`` — gauge: 0 after a failed write (disk full, I/O error) until a write
  succeeds again.
* ``rules_reloads_total{result}`` — rule reloads, ok or failed; ``rules_version_info``.
* ``core_implementation_info{implementation}`` — 1 for the core in use (cython/python).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest


class Metrics:
    """The metric objects, registered in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter("gateway_events", "Events by source and outcome", ["source", "outcome"], registry=r)
        self.refused = Counter(
            "gateway_requests_refused", "Refused inbound requests", ["source", "reason"], registry=r
        )
        self.commit_seconds = Histogram(
            "gateway_commit_seconds", "Duration of one group commit", registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.commit_events = Histogram(
            "gateway_commit_events", "Events per group commit", registry=r,
            buckets=(1, 10, 100, 500, 1000, 5000, 20000),
        )
        self.quarantined = Gauge("gateway_quarantined", "Events currently quarantined", registry=r)
        self.outbox_events = Gauge("gateway_outbox_events", "Events waiting in the outbox", registry=r)
        self.outbox_bytes = Gauge("gateway_outbox_bytes", "Bytes waiting in the outbox", registry=r)
        self.forwarded_events = Counter("gateway_forwarded_events", "Events acknowledged by the upstream",
                                        registry=r)
        self.forward_batches = Counter("gateway_forward_batches", "Upstream batches by result", ["result"],
                                       registry=r)
        self.dead_letters = Gauge("gateway_dead_letters", "Events refused by the upstream, held", registry=r)
        self.outbox_oldest_age = Gauge("gateway_outbox_oldest_age_seconds", "Age of the oldest outbox event",
                                       registry=r)
        self.upstream_failures = Gauge("gateway_upstream_consecutive_failures",
                                       "Failed upstream attempts since the last success", registry=r)
        self.upstream_last_success = Gauge("gateway_upstream_last_success_timestamp_seconds",
                                           "Unix time of the last acknowledged batch", registry=r)
        self.channel_connected = Gauge("gateway_channel_connected",
                                       "1 while an outbound message channel (Pinduoduo WebSocket) is connected",
                                       ["source", "tenant"], registry=r)
        self.channel_reconnects = Counter("gateway_channel_reconnects",
                                          "Lost connections and failed attempts of an outbound message channel",
                                          ["source", "tenant"], registry=r)
        device_labels = ["station", "device", "kind"]
        self.device_up = Gauge("gateway_device_up", "1 while a pack-station device is up", device_labels, registry=r)
        self.device_reconnects = Gauge("gateway_device_reconnects",
                                       "Times a device went down or failed to open since start", device_labels,
                                       registry=r)
        self.device_events = Gauge("gateway_device_events", "Scans, labels or weights of a device since start",
                                   device_labels, registry=r)
        self.verdicts = Counter("gateway_verdicts", "Pack-station verdicts shown, by station and verdict",
                                ["station", "verdict"], registry=r)
        self.store_writable = Gauge("gateway_store_writable",
                                    "1 while the store accepts writes, 0 after a failed write until it heals",
                                    registry=r)
        self.store_writable.set(1)
        self.rules_reloads = Counter("gateway_rules_reloads", "Rule reloads", ["result"], registry=r)
        self.rules_version = Info("gateway_rules_version", "Digest of the live rule set", registry=r)
        self.core = Gauge(
            "gateway_core_implementation_info", "Core implementation in use", ["implementation"], registry=r
        )

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
