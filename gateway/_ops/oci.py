"""The Order Credibility Index: its formula, its hourly trend in the store, and its cost.

**Formula.** Three parts, each the share of the tenant's judged orders (all orders, or those
updated within ``[oci] window_s``) that do not pull it down (``gateway._ops.judge`` defines
each judgment, ``gateway._ops.scan`` counts them)::

    freshness     = fresh orders / orders with a source time
                    fresh: updated_at_ms - last_occurred_at_ms <= freshness_s (90 s)
    consistency   = orders whose systems agree / orders
    traceability  = orders the audit trail rebuilds / orders not written during the scan
                    (the per-order digest of the recorded changes equals the stored fields',
                    counting only records before a broken link of the verified chain)
    score         = sum(w_p * part_p) / sum(w_p)   over the parts with a value and w_p > 0

A part with nothing to judge is ``null`` and leaves the score; with no part at all the score
is ``null``. Weights are ``[oci] weight_freshness / weight_consistency /
weight_traceability`` (1, 1, 1: the plain mean).

**Trend.** After each computation the tenant's record of the current hour (kind
``oci_hourly``, id the hour's start in epoch ms, 13 digits so ids sort by time) is written
again: an hour's point is the last computation within it. Records older than
``trend_keep_hours`` are deleted in the same batch.

**Cost.** ``measure_oci(store, tenant)`` runs one computation and returns the seconds of each
pass and the figure per 100,000 orders (the benchmark calls it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway._ops.scan import TenantScan, scan_tenant
from gateway._ops.settings import PARTS, BoardSettings, OciSettings
from gateway._rules import RuleSet, load_rules
from gateway._settings import default_config_path
from gateway._store import StepWrite, Store

TREND_KIND = "oci_hourly"
HOUR_MS = 3_600_000
FORMULA = ("score = (w_f*freshness + w_c*consistency + w_t*traceability) / (w_f + w_c + w_t), over the parts "
           "with a value; freshness = share of orders updated within freshness_s of their newest source time; "
           "consistency = share of orders whose systems' statuses agree; traceability = share of orders whose "
           "recorded field changes rebuild the stored order, on a verified audit chain")


@dataclass(frozen=True)
class OciResult:
    """One computation of the index for one tenant.

    Attributes:
        parts: ``{part: share or None}`` in ``PARTS`` order.
        score: the weighted mean (``None`` when no part has a value).
        judged / offenders: per part, orders judged and orders pulling it down.
        orders / in_window / in_flux: orders read, judged, left out of traceability because
            they were written during the scan.
        chain_ok / chain_first_bad_seq: the tenant's audit-chain verification.
        cost_s: seconds per pass (``verify_chain``, ``audit_pass``, ``orders_pass``...).
    """

    tenant: str
    computed_at_ms: int
    parts: Mapping[str, float | None]
    score: float | None
    judged: Mapping[str, int]
    offenders: Mapping[str, int]
    orders: int
    in_window: int
    in_flux: int
    chain_ok: bool
    chain_first_bad_seq: int | None
    cost_s: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"computed_at_ms": self.computed_at_ms, "score": _round(self.score),
                **{part: _round(self.parts[part]) for part in PARTS},
                "judged": dict(self.judged), "offenders": dict(self.offenders), "orders": self.orders,
                "in_window": self.in_window, "in_flux": self.in_flux,
                "audit_chain": {"ok": self.chain_ok, "first_bad_seq": self.chain_first_bad_seq},
                "cost_s": {k: round(v, 4) for k, v in self.cost_s.items()}}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def combined_score(parts: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """The weighted mean of the parts that have a value and a weight above 0."""
    used = [(weights[p], value) for p, value in parts.items() if value is not None and weights.get(p, 0) > 0]
    total = sum(weight for weight, _ in used)
    return sum(weight * value for weight, value in used) / total if total else None


def oci_of(scan: TenantScan, settings: OciSettings) -> OciResult:
    """The index from one scan's tallies. Pure."""
    parts = {part: scan.parts[part].value for part in PARTS}
    chain = scan.chain
    return OciResult(scan.tenant, scan.started_ms, parts, combined_score(parts, settings.weights),
                     {p: scan.parts[p].judged for p in PARTS}, {p: scan.parts[p].offenders for p in PARTS},
                     scan.orders, scan.in_window, scan.in_flux, chain.ok if chain else True,
                     chain.first_bad_seq if chain else None, dict(scan.timings_s))


def hour_of(ms: int) -> int:
    """The start of the hour (UTC) holding ``ms``."""
    return ms - ms % HOUR_MS


def trend_write(result: OciResult, settings: OciSettings, existing_ids: Iterable[str]) -> StepWrite:
    """The current hour's trend record, and deletions of records past ``trend_keep_hours``. Pure.

    Args:
        result: the computation.
        settings: ``[oci]``.
        existing_ids: the tenant's ``oci_hourly`` record ids (``trend_ids``).
    """
    hour = hour_of(result.computed_at_ms)
    oldest = hour - settings.trend_keep_hours * HOUR_MS
    value = {"hour_ms": hour, "computed_at_ms": result.computed_at_ms, "score": _round(result.score),
             **{part: _round(result.parts[part]) for part in PARTS}, "orders": result.orders,
             "offenders": dict(result.offenders)}
    write = StepWrite(records=[(result.tenant, TREND_KIND, f"{hour:013d}", value)])
    for record_id in existing_ids:
        if record_id.isdigit() and int(record_id) < oldest:
            write.records.append((result.tenant, TREND_KIND, record_id, None))
    return write


def trend_ids(store: Store, tenant: str) -> list[str]:
    """The ids of a tenant's trend records, oldest first. Blocking."""
    return [record_id for _, record_id, _ in store.iter_records(TREND_KIND, tenant)]


def read_trend(store: Store, tenant: str, hours: int, now_ms: int) -> list[dict[str, Any]]:
    """The tenant's hourly points of the last ``hours`` hours, oldest first. Blocking."""
    since = hour_of(now_ms) - (hours - 1) * HOUR_MS
    return [value for _, record_id, value in store.iter_records(TREND_KIND, tenant)
            if record_id.isdigit() and int(record_id) >= since]


def measure_oci(store: Store, tenant: str, rules: RuleSet | None = None,
                settings: OciSettings | None = None) -> dict[str, Any]:
    """Compute the index of ``tenant`` once and report what it cost. Blocking.

    Args:
        store: an open store.
        tenant: the tenant.
        rules: the mapping rules (default: the embedded default config's rules).
        settings: ``[oci]`` (default ``OciSettings()``).

    Returns:
        ``{"orders", "audit_records", "seconds", "seconds_per_100k_orders", "passes_s",
        "orders_per_s", "oci"}``.
    """
    rules = rules if rules is not None else load_rules(default_config_path().parent / "rules")
    settings = settings or OciSettings()
    started = time.perf_counter()
    scan = scan_tenant(store, rules, tenant, settings, BoardSettings(), time.time_ns() // 1_000_000)
    seconds = time.perf_counter() - started
    result = oci_of(scan, settings)
    return {"orders": scan.orders, "audit_records": scan.audit_records, "seconds": round(seconds, 4),
            "seconds_per_100k_orders": round(seconds * 100_000 / scan.orders, 4) if scan.orders else None,
            "orders_per_s": round(scan.orders / seconds) if seconds > 0 else None,
            "passes_s": {k: round(v, 4) for k, v in scan.timings_s.items()}, "oci": result.to_dict()}


__all__ = ["FORMULA", "HOUR_MS", "TREND_KIND", "OciResult", "combined_score", "hour_of", "measure_oci", "oci_of",
           "read_trend", "trend_ids", "trend_write"]
