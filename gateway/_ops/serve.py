"""The operators' view kept current: ``OpsState`` (last report per tenant) and ``serve_ops``.

A *report* is one computation for one tenant: the OCI (``gateway._ops.oci``), the anomaly
board (``gateway._ops.board``) and each part's drill-down. Computing it reads the whole
tenant (``gateway._ops.scan``), so it runs in a worker thread, one at a time
(``OpsState.limiter``), and the API serves the last one:

* ``serve_ops(state)`` recomputes every tenant that has orders every ``[oci] interval_s``;
  after each computation the hour's trend record is written (``state.commit``) and the
  gauges set (``OpsMetrics``);
* without it (or before its first round), the first request for a tenant computes its
  report; a report older than ``interval_s`` is recomputed at the next request while
  ``serve_ops`` is not running.

**Cost.** Each round reads every tenant's orders once, its audit chain twice (the chain's
verification, then the digests) and its pack-line, quarantine and dead-letter records once;
``measure_oci`` gives the figure per 100,000 orders (the report gives the measured one). The
event loop is not blocked: the scan runs in a thread and the store reads in chunks.

Cancellation: cancelling ``serve_ops`` abandons the round in progress (the worker thread
finishes its scan in the background; nothing is written for it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from gateway._errors import BackpressureError, StoreError
from gateway._ops.anomalies import Anomaly
from gateway._ops.board import ack_write, read_acks, record_anomalies, sort_board
from gateway._ops.metrics import OpsMetrics
from gateway._ops.oci import OciResult, oci_of, trend_ids, trend_write
from gateway._ops.scan import scan_tenant
from gateway._ops.settings import PARTS, BoardSettings, OciSettings
from gateway._rules import RuleSet
from gateway._store import StepWrite, Store

log = logging.getLogger(__name__)

Commit = Callable[[StepWrite], Awaitable[object]]


@dataclass(frozen=True)
class TenantReport:
    """One computation for one tenant.

    Attributes:
        oci: the index.
        board: the anomalies, oldest first (``Anomaly.sort_key``).
        by_id: the same, by id.
        drilldown: per part, ``(order_id, detail)`` of the orders pulling it down (at most
            ``drilldown_max``), sorted by order id.
        cost_s: wall-clock seconds of the computation.
    """

    tenant: str
    oci: OciResult
    board: list[Anomaly]
    by_id: Mapping[str, Anomaly]
    drilldown: Mapping[str, list[tuple[str, dict[str, Any]]]]
    cost_s: float

    @property
    def computed_at_ms(self) -> int:
        return self.oci.computed_at_ms


def compute_report(store: Store, rules: RuleSet, tenant: str, oci: OciSettings, board: BoardSettings,
                   now_ms: int) -> TenantReport:
    """Compute a tenant's report (OCI, board, drill-downs). Blocking: call it in a thread.

    Raises:
        StoreError: the store failed or was closed.
    """
    started = time.perf_counter()
    scan = scan_tenant(store, rules, tenant, oci, board, now_ms)
    listed = sort_board([*scan.anomalies, *record_anomalies(store, tenant, board, now_ms)])
    drilldown = {part: sorted(scan.parts[part].examples, key=lambda item: item[0]) for part in PARTS}
    return TenantReport(tenant, oci_of(scan, oci), listed, {a.anomaly_id: a for a in listed}, drilldown,
                        time.perf_counter() - started)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class OpsState:
    """The last report of each tenant, computed on demand or by ``serve_ops``.

    Args:
        store: the open store.
        rules: the live rules (``lambda: holder.current``): consistency maps each system's
            last raw status through them.
        oci: ``[oci]``.
        board: the board's thresholds (``waybill_timeout_s`` from ``[packline]``).
        commit: how records are written (``lambda w: pipeline.submit([], "webhook", extra=w)``
            in the daemon, so every write goes through the one committer); default
            ``Store.commit`` in a thread.
        metrics: gauges to set after each computation (optional).
        clock: epoch ms (tests pass a fixed clock).
    """

    def __init__(self, store: Store, rules: Callable[[], RuleSet], oci: OciSettings | None = None,
                 board: BoardSettings | None = None, *, commit: Commit | None = None,
                 metrics: OpsMetrics | None = None, clock: Callable[[], int] = _now_ms) -> None:
        self.store = store
        self.rules = rules
        self.oci = oci or OciSettings()
        self.board = board or BoardSettings()
        self.commit: Commit = commit or self._commit_to_store
        self.metrics = metrics
        self.clock = clock
        self.reports: dict[str, TenantReport] = {}
        self.serving = False
        self.limiter = trio.CapacityLimiter(1)  # one scan at a time: it is the store's heaviest reader
        self._locks: dict[str, trio.Lock] = {}

    def __repr__(self) -> str:
        return f"<OpsState tenants={sorted(self.reports)} serving={self.serving}>"

    async def _commit_to_store(self, write: StepWrite) -> object:
        return await trio.to_thread.run_sync(self.store.commit, write)

    async def report(self, tenant: str) -> TenantReport:
        """The tenant's last report; computed now when there is none (or, while ``serve_ops``
        is not running, when it is older than ``interval_s``)."""
        known = self.reports.get(tenant)
        if known is not None and (self.serving or self.clock() - known.computed_at_ms < self.oci.interval_s * 1000):
            return known
        lock = self._locks.setdefault(tenant, trio.Lock())
        if lock.locked():  # a computation is under way (serve_ops's first round): its result is the answer
            async with lock:
                pass
            known = self.reports.get(tenant)
            if known is not None:
                return known
        return await self.refresh(tenant)

    async def refresh(self, tenant: str) -> TenantReport:
        """Compute the tenant's report now, keep it, write its trend point and set the gauges.

        Raises:
            StoreError: the store failed; the previous report stays.
        """
        lock = self._locks.setdefault(tenant, trio.Lock())
        async with lock:
            report = await trio.to_thread.run_sync(
                compute_report, self.store, self.rules(), tenant, self.oci, self.board, self.clock(),
                limiter=self.limiter)
            if not report.oci.orders:  # a tenant without orders (or a name a client made up): nothing to keep
                return report
            ids = await trio.to_thread.run_sync(trend_ids, self.store, tenant)
            await self.commit(trend_write(report.oci, self.oci, ids))
            if self.metrics is not None:
                acks = await trio.to_thread.run_sync(read_acks, self.store, tenant)
                self.metrics.observe(report.oci, report.board, acks, report.cost_s)
            self.reports[tenant] = report  # served only once its trend point is stored and its gauges set
            return report

    async def acknowledge(self, tenant: str, anomaly_id: str, by: str) -> tuple[Anomaly, dict[str, Any]] | None:
        """Record that ``by`` acknowledged ``anomaly_id`` now (durable on return).

        Returns:
            The anomaly and its ack record, or ``None`` when the board has no such anomaly.

        Raises:
            BackpressureError / StoreError: from ``commit``; nothing was recorded.
        """
        anomaly = (await self.report(tenant)).by_id.get(anomaly_id)
        if anomaly is None:
            return None
        write = ack_write(anomaly, by, self.clock())
        await self.commit(write)
        return anomaly, write.records[0][3] or {}


async def serve_ops(state: OpsState, *, task_status: trio.TaskStatus[OpsState] = trio.TASK_STATUS_IGNORED) -> None:
    """Recompute every tenant's report every ``[oci] interval_s`` until cancelled.

    Reports readiness with ``state`` at once (the first round starts then). A store error
    or a full queue skips the tenant for this round (logged); the next round tries again.
    """
    state.serving = True
    task_status.started(state)
    try:
        while True:
            started = time.monotonic()
            for tenant in await trio.to_thread.run_sync(state.store.tenants):
                try:
                    report = await state.refresh(tenant)
                except (StoreError, BackpressureError) as exc:
                    log.warning("ops: tenant %s not recomputed this round: %s", tenant, exc)
                    continue
                log.debug("ops: tenant %s: OCI %s, %d anomalies, %.2f s", tenant, report.oci.score,
                          len(report.board), report.cost_s)
            await trio.sleep(max(1.0, state.oci.interval_s - (time.monotonic() - started)))
    finally:
        state.serving = False


__all__ = ["OpsState", "TenantReport", "compute_report", "serve_ops"]
