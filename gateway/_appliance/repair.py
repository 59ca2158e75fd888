"""``gateway store repair`` and ``gateway store verify``: a damaged store, and how much of it is left.

Repair (gateway stopped):

1. the store is **copied** aside as it is, to ``<data>/store.before-repair-<time>`` (kept:
   the evidence, and a second chance with better tools);
2. what the damaged store held is read from the copy where RocksDB still can (read-only:
   per tenant the last event and audit seqs; ``unknown`` where it cannot);
3. RocksDB's repair (``Rdict.repair``) rebuilds the database from every table and log file
   it can read: a table file with a damaged block is set aside **whole** in ``<store>/lost/``
   (RocksDB cannot salvage part of one), a damaged log is read up to the damage;
4. the repaired store is opened (accepting what is gone, so the durable mark starts again),
   every tenant's audit chain is verified, and the report says per tenant what is left,
   what was there before, and the first bad seq of a broken chain.

Verify (gateway stopped): the open-time checks, every block of every table read with its
checksum, and every tenant's whole audit chain.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from typing import Any

from rocksdict import Options, Rdict

from gateway._errors import GatewayError, StoreError
from gateway._settings import Settings
from gateway._store import StoreSettings, open_store, store_settings
from gateway._store.backup import open_read_only, summary
from gateway._store.check import verify_files
from gateway._store.mark import read_mark

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


def refuse_if_running(settings: Settings) -> None:
    from gateway._appliance.backup import gateway_running

    running = gateway_running(settings)
    if running:
        raise GatewayError(f"the gateway is running ({running}): stop it first (systemctl stop edge-gateway). "
                           "网关正在运行：请先停止网关。")


def _figures_before(path: Any) -> dict[str, Any] | None:
    try:
        with open_read_only(path) as store:
            return summary(store)
    except StoreError as exc:
        log.info("the damaged store cannot be read for the report: %s", exc)
        return None


def repair_store(settings: Settings, progress: Progress) -> dict[str, Any]:
    """Repair the store of ``settings`` (see the module docstring).

    Returns:
        ``{"store", "copied_to", "lost_files", "writes_lost", "tenants": {tenant: {...}}}``;
        each tenant has ``events``, ``audit_records``, ``chain_ok``, ``first_bad_seq``,
        ``reason`` and, when the damaged store could be read, ``events_before`` and
        ``audit_records_before``.

    Raises:
        GatewayError: the gateway runs, there is no store, or RocksDB cannot repair it.
    """
    refuse_if_running(settings)
    path = store_settings(settings).path
    if not (path / "CURRENT").exists() and not any(path.glob("*.sst")):
        raise GatewayError(f"there is no store at {path} to repair")
    aside = settings.data_path / f"store.before-repair-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    progress(f"copying the damaged store to {aside} (kept)")
    shutil.copytree(path, aside)
    before = _figures_before(aside)
    mark = read_mark(path)
    lost_before = set((path / "lost").glob("*")) if (path / "lost").exists() else set()
    progress(f"repairing {path} (RocksDB repair: reads every table and log file)")
    try:
        Rdict.repair(str(path), Options(raw_mode=True))
    except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
        raise GatewayError(f"RocksDB cannot repair {path}: {exc}; the damaged store is kept in {aside}: restore "
                           "the last backup (`gateway restore`)") from exc
    lost_files = sorted(p.name for p in set((path / "lost").glob("*")) - lost_before) if (path / "lost").exists() else []
    report: dict[str, Any] = {"store": str(path), "copied_to": str(aside), "lost_files": lost_files, "tenants": {}}
    with open_store(StoreSettings(path=path), accept_damage=True) as store:
        latest = store._guard(store._live_db().latest_sequence_number)
        report["writes_lost"] = max(0, mark - latest) if mark is not None else None
        after = summary(store)
        tenants = sorted(set(after["tenants"]) | set((before or {}).get("tenants", {})))
        for tenant in tenants:
            progress(f"verifying the audit chain of tenant {tenant}")
            result = store.verify_audit_chain(tenant)
            now = after["tenants"].get(tenant, {"last_event_seq": 0, "last_audit_seq": 0})
            entry: dict[str, Any] = {"events": now["last_event_seq"], "audit_records": result.records,
                                     "chain_ok": result.ok, "first_bad_seq": result.first_bad_seq,
                                     "reason": result.reason}
            if before is not None:
                was = before["tenants"].get(tenant, {"last_event_seq": 0, "last_audit_seq": 0})
                entry["events_before"], entry["audit_records_before"] = was["last_event_seq"], was["last_audit_seq"]
            report["tenants"][tenant] = entry
    return report


def verify_store(settings: Settings, progress: Progress) -> list[str]:
    """Every check there is on the stopped store; the problems found (empty: sound)."""
    refuse_if_running(settings)
    problems: list[str] = []
    try:
        with open_store(store_settings(settings)) as store:
            progress("reading every block of every table with its checksum")
            problems += [str(p) for p in verify_files(store)]
            for tenant in sorted(store._audit_seq):
                progress(f"verifying the audit chain of tenant {tenant}")
                result = store.verify_audit_chain(tenant)
                if not result.ok:
                    problems.append(f"tenant {tenant}: audit chain broken at seq {result.first_bad_seq}: "
                                    f"{result.reason}")
    except StoreError as exc:
        problems.append(str(exc))
    return problems


__all__ = ["refuse_if_running", "repair_store", "verify_store"]
