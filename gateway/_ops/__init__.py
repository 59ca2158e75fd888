"""The operators' view: the anomaly board and the Order Credibility Index (issue 14, 3 and 4).

In: the store (orders, audit chain, quarantine, dead letters, the pack line's ``parcel``,
``intercept``, ``plan`` and ``hold`` records), the live mapping rules, ``[oci]`` and the
board's thresholds; acknowledgements from the API.
Out: per tenant, a ``TenantReport`` (the OCI now and its parts' drill-downs, the anomalies
with reason, age and order link); ``anomaly_ack`` records (who, when) and ``oci_hourly``
trend records written through a commit callable; Prometheus gauges (``OpsMetrics``).

Parts: ``settings`` (``OciSettings``, ``BoardSettings``), ``judge`` (one order judged:
consistency, freshness, the audit digest; pure), ``anomalies`` (the ``Anomaly`` value and a
builder per kind; pure), ``scan`` (one pass over a tenant), ``board`` (the kinds read from
records; acknowledgements), ``oci`` (the formula, the trend, ``measure_oci``), ``paging``
(opaque cursors; pure), ``metrics`` (gauges), ``serve`` (``OpsState``, ``serve_ops``).
The HTTP face is ``gateway._server.ops_api``.
"""

from gateway._ops.anomalies import KINDS, Anomaly, order_link
from gateway._ops.board import ACK_KIND, ack_write, read_acks, record_anomalies
from gateway._ops.metrics import OpsMetrics
from gateway._ops.oci import FORMULA, TREND_KIND, OciResult, combined_score, measure_oci, read_trend
from gateway._ops.paging import CursorError, Page, decode_cursor, encode_cursor, page_of
from gateway._ops.scan import TenantScan, scan_tenant
from gateway._ops.serve import OpsState, TenantReport, compute_report, serve_ops
from gateway._ops.settings import PARTS, BoardSettings, OciSettings, oci_problems

__all__ = [
    "ACK_KIND",
    "FORMULA",
    "KINDS",
    "PARTS",
    "TREND_KIND",
    "Anomaly",
    "BoardSettings",
    "CursorError",
    "OciResult",
    "OciSettings",
    "OpsMetrics",
    "OpsState",
    "Page",
    "TenantReport",
    "TenantScan",
    "ack_write",
    "combined_score",
    "compute_report",
    "decode_cursor",
    "encode_cursor",
    "measure_oci",
    "oci_problems",
    "order_link",
    "page_of",
    "read_acks",
    "read_trend",
    "record_anomalies",
    "scan_tenant",
    "serve_ops",
]
