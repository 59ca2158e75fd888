"""One pass over a tenant's store: the OCI's tallies and the anomalies orders stand for.

Blocking (RocksDB reads, seconds on a large store): call ``scan_tenant`` in a worker thread.

What it reads, in this order (the order matters, see "Concurrent commits")::

    verify_audit_chain(tenant)    the chain's links (SHA-256 recomputed): where it breaks
    iter_audit(tenant)            every audit record: each record's changes digested into
                                  the bucket of its order (judge.changes_digest)
    orders of the tenant          each order: freshness, consistency, anomalies, and its
                                  own digest (judge.order_digest) into its bucket
    (only when buckets differ)    the audit and the orders again, for those buckets only,
                                  per order: which orders the trail does not rebuild
    idx_buyer                     for each open order with a buyer: an earlier order of the
                                  same buyer within repeat_within_s (repeat_order_72h)

**Memory** stays flat: the traceability check keeps two arrays of ``BUCKETS`` 64-bit sums
(4 MiB) instead of one entry per order; the per-order comparison runs only for the buckets
whose sums differ (about ``orders / BUCKETS`` orders each). The drill-down keeps at most
``drilldown_max`` orders per part; the counts are exact.

**Concurrent commits.** The passes are not one snapshot. An order written after the scan
started (``updated_at_ms`` within ``FLUX_MARGIN_MS`` of the start, or later) may have changes
the audit pass did not see; it is not judged for traceability (``in_flux``). Audit records
past a broken link are not evidence: their changes are not counted, so the orders they
changed are reported (with the break's seq).

The orders are read undecoded with ``Store.iter_raw_orders`` (the store's chunked scan).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import xxhash

from gateway._model import Status
from gateway._ops import anomalies as build
from gateway._ops.anomalies import Anomaly
from gateway._ops.judge import (
    PAID_UNSHIPPED,
    StatusReader,
    changes_digest,
    disagreement,
    freshness_lag_ms,
    order_digest,
)
from gateway._ops.settings import PARTS, BoardSettings, OciSettings
from gateway._rules import RuleSet
from gateway._store import AuditVerification, Store

BUCKETS = 1 << 18
_BUCKET_MASK = BUCKETS - 1
_MASK = (1 << 64) - 1
FLUX_MARGIN_MS = 5_000
_OPEN = PAID_UNSHIPPED | {Status.ON_HOLD.value}


@dataclass
class PartTally:
    """One part of the index: orders judged, orders that pull it down, the first of them."""

    judged: int = 0
    offenders: int = 0
    examples: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, order_id: str, detail: dict[str, Any], keep: int) -> None:
        self.offenders += 1
        if len(self.examples) < keep:
            self.examples.append((order_id, detail))

    @property
    def value(self) -> float | None:
        """The share of judged orders that do not pull it down, ``None`` when none were judged."""
        return None if not self.judged else (self.judged - self.offenders) / self.judged


@dataclass
class TenantScan:
    """What ``scan_tenant`` found for one tenant."""

    tenant: str
    started_ms: int
    orders: int = 0
    in_window: int = 0
    in_flux: int = 0
    parts: dict[str, PartTally] = field(default_factory=lambda: {part: PartTally() for part in PARTS})
    anomalies: list[Anomaly] = field(default_factory=list)
    chain: AuditVerification | None = None
    audit_records: int = 0
    mismatched_buckets: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)


def raw_orders(store: Store, tenant: str) -> Iterator[tuple[bytes, bytes]]:
    """``(order_id bytes, stored value)`` of every order of ``tenant``, in key order."""
    return store.iter_raw_orders(tenant)


def _bucket(order_id: bytes) -> int:
    return xxhash.xxh64_intdigest(order_id) & _BUCKET_MASK


def scan_tenant(store: Store, rules: RuleSet, tenant: str, oci: OciSettings, board: BoardSettings,
                now_ms: int) -> TenantScan:
    """Scan ``tenant`` (see the module docstring). Blocking.

    Raises:
        StoreError: the store failed or was closed.
    """
    scan = TenantScan(tenant, now_ms)
    clock = time.perf_counter()
    scan.chain = chain = store.verify_audit_chain(tenant)
    first_bad = chain.first_bad_seq if not chain.ok and chain.first_bad_seq is not None else None
    scan.timings_s["verify_chain"] = time.perf_counter() - clock

    clock = time.perf_counter()
    trail = array("Q", bytes(8 * BUCKETS))
    scan.audit_records = _digest_audit(store, tenant, first_bad, trail, None)
    scan.timings_s["audit_pass"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stored = array("Q", bytes(8 * BUCKETS))
    open_orders = _orders_pass(scan, store, rules, oci, board, stored)
    scan.timings_s["orders_pass"] = time.perf_counter() - clock

    clock = time.perf_counter()
    bad = {b for b in range(BUCKETS) if trail[b] != stored[b]}
    scan.mismatched_buckets = len(bad)
    if bad:
        _find_untraceable(scan, store, tenant, oci, first_bad, bad)
    scan.timings_s["traceability_recheck"] = time.perf_counter() - clock

    clock = time.perf_counter()
    scan.anomalies.extend(_repeat_orders(store, tenant, open_orders, board.repeat_within_s))
    scan.timings_s["repeat_orders"] = time.perf_counter() - clock
    return scan


def _digest_audit(store: Store, tenant: str, first_bad: int | None, into: array[int] | None,
                  only: set[int] | None, per_order: dict[bytes, int] | None = None) -> int:
    """Add each audit record's changes digest to its order's bucket (``into``) or, for the
    buckets ``only``, to ``per_order``. Records at or past ``first_bad`` are skipped."""
    count = 0
    for record in store.iter_audit(tenant):
        count += 1
        changes = record.get("changes")
        order_id = record.get("order_id")
        if not changes or not order_id or not isinstance(order_id, str):
            continue
        if first_bad is not None and record.get("seq", 0) >= first_bad:
            continue
        key = order_id.encode()
        bucket = _bucket(key)
        if only is not None and bucket not in only:
            continue
        digest = changes_digest(changes)
        if per_order is not None:
            per_order[key] = (per_order.get(key, 0) + digest) & _MASK
        if into is not None:
            into[bucket] = (into[bucket] + digest) & _MASK
    return count


def _orders_pass(scan: TenantScan, store: Store, rules: RuleSet, oci: OciSettings, board: BoardSettings,
                 stored: array[int]) -> list[dict[str, Any]]:
    """Judge every order; returns the open orders with a buyer (for the repeat check)."""
    tenant, now = scan.tenant, scan.started_ms
    reader = StatusReader(rules)
    keep = oci.drilldown_max
    fresh_ms = oci.freshness_s * 1000
    window_from = now - oci.window_s * 1000 if oci.window_s else None
    flux_from = now - FLUX_MARGIN_MS
    unshipped_before = now - board.unshipped_after_s * 1000
    freshness, consistency, traceability = (scan.parts[p] for p in PARTS)
    open_orders = []
    loads = orjson.loads
    for key, value in raw_orders(store, tenant):
        order = loads(value)
        scan.orders += 1
        bucket = _bucket(key)
        stored[bucket] = (stored[bucket] + order_digest(order)) & _MASK
        order_id = order["order_id"]
        status = order.get("status")
        updated = order.get("updated_at_ms") or 0
        views = reader.views(order.get("source_status") or {})
        found = disagreement(views)
        if found is not None:
            code, a, b = found
            scan.anomalies.append(build.status_disagrees(tenant, order, code, a, views[a].value, b, views[b].value))
        if status in PAID_UNSHIPPED and (order.get("created_at_ms") or now) <= unshipped_before:
            scan.anomalies.append(build.unshipped(tenant, order, now))
        if status == Status.ON_HOLD.value:
            scan.anomalies.append(build.held_order(tenant, order))
        if (status in _OPEN) and order.get("buyer_key"):
            open_orders.append(order)
        if window_from is not None and updated < window_from:
            continue
        scan.in_window += 1
        lag = freshness_lag_ms(order)
        if lag is not None:
            freshness.judged += 1
            if lag > fresh_ms:
                freshness.add(order_id, {"lag_s": lag / 1000, "updated_at_ms": updated,
                                         "last_occurred_at_ms": order.get("last_occurred_at_ms")}, keep)
        consistency.judged += 1
        if found is not None:
            consistency.add(order_id, {"code": found[0], "statuses": {s: v.value for s, v in views.items()}}, keep)
        if updated >= flux_from:
            scan.in_flux += 1
        else:
            traceability.judged += 1
    return open_orders


def _find_untraceable(scan: TenantScan, store: Store, tenant: str, oci: OciSettings, first_bad: int | None,
                      bad: set[int]) -> None:
    """Per order, in the buckets whose sums differ: the orders the trail does not rebuild."""
    trail: dict[bytes, int] = {}
    _digest_audit(store, tenant, first_bad, None, bad, trail)
    window_from = scan.started_ms - oci.window_s * 1000 if oci.window_s else None
    flux_from = scan.started_ms - FLUX_MARGIN_MS
    tally = scan.parts["traceability"]
    for key, value in raw_orders(store, tenant):
        if _bucket(key) not in bad:
            continue
        order = orjson.loads(value)
        updated = order.get("updated_at_ms") or 0
        if updated >= flux_from or (window_from is not None and updated < window_from):
            continue
        if order_digest(order) != trail.get(key, 0):
            detail: dict[str, Any] = {"reason": "the audit trail does not rebuild the order's fields",
                                      "reason_zh": "审计记录无法还原订单当前字段（有字段变更缺少审计记录）"}
            if first_bad is not None:
                detail["chain_broken_at_seq"] = first_bad
            tally.add(order["order_id"], detail, oci.drilldown_max)


def _repeat_orders(store: Store, tenant: str, open_orders: list[dict[str, Any]], within_s: float) -> list[Anomaly]:
    """Open orders whose buyer placed another (not withdrawn) order within ``within_s`` before."""
    found = []
    within_ms = int(within_s * 1000)
    withdrawn = {Status.REFUND_INITIATED, Status.REFUNDED, Status.CANCELLED}
    for order in open_orders:
        created = order.get("created_at_ms") or 0
        for at_ms, other_id in store.orders_for_buyer(tenant, order["buyer_key"], max(0, created - within_ms)):
            if other_id == order["order_id"] or at_ms > created or (at_ms == created and other_id > order["order_id"]):
                continue
            other = store.get_order(tenant, other_id)
            if other is None or other.status in withdrawn:
                continue
            same_group = bool(order.get("pack_group")) and order.get("pack_group") == (other.pack_group or other_id)
            found.append(build.repeat_order(tenant, order, other_id, at_ms, same_group))
            break
    return found


__all__ = ["BUCKETS", "FLUX_MARGIN_MS", "PartTally", "TenantScan", "raw_orders", "scan_tenant"]
