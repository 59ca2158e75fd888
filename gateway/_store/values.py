"""The store's value types: settings, what a step writes, what a commit returns, outbox figures.

Plain data, shared by every part of ``gateway._store.store``; ``OutboxLedger`` keeps the outbox's
live count and bytes in memory (4 bytes per seq between the oldest live record and the newest).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway._model import OrderState
from gateway._settings import StoreSection


@dataclass(frozen=True, kw_only=True)
class StoreSettings(StoreSection):
    """How the store is opened: where (``path``, created if missing) and the ``[store]``
    settings (``StoreSection``: sync policy, caches, outbox bound), all by keyword."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.sync not in ("group", "os"):
            raise ValueError(f"sync must be 'group' or 'os', not {self.sync!r}")
        for name in ("cache_orders", "recent_fingerprints", "outbox_max_events", "outbox_max_bytes",
                     "outbox_reserve_events", "outbox_reserve_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass
class StepWrite:
    """Everything one processing step commits, in ONE WriteBatch.

    Audit records must not carry ``seq``/``prev``/``hash`` (the store sets them). Records
    are serialised as given; the store never mutates them.

    ``records`` are the pack line's own records (``packline`` keyspace): ``(tenant, kind,
    record_id, value)``; a value of ``None`` deletes the record. ``tenant`` ``""`` is for
    records of no tenant (a station's state).
    """

    orders: list[OrderState] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    buyer_index: list[tuple[str, int, int, str]] = field(default_factory=list)
    waybill_index: list[tuple[str, str, str]] = field(default_factory=list)
    quarantine_release: list[tuple[str, int]] = field(default_factory=list)
    records: list[tuple[str, str, str, dict[str, Any] | None]] = field(default_factory=list)
    raw: list[tuple[str, bytes, bytes | None]] = field(default_factory=list)
    """Raw puts and deletes ``(column family, full key, value or None to delete)``, written last:
    for maintenance (retention, ``gateway._store.retention``), never for the pipeline."""
    raw_ranges: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    """Range deletes ``(column family, first key, end key excluded)``, written last."""
    audit_floor: list[tuple[str, int, str, int, str]] = field(default_factory=list)
    """``(tenant, floor, prev, kept, kept_digest)``: the tenant's audit chain now starts at
    ``floor`` (``gateway._store.base.AuditAnchor``); the step must hold that tenant's ``retention``
    audit record."""

    def merge(self, other: StepWrite) -> None:
        """Append everything of ``other`` (written after this step's own records, in order)."""
        self.orders.extend(other.orders)
        self.events.extend(other.events)
        self.audit.extend(other.audit)
        self.outbox.extend(other.outbox)
        self.quarantine.extend(other.quarantine)
        self.buyer_index.extend(other.buyer_index)
        self.waybill_index.extend(other.waybill_index)
        self.quarantine_release.extend(other.quarantine_release)
        self.records.extend(other.records)
        self.raw.extend(other.raw)
        self.raw_ranges.extend(other.raw_ranges)
        self.audit_floor.extend(other.audit_floor)



@dataclass(frozen=True)
class CommitResult:
    """Seqs assigned by ``Store.commit``, parallel to the step's lists."""

    event_seqs: list[int]
    audit_seqs: list[int]
    outbox_seqs: list[int]
    quarantine_seqs: list[int]



@dataclass(frozen=True)
class AuditVerification:
    """Outcome of ``Store.verify_audit_chain``.

    Attributes:
        ok: every link verified and the chain reaches the last seq written.
        records: records verified before the first bad one (all of them when ``ok``).
        first_bad_seq: seq of the first bad or missing record, ``None`` when ``ok``.
        reason: what is wrong (``""`` when ``ok``).
    """

    ok: bool
    records: int
    first_bad_seq: int | None
    reason: str



@dataclass(frozen=True)
class OutboxStats:
    """Outbox backlog: live records, their value bytes and the oldest live seq."""

    count: int
    bytes: int
    oldest_seq: int | None



class OutboxLedger:
    """Value sizes of live outbox records, indexed by ``seq - base`` (0 = deleted)."""

    def __init__(self) -> None:
        self.sizes = array("I")
        self.base = 1
        self.head = 0  # index of the oldest possibly-live entry
        self.count = 0
        self.bytes = 0

    def add(self, first_seq: int, sizes: list[int]) -> None:
        if not self.count:
            self.sizes, self.base, self.head = array("I"), first_seq, 0
        gap = first_seq - self.base - len(self.sizes)
        if gap > 0:  # only at open, where deleted seqs leave holes
            self.sizes.frombytes(bytes(self.sizes.itemsize * gap))
        self.sizes.extend(sizes)
        self.count += len(sizes)
        self.bytes += sum(sizes)

    def remove(self, seqs: Iterable[int]) -> None:
        sizes, base = self.sizes, self.base
        for seq in seqs:
            index = seq - base
            if self.head <= index < len(sizes) and sizes[index]:
                self.bytes -= sizes[index]
                self.count -= 1
                sizes[index] = 0
        while self.head < len(sizes) and not sizes[self.head]:
            self.head += 1
        if self.head > 4096 and self.head * 2 > len(sizes):  # amortised compaction
            del sizes[: self.head]
            self.base += self.head
            self.head = 0

    def stats(self) -> OutboxStats:
        return OutboxStats(self.count, self.bytes, self.base + self.head if self.count else None)


__all__ = ["AuditVerification", "CommitResult", "OutboxLedger", "OutboxStats", "StepWrite", "StoreSettings"]
