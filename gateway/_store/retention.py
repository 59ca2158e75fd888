"""Retention: delete what is older than ``[store] retention_days`` and finished; never the rest.

A tenant's **order is deleted** when all of these hold:

* its status is final: ``DELIVERED``, ``REFUNDED`` or ``CANCELLED`` (``FINAL``);
* it last changed (``updated_at_ms``) before the cutoff (now minus ``retention_days``);
* it did not change between the decision and the delete (checked under the store's write
  lock: an event that arrives meanwhile keeps it).

With it go everything that is only about it: the event-log records of its events (the raw
inputs) and their de-duplication entries, its buyer-index entries (the buyer key and every
alias its events named), its waybill-index entries, its audit-index entries, and its pack-line
records: parcel, plan and hold (of the group it heads), intercept, evidence records and the
snapshot files they name, the packing session, its print jobs and pending evidence.

**Never deleted**, whatever their age:

* orders that are not final: an open refund or dispute (``REFUND_INITIATED``), an order on
  hold, one still waiting to be packed or shipped or in transit (the anomaly board lists
  those stuck; resolve them there). The report counts them per status;
* quarantined events still waiting, dead letters and the outbox (they are undelivered work);
* the gateway's own audit chain (``_gateway``: token changes, acknowledgements, backups);
* the product catalog, stock and stations' records;
* the newest event-log record of a tenant (its seq is the counter new events continue from).

**The audit chain** is tamper-evident (``gateway._store.base``). Retention deletes the records of a
tenant's chain from its start up to the cutoff (the first record newer than it), except the
records of orders it keeps (an open dispute's whole history stays). The chain's start moves to
the cutoff: the **floor**. Each pruning appends a ``retention`` audit record to the tenant's chain
saying where the linked chain now starts and which records were kept before it (their count and
a digest of their seqs and hashes), and the store's anchor (``meta`` ``T 0 audit_floor``,
``AuditAnchor``) repeats it and points at that record. ``verify_audit_chain`` checks every kept
record's own hash and the set against the digest, links the chain from the floor, and checks the
anchor against its record: a kept record changed or removed, or a start moved to hide records,
is detected.

De-duplication: once an event's entry is deleted, a platform re-sending that very event (more
than ``retention_days`` later) would be taken as new. Platforms do not re-send that late.

Work is done in batches of ``BATCH_ORDERS`` orders and ``BATCH_AUDIT`` audit records, each one
commit; the daemon runs it daily in a worker thread (``gateway._daemon``), so the pack line
never waits long behind it.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway._model import Status
from gateway._store.base import _be64, _be64x2, _read64, _upper, record_prefix
from gateway._store.store import Store
from gateway._store.values import StepWrite

log = logging.getLogger(__name__)

FINAL = frozenset({Status.DELIVERED.value, Status.REFUNDED.value, Status.CANCELLED.value})
BATCH_ORDERS = 500
BATCH_AUDIT = 20_000
_TOKEN = b'"#bk:'
Progress = Callable[[str, int], None]


@dataclass
class RetentionReport:
    """What one tenant's pass deleted (or would: ``dry_run``) and what it kept."""

    tenant: str
    cutoff_ms: int
    dry_run: bool
    now_ms: int = 0
    orders_deleted: int = 0
    events_deleted: int = 0
    records_deleted: int = 0
    files_deleted: int = 0
    audit_deleted: int = 0
    audit_floor: int = 1
    audit_kept: int = 0
    audit_stopped_by: str = ""
    kept_old: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "cutoff_ms": self.cutoff_ms, "dry_run": self.dry_run,
                "orders_deleted": self.orders_deleted, "events_deleted": self.events_deleted,
                "records_deleted": self.records_deleted, "files_deleted": self.files_deleted,
                "audit_deleted": self.audit_deleted, "audit_floor": self.audit_floor,
                "audit_kept": self.audit_kept, "audit_stopped_by": self.audit_stopped_by, "kept_old": dict(sorted(self.kept_old.items()))}


def prune_tenant(store: Store, tenant: str, cutoff_ms: int, now_ms: int, *, dry_run: bool = False,
                 progress: Progress | None = None) -> RetentionReport:
    """Apply retention to ``tenant``: orders first, then the audit chain's start."""
    report = RetentionReport(tenant, cutoff_ms, dry_run, now_ms=now_ms)
    deleted: set[str] = set()
    batch: list[dict[str, Any]] = []
    scanned = 0
    for _, value in store.iter_raw_orders(tenant):
        scanned += 1
        if progress is not None and scanned % 10_000 == 0:
            progress("orders", scanned)
        order = orjson.loads(value)
        if order["updated_at_ms"] >= cutoff_ms:
            continue
        if order["status"] not in FINAL:
            report.kept_old[order["status"]] += 1
            continue
        batch.append(order)
        if len(batch) >= BATCH_ORDERS:
            _delete_orders(store, tenant, batch, report, deleted)
            batch = []
    if batch:
        _delete_orders(store, tenant, batch, report, deleted)
    _prune_audit(store, tenant, cutoff_ms, report, deleted, progress)
    return report


def _delete_orders(store: Store, tenant: str, orders: list[dict[str, Any]], report: RetentionReport,
                   deleted: set[str]) -> None:
    """Delete ``orders`` and what belongs to them in one commit (unless one changed meanwhile)."""
    write = StepWrite()
    files: list[Path] = []
    events = 0
    for order in orders:
        events += _order_deletes(store, tenant, order, write, files)
    stamps = {order["order_id"]: order["updated_at_ms"] for order in orders}

    def unchanged() -> bool:
        for order_id, updated in stamps.items():
            now = store.get_order(tenant, order_id)
            if now is None or now.updated_at_ms != updated:
                return False
        return True

    if not report.dry_run:
        if store.commit_if(write, unchanged) is None:
            log.info("retention: an order of %s changed while being deleted; it is kept until the next run",
                     tenant)
            return
        for path in files:
            try:
                path.unlink()
                report.files_deleted += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("retention: could not delete %s (%s); delete it by hand", path, exc)
    else:
        report.files_deleted += len(files)
    deleted.update(stamps)
    report.orders_deleted += len(orders)
    report.events_deleted += events
    report.records_deleted += sum(1 for name, _, _ in write.raw if name == "packline")


def _order_deletes(store: Store, tenant: str, order: dict[str, Any], write: StepWrite, files: list[Path]) -> int:
    """Add the deletes of one order and its records to ``write``; returns its events deleted."""
    prefix = tenant.encode() + b"\0"
    order_id: str = order["order_id"]
    oid = order_id.encode()
    raw = write.raw
    raw.append(("orders", prefix + oid, None))
    newest_event = store._event_seq.get(tenant, 0)
    buyer_keys = {order["buyer_key"]} if order.get("buyer_key") else set()
    events = 0
    start = prefix + oid + b"\0"
    for key, _ in store._scan("idx_audit", start, _upper(start)):
        raw.append(("idx_audit", key, None))
        value = store._get("audit", prefix + key[-8:])
        event_id = orjson.loads(value).get("event_id", "") if value is not None else ""
        if len(event_id) != 16:
            continue
        dedup_key = prefix + _be64(int(event_id, 16))
        event_seq = store._get("dedup", dedup_key)
        if event_seq is None or _read64(event_seq)[0] == newest_event:
            continue
        event_key = prefix + event_seq
        stored = store._get("events", event_key)
        if stored is not None:
            buyer_keys.update(_alias_keys(stored))
            raw.append(("events", event_key, None))
            events += 1
        raw.append(("dedup", dedup_key, None))
    created = order.get("created_at_ms", 0)
    for buyer_key in buyer_keys:
        raw.append(("idx_buyer", prefix + _be64x2(buyer_key, max(0, created)) + oid, None))
    waybills = {order.get("waybill") or ""}
    parcel = store.get_record(tenant, "parcel", order_id)
    if parcel is not None:
        waybills.add(parcel.get("waybill") or "")
    for waybill in waybills - {""}:
        if store._get("idx_waybill", prefix + waybill.encode()) == oid:
            raw.append(("idx_waybill", prefix + waybill.encode(), None))
    for kind in ("parcel", "intercept", *(("plan", "hold") if order.get("pack_group", "") in ("", order_id) else ())):
        if store.get_record(tenant, kind, order_id) is not None:
            raw.append(("packline", record_prefix(kind, tenant) + oid, None))
    sessions = {parcel["session_id"]} if parcel and parcel.get("session_id") else set()
    for _, record_id, evidence in store.iter_records("evidence", tenant, id_prefix=order_id + "|"):
        raw.append(("packline", record_prefix("evidence", tenant) + record_id.encode(), None))
        snapshot = evidence.get("snapshot") or {}
        if snapshot.get("path"):
            files.append(Path(snapshot["path"]))
        sessions.add(record_id.split("|", 1)[1])
    for session_id in sessions:
        for kind in ("session", "evidence_pending"):
            if store.get_record(tenant, kind, session_id) is not None:
                raw.append(("packline", record_prefix(kind, tenant) + session_id.encode(), None))
        steps = record_prefix("session_step", tenant) + session_id.encode() + b"/"  # gateway._packline.session_records
        write.raw_ranges.append(("packline", steps, steps[:-1] + b"0"))
        for _, job_id, _ in store.iter_records("print", tenant, id_prefix=session_id + "/"):
            raw.append(("packline", record_prefix("print", tenant) + job_id.encode(), None))
    return events


def _alias_keys(stored: bytes) -> Iterator[int]:
    """The buyer keys an event-log record names as key tokens (``"#bk:" + 16 hex``)."""
    at = stored.find(_TOKEN)
    while at >= 0:
        token = stored[at + 5:at + 21]
        if len(token) == 16 and stored[at + 21:at + 22] == b'"':
            try:
                yield int(token, 16)
            except ValueError:
                pass
        at = stored.find(_TOKEN, at + 21)


def _prune_audit(store: Store, tenant: str, cutoff_ms: int, report: RetentionReport, deleted: set[str],
                 progress: Progress | None) -> None:
    """Delete the audit records before the cutoff but those of kept orders (module docstring)."""
    prefix = tenant.encode() + b"\0"
    anchor = store.audit_anchor(tenant)
    floor, prev = anchor.floor, anchor.prev
    last = store._audit_seq.get(tenant, 0)
    gone: dict[str, bool] = {}

    def is_gone(order_id: str) -> bool:
        if order_id not in gone:
            if len(gone) > 100_000:  # an order's records lie within days of each other
                gone.clear()
            gone[order_id] = order_id in deleted or store.get_order(tenant, order_id) is None
        return gone[order_id]

    kept: list[tuple[int, bytes]] = []
    drops: list[int] = []  # kept by an earlier pass, their order deleted since
    for key, value in store._scan("audit", prefix, prefix + _be64(floor)):  # range deletes: skipped fast
        seq = _read64(key, len(prefix))[0]
        if is_gone(orjson.loads(value).get("order_id") or ""):
            drops.append(seq)
        else:
            kept.append((seq, value[-66:-2]))
    ranges: list[tuple[int, int]] = []
    run, walked, stopped_by = floor, 0, ""
    for key, value in store._scan("audit", prefix + _be64(floor), _upper(prefix)):
        seq = _read64(key, len(prefix))[0]
        record = orjson.loads(value)
        if seq >= last or record.get("at_ms", 0) >= cutoff_ms:
            stopped_by = "the newest record" if seq >= last else "newer than the cutoff"
            break
        order_id = record.get("order_id") or ""
        if order_id and not is_gone(order_id):  # an order that stays keeps its records
            kept.append((seq, value[-66:-2]))
            if seq > run:
                ranges.append((run, seq))
            run = seq + 1
        floor, prev, walked = seq + 1, value[-66:-2].decode(), walked + 1
        if walked % BATCH_AUDIT == 0:
            _commit_floor(store, tenant, [*ranges, (run, floor)], drops, floor, prev, kept, report)
            ranges, run, drops = [], floor, []
            if progress is not None:
                progress("audit", walked)
    if drops or (floor > anchor.floor and (ranges or floor > run)):
        _commit_floor(store, tenant, [*ranges, (run, floor)], drops, floor, prev, kept, report)
    report.audit_floor = floor
    report.audit_kept = len(kept)
    report.audit_stopped_by = stopped_by


def _commit_floor(store: Store, tenant: str, ranges: list[tuple[int, int]], drops: list[int], floor: int, prev: str,
                  kept: list[tuple[int, bytes]], report: RetentionReport) -> None:
    """Delete the audit records in ``ranges`` (``[start, end)``) and ``drops``, and record the
    chain's new start and the records kept before it in the chain itself (``AuditAnchor``)."""
    ranges = [(start, end) for start, end in ranges if end > start]
    report.audit_deleted += sum(end - start for start, end in ranges) + len(drops)
    if report.dry_run:
        return
    prefix = tenant.encode() + b"\0"
    digest = hashlib.sha256(b"".join(b"%d:%s\n" % (seq, digest) for seq, digest in kept)).hexdigest()
    write = StepWrite(audit=[{
        "tenant": tenant, "order_id": "", "event_id": "", "rule": "", "source": "gateway", "actor": "retention",
        "decision": "retention", "changes": [], "at_ms": report.now_ms,
        "note": f"retention: audit records before {floor} deleted but {len(kept)} of orders kept",
        "data": {"floor": floor, "kept": len(kept), "kept_digest": digest, "cutoff_ms": report.cutoff_ms,
                 "orders_deleted": report.orders_deleted, "events_deleted": report.events_deleted}}],
        raw_ranges=[("audit", prefix + _be64(start), prefix + _be64(end)) for start, end in ranges],
        raw=[("audit", prefix + _be64(seq), None) for seq in drops],
        audit_floor=[(tenant, floor, prev, len(kept), digest)])
    store.commit(write)


__all__ = ["BATCH_AUDIT", "BATCH_ORDERS", "FINAL", "RetentionReport", "prune_tenant"]
