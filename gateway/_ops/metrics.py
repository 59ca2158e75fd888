"""The operators' view in Prometheus: the OCI parts and the open anomalies, per tenant.

Registered in the gateway's own registry (``Metrics.registry``) so ``/metrics`` shows them
beside the others::

    gateway_oci{tenant,part}            0..1: part = score, freshness, consistency,
                                        traceability (a part with nothing to judge is
                                        absent); as of the last computation
    gateway_oci_computed_timestamp_seconds{tenant}   when that was
    gateway_oci_compute_seconds{tenant}              what it cost
    gateway_anomalies{tenant,kind}      anomalies on the board now (acknowledged included)
    gateway_anomalies_unacked{tenant,kind}           ... not yet acknowledged
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Gauge

from gateway._ops.anomalies import KINDS, Anomaly
from gateway._ops.oci import OciResult
from gateway._ops.settings import PARTS


class OpsMetrics:
    """The gauges, registered in ``registry`` (``Metrics().registry``).

    Args:
        registry: where to register (one per gateway instance).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.oci = Gauge("gateway_oci", "Order Credibility Index and its parts (0..1)", ["tenant", "part"],
                         registry=registry)
        self.oci_computed = Gauge("gateway_oci_computed_timestamp_seconds", "Unix time of the last OCI computation",
                                  ["tenant"], registry=registry)
        self.oci_cost = Gauge("gateway_oci_compute_seconds", "Duration of the last OCI and board computation",
                              ["tenant"], registry=registry)
        self.anomalies = Gauge("gateway_anomalies", "Anomalies on the board by kind", ["tenant", "kind"],
                               registry=registry)
        self.unacked = Gauge("gateway_anomalies_unacked", "Anomalies on the board not yet acknowledged",
                             ["tenant", "kind"], registry=registry)

    def observe(self, result: OciResult, board: Iterable[Anomaly], acked: Mapping[str, object],
                cost_s: float) -> None:
        """Set every gauge of ``result.tenant`` from one computation."""
        tenant = result.tenant
        for part, value in (("score", result.score), *((p, result.parts[p]) for p in PARTS)):
            if value is None:
                try:
                    self.oci.remove(tenant, part)
                except KeyError:
                    pass
            else:
                self.oci.labels(tenant, part).set(value)
        self.oci_computed.labels(tenant).set(result.computed_at_ms / 1000)
        self.oci_cost.labels(tenant).set(cost_s)
        listed = list(board)
        by_kind = Counter(a.kind for a in listed)
        open_by_kind = Counter(a.kind for a in listed if a.anomaly_id not in acked)
        for kind in KINDS:
            self.anomalies.labels(tenant, kind).set(by_kind.get(kind, 0))
            self.unacked.labels(tenant, kind).set(open_by_kind.get(kind, 0))


__all__ = ["OpsMetrics"]
