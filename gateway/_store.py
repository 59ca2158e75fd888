"""The durable store: orders, event log, audit trail, outbox and indexes in RocksDB.

One RocksDB database (via ``rocksdict``, raw bytes mode) with one column family per
keyspace. Each processing step is committed as **one** ``WriteBatch`` (``Store.commit``),
so a step is either wholly present after a crash or wholly absent.

Key layout
----------
``T`` is the tenant name in ASCII (``[A-Za-z0-9_-]{1,64}``, so it never contains
``\\x00``), ``0`` the byte ``\\x00``, ``be64(n)`` an unsigned big-endian 8-byte integer
(so byte order is numeric order). Values are orjson bytes unless said otherwise::

    column family  key                                        value
    orders         T 0 order_id(utf-8)                        OrderState.to_dict()
    events         T 0 be64(event_seq)                        event record (caller's dict)
    audit          T 0 be64(audit_seq)                        record + "seq", "prev", "hash"
    outbox         be64(outbox_seq)                           outbox record (carries "tenant";
                                                              the store appends "queued_at_ms")
    quarantine     T 0 be64(q_seq)                            quarantine record
    dedup          T 0 be64(fingerprint)                      be64(event_seq)  (raw, not JSON)
    idx_buyer      T 0 be64(buyer_key) be64(time_ms) order_id  b""
    idx_waybill    T 0 waybill(utf-8)                         order_id (utf-8, raw)
    dead           be64(outbox_seq)                           {"outbox_seq", "event": outbox record,
                                                              "status", "response", "batch_id",
                                                              "at_ms"} (refused by the upstream)
    meta           b"format"                                  b"1" (refused if different)
                   b"outbox_floor"                            be64(highest outbox seq deleted)
                   b"buyer_index_newest"                      be64(newest time_ms in idx_buyer)
                   T 0 b"quarantine_floor"                    be64(highest q_seq released)

Sequence numbers start at 1 and are assigned by ``commit``: ``event_seq``, ``audit_seq`` and
``q_seq`` per tenant, ``outbox_seq`` globally (one FIFO, so the forwarder reads in commit
order). The seq of an event, outbox or quarantine record lives in its key only; the
iterators add it to the yielded dict (``"seq"``, ``"outbox_seq"``, ``"seq"``). An audit
record stores its seq in the value too, because the hash covers it.

Tenant isolation: every tenant-scoped key starts with ``T 0``; scans are bounded by
``[T 0, T 1)``, so tenant ``a`` never sees ``ab``.

Audit chain (tamper evidence, per tenant): ``prev`` is the previous record's ``hash`` (``""``
for the first); ``hash = sha256(prev + orjson.dumps(record without "hash",
OPT_SORT_KEYS)).hexdigest()``. The stored value is exactly those sorted bytes with
``,"hash":"<hex>"`` appended. ``verify_audit_chain`` recomputes every link.

Durability policy
-----------------
The WAL is never disabled. ``StoreSettings.sync``:

* ``"group"`` (default): every ``commit`` fsyncs the WAL before returning (``delete_outbox``
  does not: see its docstring).
  A returned ``commit`` survives power loss; acknowledge only after it returns. Group many
  events per step: the fsync is paid once per batch, not per event.

  The fsync is RocksDB's ``FlushWAL(sync=true)`` after an unsynced write of the batch, not
  a write with ``sync=true``: rocksdict holds the GIL through a synced write (~0.5 ms of
  fsync here, during which the event loop in the main thread stands still), while it lets
  the GIL go in ``flush_wal`` (measured: the main thread kept 44 % of its speed beside a
  thread doing synced writes, 94 % beside one doing write + ``flush_wal``). The durability
  is the same: ``commit`` returns after the fsync. The difference is visibility: between
  the write and the fsync other threads could read the batch. Nothing is acknowledged
  from that window (the committer answers after ``commit`` returns), counters and caches
  change only after the fsync, and ``read_outbox`` reads only up to the last seq
  published after its fsync, so the forwarder never sends a record a power cut could
  still take back.
* ``"os"``: the WAL is written to the OS before returning but fsync is left to the kernel.
  Survives a process crash (kill -9), not a power cut or kernel panic.

Recovery rules (``open_store``)
-------------------------------
* RocksDB replays the WAL in point-in-time mode: a batch is atomic; a torn batch at the
  tail (being written when the process or power died) is dropped with everything after it.
* Counters are not stored: each tenant's last ``event_seq``/``audit_seq``/``q_seq`` is the
  last key under ``T 0`` (one seek per tenant); the audit chain head is that record's
  ``hash``; ``outbox_seq`` is the last outbox key. Deleting from the outbox or releasing
  quarantine can remove the last key, so those paths also write a ``*_floor`` in ``meta``
  (in the same batch) and recovery takes the maximum: seqs are never reused.
* Outbox count and bytes, and the dead-letter count, come from one scan at open, then are
  kept in memory.
* A database of another ``format`` is refused. A held ``LOCK`` (another process, or a
  second open in this one) raises ``StoreError("store is locked ...")``.

Memory and threads
------------------
``commit``, ``delete_outbox`` and ``close`` are serialised by one lock (one writer at a time
is all RocksDB's WAL takes anyway); readers may run in other threads. The
order cache keeps ``cache_orders`` ``OrderState`` objects (the newest written or read);
recent fingerprints are kept in two generations of about ``recent_fingerprints / 2``; the
outbox ledger keeps 4 bytes per outbox seq between the oldest live record and the newest.
In-memory state changes only after a write succeeded. Iterators read in chunks and hold
no RocksDB object between chunks, so an abandoned iterator never keeps the database open.
RocksDB's own memory is bounded: a 64 MiB block cache shared by all column families (outbox
scans bypass it: each record is read once), and 128 MiB of memtables for all of them
together (the outbox's own at most 16 MiB), beyond which RocksDB flushes.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import re
import struct
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import orjson
from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    DBRecoveryMode,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from gateway._errors import StoreError
from gateway._model import OrderState

log = logging.getLogger(__name__)

FORMAT_VERSION = b"1"
COLUMN_FAMILIES = ("orders", "events", "audit", "outbox", "dead", "quarantine", "dedup",
                   "idx_buyer", "idx_waybill", "meta")
_POINT_LOOKUP = frozenset({"orders", "dedup", "idx_waybill", "meta"})  # get bloom filters
_READ_ONCE = frozenset({"outbox"})  # scans that must not evict the hot blocks
_BLOCK_CACHE_BYTES = 64 * 1024**2
_MEMTABLES_BYTES = 128 * 1024**2  # RocksDB flushes the largest memtable beyond this: RSS stays bounded
_OUTBOX_MEMTABLE_BYTES = 16 * 1024**2  # outbox records and their delete markers live briefly
_TENANT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_be64 = struct.Struct(">Q").pack
_be64x2 = struct.Struct(">QQ").pack
_read64 = struct.Struct(">Q").unpack_from
_SORTED = orjson.OPT_SORT_KEYS
_HASH_MARK = b',"hash":"'
_CHUNK = 512
_OUTBOX_FLOOR = b"outbox_floor"
_BUYER_NEWEST = b"buyer_index_newest"
_BUYER_GENERATION = 100_000  # buyers remembered per generation (two generations are kept)
_QUARANTINE_FLOOR = b"quarantine_floor"


@dataclass(frozen=True)
class StoreSettings:
    """How the store is opened.

    Attributes:
        path: database directory (created if missing).
        sync: ``"group"`` fsyncs the WAL in every commit (survives power loss); ``"os"``
            leaves fsync to the OS (survives a process crash only). See the module docstring.
        cache_orders: hot ``OrderState`` objects kept in memory.
        recent_fingerprints: fingerprints checked in memory before the ``dedup`` keyspace.
        outbox_max_events / outbox_max_bytes: outbox bounds, enforced by the caller with
            ``Store.outbox_stats()``.
        outbox_reserve_events / outbox_reserve_bytes: the last part of each bound, kept for
            pack-line scans (webhooks are refused at ``max - reserve``).
    """

    path: Path
    sync: Literal["group", "os"] = "group"
    cache_orders: int = 200_000
    recent_fingerprints: int = 1_000_000
    outbox_max_events: int = 5_000_000
    outbox_max_bytes: int = 2 * 1024**3
    outbox_reserve_events: int = 100_000
    outbox_reserve_bytes: int = 64 * 1024**2

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
    """

    orders: list[OrderState] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    buyer_index: list[tuple[str, int, int, str]] = field(default_factory=list)
    waybill_index: list[tuple[str, str, str]] = field(default_factory=list)
    quarantine_release: list[tuple[str, int]] = field(default_factory=list)


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


class _OutboxLedger:
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


class Store:
    """The open store. Create it with ``open_store``; use it as a context manager.

    Writes (``commit``, ``delete_outbox``) are serialised by a lock; the read methods may
    be called from other threads. Once closed, every method that needs the database
    raises ``StoreError``; the in-memory counters (``outbox_stats``...) stay readable.
    """

    settings: StoreSettings

    def __init__(self, db: Rdict, settings: StoreSettings) -> None:
        self.settings = settings
        self._db: Rdict | None = None
        self._cfs: dict[str, Rdict] | None = None
        self._handles: dict[str, Any] | None = None
        self._attach(db)
        self._write_options = WriteOptions()  # synced with flush_wal, see _write
        self._sync_wal = settings.sync == "group"
        self._unsynced = WriteOptions()  # outbox deletes: losing one to a power cut only re-sends
        self._write_lock = threading.Lock()  # one writer: seqs, and the outbox ledger vs deletes
        self._memory_lock = threading.Lock()
        self._prefixes: dict[str, bytes] = {}
        self._event_seq: dict[str, int] = {}
        self._audit_seq: dict[str, int] = {}
        self._audit_head: dict[str, str] = {}
        self._quarantine_seq: dict[str, int] = {}
        self._quarantine_count: dict[str, int] = {}
        self._outbox_seq = 0
        self._outbox_floor = 0
        self._outbox = _OutboxLedger()
        self._dead_count = 0
        self._closed = False
        # Quarantined logistics events waiting for their waybill: (tenant, waybill) -> q seqs.
        self._waiting: dict[tuple[str, str], list[int]] = {}
        self._waiting_of: dict[tuple[str, int], str] = {}
        # Buyers indexed since open, so a buyer never seen costs no index scan (orders_for_buyer).
        self._buyers: set[tuple[str, int]] = set()
        self._buyers_old: set[tuple[str, int]] = set()
        self._buyers_since_ms = time.time_ns() // 1_000_000
        self._buyers_complete_after_ms = self._buyers_since_ms  # refined by _recover
        self._buyer_index_newest = 0
        self._orders: OrderedDict[tuple[str, str], OrderState] = OrderedDict()
        self._order_writes = 0  # guards read-through caching against a concurrent commit
        self._recent: dict[str, set[int]] = {}
        self._recent_old: dict[str, set[int]] = {}
        self._recent_size = 0

    def __repr__(self) -> str:
        state = "open" if self._db is not None else "closed"
        return f"<Store {str(self.settings.path)!r} sync={self.settings.sync} {state}>"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------

    def commit(self, step: StepWrite) -> CommitResult:
        """Write ``step`` as one atomic batch, durable per ``settings.sync`` on return.

        Assigns seqs, writes a ``dedup`` entry for every event and chains the audit
        records. Caches and counters change only after the write succeeded.

        Raises:
            StoreError: the store is closed or RocksDB failed; nothing was written.
            ValueError: a record cannot be encoded (bad tenant, fingerprint, JSON); a bug.
        """
        with self._write_lock:
            handles = self._live(self._handles)
            batch = WriteBatch(raw_mode=True)
            put, select = batch.put, batch.set_default_column_family
            known, prefix_of, dumps = self._prefixes.get, self._prefix, orjson.dumps
            event_next: dict[str, int] = {}
            audit_next: dict[str, int] = {}
            head_next: dict[str, str] = {}
            quarantine_next: dict[str, int] = {}
            released: dict[str, list[int]] = {}
            event_seqs: list[int] = []
            audit_seqs: list[int] = []
            quarantine_seqs: list[int] = []
            outbox_sizes: list[int] = []
            try:
                if step.orders:
                    select(handles["orders"])
                    for order in step.orders:
                        tenant = order.tenant
                        put((known(tenant) or prefix_of(tenant)) + order.order_id.encode(),
                            dumps(order.to_dict()))
                if step.events:
                    select(handles["events"])
                    counters = self._event_seq
                    dedup: list[tuple[bytes, bytes]] = []
                    for event in step.events:
                        tenant = event["tenant"]
                        seq = (event_next.get(tenant) or counters.get(tenant, 0)) + 1
                        event_next[tenant] = seq
                        prefix = known(tenant) or prefix_of(tenant)
                        packed = _be64(seq)
                        put(prefix + packed, dumps(event))
                        dedup.append((prefix + _be64(event["fingerprint"]), packed))
                        event_seqs.append(seq)
                    select(handles["dedup"])
                    for key, value in dedup:
                        put(key, value)
                if step.audit:
                    select(handles["audit"])
                    counters, heads, sha256 = self._audit_seq, self._audit_head, hashlib.sha256
                    for record in step.audit:
                        tenant = record["tenant"]
                        seq = (audit_next.get(tenant) or counters.get(tenant, 0)) + 1
                        prev = head_next.get(tenant)
                        if prev is None:
                            prev = heads.get(tenant, "")
                        entry = {**record, "seq": seq, "prev": prev}
                        entry.pop("hash", None)
                        body = dumps(entry, option=_SORTED)
                        digest = sha256(prev.encode() + body).hexdigest()
                        audit_next[tenant] = seq
                        head_next[tenant] = digest
                        put((known(tenant) or prefix_of(tenant)) + _be64(seq),
                            body[:-1] + _HASH_MARK + digest.encode() + b'"}')
                        audit_seqs.append(seq)
                outbox_seq = self._outbox_seq
                if step.outbox:
                    select(handles["outbox"])
                    stamp = b',"queued_at_ms":%d}' % (time.time_ns() // 1_000_000)  # records are non-empty dicts
                    for record in step.outbox:
                        outbox_seq += 1
                        value = dumps(record)[:-1] + stamp
                        put(_be64(outbox_seq), value)
                        outbox_sizes.append(len(value))
                if step.quarantine:
                    select(handles["quarantine"])
                    counters = self._quarantine_seq
                    for record in step.quarantine:
                        tenant = record["tenant"]
                        seq = (quarantine_next.get(tenant) or counters.get(tenant, 0)) + 1
                        quarantine_next[tenant] = seq
                        put((known(tenant) or prefix_of(tenant)) + _be64(seq), dumps(record))
                        quarantine_seqs.append(seq)
                if step.quarantine_release:
                    self._release_quarantine(batch, handles, step.quarantine_release, released)
                if step.buyer_index:
                    select(handles["idx_buyer"])
                    newest = self._buyer_index_newest
                    for tenant, buyer_key, time_ms, order_id in step.buyer_index:
                        put((known(tenant) or prefix_of(tenant)) + _be64x2(buyer_key, time_ms)
                            + order_id.encode(), b"")
                        newest = max(newest, time_ms)
                    put(_BUYER_NEWEST, _be64(newest), handles["meta"])
                if step.waybill_index:
                    select(handles["idx_waybill"])
                    for tenant, waybill, order_id in step.waybill_index:
                        put((known(tenant) or prefix_of(tenant)) + waybill.encode(), order_id.encode())
            except (struct.error, KeyError, TypeError, orjson.JSONEncodeError) as exc:
                raise ValueError(f"step cannot be encoded: {exc!r}") from exc
            if len(batch):
                self._write(batch, "commit")
            self._apply(step, event_next, audit_next, head_next, quarantine_next, released,
                        outbox_seq, outbox_sizes)
            if step.quarantine or released:
                self._note_waiting(step.quarantine, quarantine_seqs, released)
            first_outbox = outbox_seq - len(outbox_sizes) + 1
            return CommitResult(event_seqs, audit_seqs, list(range(first_outbox, outbox_seq + 1)),
                                quarantine_seqs)

    def _release_quarantine(self, batch: WriteBatch, handles: dict[str, Any],
                            releases: list[tuple[str, int]], released: dict[str, list[int]]) -> None:
        """Add deletes (and the seq floor) for quarantine records that exist."""
        column = self._live(self._cfs)["quarantine"]
        batch.set_default_column_family(handles["quarantine"])
        for tenant, seq in sorted(set(releases)):
            key = self._prefix(tenant) + _be64(seq)
            if self._guard(column.get, key) is not None:
                batch.delete(key)
                released.setdefault(tenant, []).append(seq)
        batch.set_default_column_family(handles["meta"])
        for tenant, seqs in released.items():
            batch.put(self._prefix(tenant) + _QUARANTINE_FLOOR, _be64(max(seqs)))

    def _note_waiting(self, records: list[dict[str, Any]], seqs: list[int],
                      released: dict[str, list[int]]) -> None:
        """Track quarantined events that wait for their waybill (``unknown_waybill``)."""
        with self._memory_lock:
            for record, seq in zip(records, seqs, strict=True):
                if record.get("reason") == "unknown_waybill" and record.get("waybill"):
                    tenant, waybill = record["tenant"], record["waybill"]
                    self._waiting.setdefault((tenant, waybill), []).append(seq)
                    self._waiting_of[(tenant, seq)] = waybill
            for tenant, done in released.items():
                for seq in done:
                    waybill = self._waiting_of.pop((tenant, seq), None)
                    if waybill is not None:
                        left = [s for s in self._waiting.get((tenant, waybill), []) if s != seq]
                        if left:
                            self._waiting[(tenant, waybill)] = left
                        else:
                            self._waiting.pop((tenant, waybill), None)

    def _apply(self, step: StepWrite, event_next: dict[str, int], audit_next: dict[str, int],
               head_next: dict[str, str], quarantine_next: dict[str, int],
               released: dict[str, list[int]], outbox_seq: int, outbox_sizes: list[int]) -> None:
        """Publish a written step to the counters and caches."""
        self._event_seq.update(event_next)
        self._audit_seq.update(audit_next)
        self._audit_head.update(head_next)
        self._quarantine_seq.update(quarantine_next)
        first_outbox = self._outbox_seq + 1
        self._outbox_seq = outbox_seq
        with self._memory_lock:
            self._order_writes += 1
            cache, limit = self._orders, self.settings.cache_orders
            for order in step.orders:
                key = (order.tenant, order.order_id)
                cache[key] = order
                cache.move_to_end(key)
            while len(cache) > limit:
                cache.popitem(last=False)
            if outbox_sizes:
                self._outbox.add(first_outbox, outbox_sizes)
            counts = self._quarantine_count
            for record in step.quarantine:
                counts[record["tenant"]] = counts.get(record["tenant"], 0) + 1
            for tenant, seqs in released.items():
                counts[tenant] -= len(seqs)
        if step.buyer_index:
            self._remember_buyers(step.buyer_index)
        if self.settings.recent_fingerprints and step.events:
            recent, half = self._recent, max(1, self.settings.recent_fingerprints // 2)
            for event in step.events:
                tenant = event["tenant"]
                seen = recent.get(tenant)
                if seen is None:
                    seen = recent[tenant] = set()
                seen.add(event["fingerprint"])
            self._recent_size += len(step.events)
            if self._recent_size >= half:  # rotate generations: memory stays bounded
                self._recent_old, self._recent, self._recent_size = recent, {}, 0

    def _remember_buyers(self, entries: list[tuple[str, int, int, str]]) -> None:
        """Note indexed buyers in memory; two generations bound the memory.

        Dropping a generation makes ``_buyers_complete_after_ms`` the start of the one kept:
        an entry written before that has a time no later than its write.
        """
        for tenant, buyer_key, time_ms, _ in entries:
            self._buyers.add((tenant, buyer_key))
            self._buyer_index_newest = max(self._buyer_index_newest, time_ms)
        if len(self._buyers) >= _BUYER_GENERATION:
            now = time.time_ns() // 1_000_000
            self._buyers_complete_after_ms = max(self._buyers_complete_after_ms, self._buyers_since_ms)
            self._buyers_old, self._buyers, self._buyers_since_ms = self._buyers, set(), now

    def delete_outbox(self, seqs: Iterable[int], *, blocking: bool = True) -> bool:
        """Delete delivered outbox records in one batch, written to the WAL without an fsync.

        A delete lost to a power cut only makes the forwarder re-send records the upstream
        already has (it de-duplicates by ``event_id``); the next synced commit fsyncs the
        WAL up to and including it anyway (the WAL is sequential). A process crash loses
        nothing written. Skipping the fsync here keeps the drain off the disk's latency (a
        synced write holds the GIL for the whole fsync). Unknown or already deleted seqs
        are ignored.

        Args:
            seqs: the outbox seqs delivered.
            blocking: ``False`` returns ``False`` at once, deleting nothing, when another
                write holds the store (so an event loop never waits behind a group commit).

        Returns:
            ``True`` when deleted.

        Raises:
            StoreError: the store is closed or RocksDB failed; nothing was deleted.
        """
        ordered = sorted(set(seqs))
        if not ordered:
            return True
        if not self._write_lock.acquire(blocking):
            return False
        try:
            handles = self._live(self._handles)
            batch = WriteBatch(raw_mode=True)
            batch.set_default_column_family(handles["outbox"])
            for seq in ordered:
                batch.delete(_be64(seq))
            floor = max(self._outbox_floor, min(ordered[-1], self._outbox_seq))
            batch.put(_OUTBOX_FLOOR, _be64(floor), handles["meta"])
            self._write(batch, "outbox delete", self._unsynced)
            self._outbox_floor = floor
            with self._memory_lock:
                self._outbox.remove(ordered)
            return True
        finally:
            self._write_lock.release()

    def dead_letter(self, refused: list[tuple[int, dict[str, Any]]]) -> None:
        """Move refused outbox records to the dead-letter keyspace, in one durable batch.

        Args:
            refused: ``(outbox_seq, why)`` pairs; ``why`` holds what the upstream answered
                (``status``, ``response``, ``batch_id``...). Seqs no longer in the outbox
                are ignored.

        Raises:
            StoreError: the store is closed or RocksDB failed; nothing moved.
        """
        if not refused:
            return
        with self._write_lock:
            handles = self._live(self._handles)
            outbox = self._live(self._cfs)["outbox"]
            batch = WriteBatch(raw_mode=True)
            moved: list[int] = []
            for seq, why in refused:
                value = self._guard(outbox.get, _be64(seq))
                if value is None:
                    continue
                record = {**why, "outbox_seq": seq, "event": orjson.loads(value)}
                batch.delete(_be64(seq), handles["outbox"])
                batch.put(_be64(seq), orjson.dumps(record), handles["dead"])
                moved.append(seq)
            if not moved:
                return
            floor = max(self._outbox_floor, min(max(moved), self._outbox_seq))
            batch.put(_OUTBOX_FLOOR, _be64(floor), handles["meta"])
            self._write(batch, "dead-letter move")
            self._outbox_floor = floor
            with self._memory_lock:
                self._outbox.remove(moved)
                self._dead_count += len(moved)

    def requeue_dead(self, seqs: Iterable[int] | None = None) -> list[int]:
        """Put dead letters back at the END of the outbox (all, or the given dead ids).

        Each is re-queued with a new outbox seq (so after events of the same order that
        were delivered meanwhile) and its original ``event_id``: an upstream that already
        has it de-duplicates. One durable batch.

        Returns:
            The new outbox seqs, in the order of the dead ids.

        Raises:
            StoreError: the store is closed or RocksDB failed; nothing moved.
        """
        with self._write_lock:  # read under the lock too: two requeues never both move one letter
            if seqs is None:
                items = list(self._scan("dead", b"", None))
            else:
                items = [(_be64(seq), value) for seq in sorted(set(seqs))
                         if (value := self._get("dead", _be64(seq))) is not None]
            if not items:
                return []
            handles = self._live(self._handles)
            batch = WriteBatch(raw_mode=True)
            outbox_seq, sizes = self._outbox_seq, []
            now = time.time_ns() // 1_000_000
            for key, value in items:
                event = orjson.loads(value)["event"]
                event["queued_at_ms"] = now
                encoded = orjson.dumps(event)
                outbox_seq += 1
                batch.delete(key, handles["dead"])
                batch.put(_be64(outbox_seq), encoded, handles["outbox"])
                sizes.append(len(encoded))
            self._write(batch, "dead-letter requeue")
            first = self._outbox_seq + 1
            self._outbox_seq = outbox_seq
            with self._memory_lock:
                self._outbox.add(first, sizes)
                self._dead_count -= len(items)
            return list(range(first, outbox_seq + 1))

    # -- reading ---------------------------------------------------------------------

    def get_order(self, tenant: str, order_id: str) -> OrderState | None:
        """The current state of an order, or ``None``.

        The returned object is shared with the cache: never mutate it; ``copy()`` it first.
        """
        order = self._orders.get((tenant, order_id))
        if order is not None:
            return order
        prefix = self._read_prefix(tenant)
        if prefix is None:
            return None
        writes = self._order_writes
        raw = self._get("orders", prefix + order_id.encode())
        if raw is None:
            return None
        order = OrderState.from_dict(orjson.loads(raw))
        with self._memory_lock:
            if writes == self._order_writes and self.settings.cache_orders:  # else it may be stale
                self._orders.setdefault((tenant, order_id), order)
                if len(self._orders) > self.settings.cache_orders:
                    self._orders.popitem(last=False)
        return order

    def seen_fingerprint(self, tenant: str, fingerprint: int) -> bool:
        """True when an event with this fingerprint was committed for ``tenant``."""
        seen = self._recent.get(tenant)
        if seen is not None and fingerprint in seen:
            return True
        seen = self._recent_old.get(tenant)
        if seen is not None and fingerprint in seen:
            return True
        prefix = self._read_prefix(tenant)
        return prefix is not None and self._get("dedup", prefix + _be64(fingerprint)) is not None

    def order_for_waybill(self, tenant: str, waybill: str) -> str | None:
        """The order a waybill was indexed for, or ``None``."""
        prefix = self._read_prefix(tenant)
        raw = None if prefix is None else self._get("idx_waybill", prefix + waybill.encode())
        return None if raw is None else raw.decode()

    def orders_for_buyer(self, tenant: str, buyer_key: int, since_ms: int) -> list[tuple[int, str]]:
        """``(time_ms, order_id)`` of a buyer's orders indexed at or after ``since_ms``, oldest first.

        A buyer not indexed since the store opened is answered from memory, without a
        scan, once ``since_ms`` is past every entry written before (``buyer_index_newest``
        at open) and past any forgotten generation; otherwise the index is read.
        """
        prefix = self._read_prefix(tenant)
        if prefix is None:
            return []
        if since_ms > self._buyers_complete_after_ms:
            key = (tenant, buyer_key)
            if key not in self._buyers and key not in self._buyers_old:
                return []
        start = prefix + _be64x2(buyer_key, max(0, since_ms))
        stop = prefix + _be64(buyer_key + 1) if buyer_key < 2**64 - 1 else _upper(prefix)
        offset = len(prefix) + 8
        return [(_read64(key, offset)[0], key[offset + 8:].decode()) for key, _ in self._scan("idx_buyer", start, stop)]

    def iter_events(self, tenant: str, after_seq: int = 0) -> Iterator[dict[str, Any]]:
        """A tenant's event records with ``seq > after_seq``, in seq order (each with ``"seq"``)."""
        yield from self._records("events", tenant, after_seq, "seq")

    def iter_quarantine(self, tenant: str) -> Iterator[dict[str, Any]]:
        """A tenant's quarantined records still held, oldest first (each with ``"seq"``)."""
        yield from self._records("quarantine", tenant, 0, "seq")

    def waiting_for_waybills(self, waybills: Iterable[tuple[str, str]]) -> dict[str, list[int]]:
        """Quarantine seqs, per tenant, of logistics events that waited for these waybills.

        A carrier often reports a parcel (picked up, in transit) before the ERP reports its
        waybill; such events are quarantined as ``unknown_waybill`` and released by the
        pipeline as soon as the waybill is indexed (kept in memory, rebuilt at open).
        """
        found: dict[str, list[int]] = {}
        with self._memory_lock:
            for tenant, waybill in waybills:
                seqs = self._waiting.get((tenant, waybill))
                if seqs:
                    found.setdefault(tenant, []).extend(seqs)
        return found

    def quarantine_records(self, tenant: str, seqs: Iterable[int]) -> list[dict[str, Any]]:
        """The quarantine records of these seqs that are still held (each with ``"seq"``)."""
        prefix = self._read_prefix(tenant)
        records = []
        for seq in sorted(set(seqs)):
            raw = None if prefix is None else self._get("quarantine", prefix + _be64(seq))
            if raw is not None:
                record = orjson.loads(raw)
                record["seq"] = seq
                records.append(record)
        return records

    def iter_audit(self, tenant: str, order_id: str | None = None) -> Iterator[dict[str, Any]]:
        """A tenant's audit records in chain order, optionally only those of one order.

        Filtering scans the tenant's whole chain (raw bytes are pre-filtered before decoding).
        """
        prefix = self._read_prefix(tenant)
        if prefix is None:
            return
        needle = b'"order_id":' + orjson.dumps(order_id) if order_id is not None else b""
        for _, value in self._scan("audit", prefix, _upper(prefix)):
            if needle in value:
                record = orjson.loads(value)
                if order_id is None or record.get("order_id") == order_id:
                    yield record

    def verify_audit_chain(self, tenant: str) -> AuditVerification:
        """Recompute a tenant's audit chain and report the first bad or missing record."""
        prefix = self._read_prefix(tenant)
        prev, checked, expected = "", 0, 1
        if prefix is not None:
            for key, value in self._scan("audit", prefix, _upper(prefix)):
                seq = _read64(key, len(prefix))[0]
                reason = _audit_problem(seq, expected, prev, value)
                if reason:
                    return AuditVerification(False, checked, min(seq, expected), reason)
                prev, checked, expected = value[-66:-2].decode(), checked + 1, seq + 1
        written = self._audit_seq.get(tenant, 0)
        if expected - 1 < written:
            return AuditVerification(False, checked, expected,
                                     f"chain ends at seq {expected - 1} but {written} records were written")
        return AuditVerification(True, checked, None, "")

    def iter_outbox(self, after_seq: int = 0, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Outbox records with ``outbox_seq > after_seq`` in commit order (each with ``"outbox_seq"``)."""
        oldest = self.outbox_stats().oldest_seq
        start = max(after_seq + 1, oldest or 1)  # skip the tombstones of delivered records
        for key, value in self._scan("outbox", _be64(start), None, limit):
            record = orjson.loads(value)
            record["outbox_seq"] = _read64(key)[0]
            yield record

    def read_outbox(self, limit: int, max_bytes: int, after_seq: int = 0) -> list[tuple[int, bytes]]:
        """The oldest live outbox records after ``after_seq`` as raw ``(seq, JSON bytes)``.

        Stops at ``limit`` records or before the one that would pass ``max_bytes`` (the
        first record is always returned, however big, so nothing can block the queue).
        """
        oldest = self.outbox_stats().oldest_seq
        if oldest is None:
            return []
        start, size = max(after_seq + 1, oldest), 0
        out: list[tuple[int, bytes]] = []
        # Up to the last published seq only: a batch being fsynced is not durable yet.
        for key, value in self._scan("outbox", _be64(start), _be64(self._outbox_seq + 1), limit):
            size += len(value)
            if out and size > max_bytes:
                break
            out.append((_read64(key)[0], value))
        return out

    def outbox_oldest_queued_ms(self) -> int | None:
        """When the oldest live outbox record was queued (epoch ms), or ``None`` when empty."""
        head = self.read_outbox(1, 1)
        if not head:
            return None
        queued = orjson.loads(head[0][1]).get("queued_at_ms")
        return queued if isinstance(queued, int) else None

    def iter_dead(self, after_seq: int = 0, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Dead letters (each with ``outbox_seq``, ``event`` and the upstream's answer), oldest first."""
        for _, value in self._scan("dead", _be64(after_seq + 1), None, limit):
            yield orjson.loads(value)

    def dead_count(self) -> int:
        """Dead letters held, kept in memory."""
        return self._dead_count

    def outbox_stats(self) -> OutboxStats:
        """Live outbox records and bytes (values), kept in memory."""
        with self._memory_lock:
            return self._outbox.stats()

    def quarantine_count(self, tenant: str | None = None) -> int:
        """Quarantined records held, for one tenant or all."""
        counts = self._quarantine_count
        return sum(counts.values()) if tenant is None else counts.get(tenant, 0)

    def tenants(self) -> list[str]:
        """Tenants that have at least one order, sorted."""
        return [tenant for tenant, _, _ in self._tenant_tails("orders")]

    def close(self) -> None:
        """Close the database (idempotent). Pending iterators end with ``StoreError``."""
        with self._write_lock:
            self._closed = True  # for good: reopen() refuses
            db, self._db, self._cfs, self._handles = self._db, None, None, None
            with self._memory_lock:
                self._orders.clear()
                self._recent, self._recent_old = {}, {}
            if db is not None:
                self._guard(db.close)

    # -- internals -------------------------------------------------------------------

    def reopen(self) -> None:
        """Close and reopen the database in place, after a write failed.

        RocksDB refuses every write after a failed WAL write (a full disk, an I/O error)
        until the database is reopened, even once space is back. Reopening recovers the
        WAL in point-in-time mode: the failed (never acknowledged) batch is dropped, every
        acknowledged one is there. The counters are rebuilt from the keys; the caches stay,
        because memory only ever changes after a write succeeded.

        Raises:
            StoreError: the database cannot be opened again (the store stays closed; call
                ``reopen`` again later).
        """
        with self._write_lock:
            if self._closed:
                raise StoreError("store is closed")
            old, self._db, self._cfs, self._handles = self._db, None, None, None
            if old is not None:
                try:
                    old.close()
                except Exception as exc:  # it is in an error state: closing may fail the same way
                    log.info("closing the failed database: %s", exc)
                # RocksDB releases its LOCK only when the last reference to the failed database
                # (and its column families) is gone.
                del old
                gc.collect()
            self._attach(_open_db(self.settings))
            self._event_seq, self._audit_seq, self._audit_head = {}, {}, {}
            self._quarantine_seq, self._quarantine_count = {}, {}
            self._outbox_seq = self._outbox_floor = 0
            with self._memory_lock:
                self._outbox = _OutboxLedger()
            self._recover(initial=False)
        log.warning("store reopened after a write error: %s (%d outbox records)", self.settings.path,
                    self._outbox.count)

    def _attach(self, db: Rdict) -> None:
        self._cfs = {name: db.get_column_family(name) for name in COLUMN_FAMILIES}
        self._handles = {name: db.get_column_family_handle(name) for name in COLUMN_FAMILIES}
        self._db = db

    def _recover(self, initial: bool = True) -> None:
        """Rebuild counters, chain heads and outbox stats from the keys (see docstring)."""
        meta = self._live(self._cfs)["meta"]
        stored_format = self._guard(meta.get, b"format")
        if stored_format is None:
            self._guard(meta.put, b"format", FORMAT_VERSION, self._write_options)
            if self._sync_wal:
                self._guard(self._live_db().flush_wal, True)
        elif stored_format != FORMAT_VERSION:
            raise StoreError(f"store format {stored_format!r} is not {FORMAT_VERSION!r}: {self.settings.path}")
        for tenant, key, _ in self._tenant_tails("events"):
            self._event_seq[tenant] = _read64(key, len(tenant) + 1)[0]
        for tenant, key, value in self._tenant_tails("audit"):
            self._audit_seq[tenant] = _read64(key, len(tenant) + 1)[0]
            self._audit_head[tenant] = _head_hash(value)
        for tenant, key, _ in self._tenant_tails("quarantine"):
            self._quarantine_seq[tenant] = _read64(key, len(tenant) + 1)[0]
        waiting: dict[tuple[str, str], list[int]] = {}
        waiting_of: dict[tuple[str, int], str] = {}
        for key, value in self._scan("quarantine", b"", None):
            tenant = key[: key.index(b"\0")].decode()
            self._quarantine_count[tenant] = self._quarantine_count.get(tenant, 0) + 1
            if b'"unknown_waybill"' in value:
                record = orjson.loads(value)
                if record.get("reason") == "unknown_waybill" and record.get("waybill"):
                    seq = _read64(key, len(tenant) + 1)[0]
                    waiting.setdefault((tenant, record["waybill"]), []).append(seq)
                    waiting_of[(tenant, seq)] = record["waybill"]
        with self._memory_lock:
            self._waiting, self._waiting_of = waiting, waiting_of
        for key, value in self._scan("meta", b"", None):
            if key.endswith(b"\0" + _QUARANTINE_FLOOR):
                tenant = key[: key.index(b"\0")].decode()
                floor = _read64(value)[0]
                self._quarantine_seq[tenant] = max(self._quarantine_seq.get(tenant, 0), floor)
            elif key == _OUTBOX_FLOOR:
                self._outbox_floor = _read64(value)[0]
            elif key == _BUYER_NEWEST:
                self._buyer_index_newest = _read64(value)[0]
        if initial and (self._buyer_index_newest or not self._read_chunk("idx_buyer", b"", None, 1)):
            # every entry written before this open is at or before buyer_index_newest (an
            # older store without that key but with entries: at or before now, the default)
            self._buyers_complete_after_ms = self._buyer_index_newest
        self._outbox_seq = self._outbox_floor
        self._dead_count = sum(1 for _ in self._scan("dead", b"", None))
        for key, value in self._scan("outbox", b"", None):
            seq = _read64(key)[0]
            self._outbox.add(seq, [len(value)])
            self._outbox_seq = max(self._outbox_seq, seq)

    def _tenant_tails(self, name: str) -> list[tuple[str, bytes, bytes]]:
        """(tenant, last key, last value) per tenant of a ``T 0 ...`` keyspace: two seeks each."""
        iterator = self._live(self._cfs)[name].iter()
        tails: list[tuple[str, bytes, bytes]] = []
        try:
            iterator.seek_to_first()
            while iterator.valid():
                bound = _upper(iterator.key().partition(b"\0")[0] + b"\0")
                iterator.seek_for_prev(bound)
                key = iterator.key()
                tails.append((key.partition(b"\0")[0].decode(), key, iterator.value()))
                iterator.seek(bound)
        except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
            raise StoreError(f"cannot scan {name}: {exc}") from exc
        return tails

    def _records(self, name: str, tenant: str, after_seq: int, seq_field: str) -> Iterator[dict[str, Any]]:
        prefix = self._read_prefix(tenant)
        if prefix is None:
            return
        for key, value in self._scan(name, prefix + _be64(after_seq + 1), _upper(prefix)):
            record = orjson.loads(value)
            record[seq_field] = _read64(key, len(prefix))[0]
            yield record

    def _scan(self, name: str, start: bytes, stop: bytes | None,
              limit: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Items in ``[start, stop)``, read in chunks so nothing RocksDB is held between them."""
        remaining = limit
        while remaining is None or remaining > 0:
            want = _CHUNK if remaining is None else min(_CHUNK, remaining)
            chunk = self._read_chunk(name, start, stop, want)
            yield from chunk
            if len(chunk) < want:
                return
            if remaining is not None:
                remaining -= want
            start = chunk[-1][0] + b"\0"

    def _read_chunk(self, name: str, start: bytes, stop: bytes | None, count: int) -> list[tuple[bytes, bytes]]:
        column = self._live(self._cfs)[name]
        options = ReadOptions()
        if stop is not None:
            options.set_iterate_upper_bound(stop)
        if name in _READ_ONCE:  # each record is read once: keep it out of the block cache
            options.fill_cache(False)  # type: ignore[call-arg]  # the stub omits the argument
        try:
            return list(islice(column.items(from_key=start, read_opt=options), count))
        except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
            raise StoreError(f"cannot read {name}: {exc}") from exc

    def _get(self, name: str, key: bytes) -> bytes | None:
        value: bytes | None = self._guard(self._live(self._cfs)[name].get, key)
        return value

    def _write(self, batch: WriteBatch, what: str, options: WriteOptions | None = None) -> None:
        if self._db is None:
            raise StoreError("store is closed")
        try:  # no local names the database: a kept traceback must not keep it (and its LOCK) alive
            self._db.write(batch, options or self._write_options)
        except Exception as exc:  # rocksdict raises bare Exception (or DbClosedError)
            raise StoreError(f"{what} failed, nothing written: {exc}") from exc
        if options is None and self._sync_wal:
            try:  # the GIL is free during this fsync (a synced write would hold it): see "Durability"
                self._db.flush_wal(True)
            except Exception as exc:
                raise StoreError(f"{what} failed: the WAL fsync failed, nothing acknowledged: {exc}") from exc

    def _live_db(self) -> Rdict:
        if self._db is None:
            raise StoreError("store is closed")
        return self._db

    @staticmethod
    def _guard(call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
            raise StoreError(f"RocksDB call failed: {exc}") from exc

    @staticmethod
    def _live(value: dict[str, Any] | None) -> dict[str, Any]:
        if value is None:
            raise StoreError("store is closed")
        return value

    def _prefix(self, tenant: str) -> bytes:
        """``T 0`` for a tenant seen for the first time (validated, then cached)."""
        if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
            raise ValueError(f"invalid tenant name: {tenant!r}")
        prefix = self._prefixes[tenant] = tenant.encode() + b"\0"
        return prefix

    def _read_prefix(self, tenant: str) -> bytes | None:
        """``T 0`` for reads; ``None`` for a name no tenant can have."""
        prefix = self._prefixes.get(tenant)
        if prefix is None and isinstance(tenant, str) and _TENANT.fullmatch(tenant):
            prefix = tenant.encode() + b"\0"
        return prefix


def _upper(prefix: bytes) -> bytes:
    """The exclusive upper bound of keys starting with ``prefix`` (which ends in ``\\0``)."""
    return prefix[:-1] + b"\x01"


def _head_hash(value: bytes) -> str:
    """The ``hash`` of a stored audit value (its fixed suffix), ``""`` if unreadable."""
    if value[-75:-66] == _HASH_MARK and value.endswith(b'"}'):
        return value[-66:-2].decode()
    log.warning("last audit record is damaged; run verify_audit_chain")
    return ""


def _audit_problem(seq: int, expected: int, prev: str, value: bytes) -> str:
    """Why one stored audit record breaks the chain, or ``""``."""
    if seq != expected:
        return f"record {expected} is missing"
    try:
        record = orjson.loads(value)
        stored = record.pop("hash")
        body = orjson.dumps(record, option=_SORTED)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, KeyError, AttributeError, TypeError):
        return "record is not a valid audit record"
    if record.get("seq") != seq:
        return f"record says seq {record.get('seq')!r}"
    if record.get("prev") != prev:
        return "prev does not match the previous record's hash"
    if value[-66:-2].decode(errors="replace") != stored:
        return "hash is not where the store wrote it"
    if hashlib.sha256(prev.encode() + body).hexdigest() != stored:
        return "hash does not match the content"
    return ""


def _options(cache: Cache, point_lookup: bool, write_buffer_bytes: int = 0) -> Options:
    options = Options(raw_mode=True)
    if write_buffer_bytes:
        options.set_write_buffer_size(write_buffer_bytes)
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    if point_lookup:  # misses (new orders, new fingerprints) are the common case: keep them cheap
        table.set_bloom_filter(10, False)
        options.set_memtable_prefix_bloom_ratio(0.05)
        options.set_memtable_whole_key_filtering(True)
    options.set_block_based_table_factory(table)
    options.set_compression_type(DBCompressionType.lz4())
    return options


def _open_db(settings: StoreSettings) -> Rdict:
    """The RocksDB database at ``settings.path`` with every column family (created if missing)."""
    path = settings.path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create store directory {path}: {exc}") from exc
    cache = Cache(_BLOCK_CACHE_BYTES)
    options = _options(cache, False)
    options.set_db_write_buffer_size(_MEMTABLES_BYTES)  # all column families together
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_wal_recovery_mode(DBRecoveryMode.point_in_time())
    options.set_keep_log_file_num(5)
    try:
        existing = Rdict.list_cf(str(path), Options(raw_mode=True)) if (path / "CURRENT").exists() else []
        families = {name: _options(cache, name in _POINT_LOOKUP, _OUTBOX_MEMTABLE_BYTES if name == "outbox" else 0)
                    for name in COLUMN_FAMILIES}
        for name in existing:  # column families of a newer version must be opened too
            if name != "default" and name not in families:
                families[name] = _options(cache, False)
        return Rdict(str(path), options=options, column_families=families)
    except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
        if "lock" in str(exc).lower():
            raise StoreError(f"store is locked by another process (or already open): {path}: {exc}") from exc
        raise StoreError(f"cannot open store {path}: {exc}") from exc


def open_store(settings: StoreSettings) -> Store:
    """Open (creating if needed) the store at ``settings.path`` and recover its counters.

    Raises:
        StoreError: the directory cannot be created, the database is locked by another
            process (or already open in this one), damaged, or of another format.
    """
    store = Store(_open_db(settings), settings)
    try:
        store._recover()
    except BaseException:
        store.close()
        raise
    log.info("store open: %s (sync=%s, %d outbox records)", settings.path, settings.sync, store._outbox.count)
    return store
