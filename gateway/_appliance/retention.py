"""Retention on the box: daily in the running gateway, or by hand with ``gateway store retention``.

What is deleted and what never is: ``gateway._store.retention`` (finished orders unchanged for
``[store] retention_days``, with their events, indexes and pack-line records; never open
disputes, held or unshipped orders, the outbox, dead letters or waiting quarantine).

* **In the gateway** (``serve_retention``): the first pass 10 minutes after start, then every
  24 hours; each tenant in a worker thread, in batches (one commit each), so ingest and the
  pack line go on. Each pass is logged per tenant ("retention: tenant T: N orders, M events
  deleted; K old orders kept (not finished): ...") and its report kept as the pack-line record
  ``("", "retention", <tenant>)`` (``gateway doctor`` and the API read it).
* **By hand** (``retention_command``, gateway stopped): ``gateway store retention
  [--dry-run] [--days N]`` runs one pass now, or with ``--dry-run`` says what it would delete
  and what holds the audit chain's start, without writing.

``retention_days = 0`` turns it off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import trio

from gateway._settings import Settings
from gateway._store import StepWrite, Store, open_store, store_settings
from gateway._store.retention import RetentionReport, prune_tenant

log = logging.getLogger(__name__)

FIRST_PASS_AFTER_S = 600.0
EVERY_S = 86_400.0
DAY_MS = 86_400_000


def cutoff_ms(days: int, now_ms: int) -> int:
    """The retention cutoff: orders unchanged since before it may go."""
    return now_ms - days * DAY_MS


def run_pass(store: Store, days: int, *, dry_run: bool = False, now_ms: int | None = None,
             progress: Callable[[str], None] | None = None) -> list[RetentionReport]:
    """One retention pass over every tenant (blocking: call it in a worker thread)."""
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    reports = []
    for tenant in store.tenants():
        if tenant.startswith("_"):
            continue  # the gateway's own chain is never pruned
        if progress is not None:
            progress(f"tenant {tenant}: reading orders older than {days} days")

        def step(what: str, done: int, tenant: str = tenant) -> None:
            if progress is not None:
                progress(f"tenant {tenant}: {done:,} {what} read")

        report = prune_tenant(store, tenant, cutoff_ms(days, now), now, dry_run=dry_run, progress=step)
        reports.append(report)
        if not dry_run:
            store.commit(StepWrite(records=[("", "retention", tenant, {**report.to_dict(), "at_ms": now})]))
    return reports


def describe(report: RetentionReport) -> str:
    """One line for the log and the CLI."""
    verb = "would delete" if report.dry_run else "deleted"
    kept = ", ".join(f"{count} {status}" for status, count in sorted(report.kept_old.items())) or "none"
    held = f", {report.audit_kept:,} records of kept orders before it" if report.audit_kept else ""
    return (f"tenant {report.tenant}: {verb} {report.orders_deleted:,} orders, {report.events_deleted:,} events, "
            f"{report.records_deleted:,} pack-line records, {report.files_deleted:,} snapshot files, "
            f"{report.audit_deleted:,} audit records (the chain now starts at {report.audit_floor:,}{held}); "
            f"older orders kept because they are not finished: {kept}")


async def serve_retention(store: Store, days: int) -> None:
    """Run a pass ``FIRST_PASS_AFTER_S`` after start and every ``EVERY_S`` (module docstring)."""
    if days <= 0:
        log.info("retention: off ([store] retention_days = 0): nothing is ever deleted")
        return
    log.info("retention: finished orders unchanged for %d days are deleted daily (first pass in %.0f min)",
             days, FIRST_PASS_AFTER_S / 60)
    await trio.sleep(FIRST_PASS_AFTER_S)
    while True:
        try:
            reports = await trio.to_thread.run_sync(run_pass, store, days, abandon_on_cancel=True)
            for report in reports:
                log.info("retention: %s", describe(report))
        except Exception as exc:  # a failed pass (disk full, closed store) is retried the next day
            log.error("retention: the pass failed: %s; nothing half-deleted stays (each batch is one commit); "
                      "it runs again in 24 h, or run `gateway store retention` with the gateway stopped", exc)
        await trio.sleep(EVERY_S)


def retention_command(settings: Settings, *, dry_run: bool, days: int | None,
                      progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """``gateway store retention``: one pass now on the stopped gateway's store."""
    from gateway._appliance.repair import refuse_if_running

    refuse_if_running(settings)
    keep = settings.store.retention_days if days is None else days
    if keep <= 0:
        return []
    with open_store(store_settings(settings)) as store:
        reports = run_pass(store, keep, dry_run=dry_run, progress=progress)
    return [report.to_dict() | {"line": describe(report)} for report in reports]


__all__ = ["EVERY_S", "FIRST_PASS_AFTER_S", "cutoff_ms", "describe", "retention_command", "run_pass",
           "serve_retention"]
