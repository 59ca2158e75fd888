"""The durable store: orders, event log, audit trail, outbox and indexes in RocksDB.

One RocksDB database (via ``rocksdict``, raw bytes mode) with one column family per
keyspace. Each processing step is committed as **one** ``WriteBatch`` (``Store.commit``),
so a step is either wholly present after a crash or wholly absent.

Key layout, tenant isolation and the audit chain's format: ``gateway._store.base``.
The parts: ``values`` (the value types), ``base`` (keys, low-level I/O), ``reads`` (queries),
``outbox`` (outbox and dead letters), ``recovery`` (counters rebuilt at open,
reopen after a failed write), this module (commit, open/close).

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

Recovery (``open_store``, ``Store.reopen``): ``gateway._store.recovery``.

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

import dataclasses
import hashlib
import logging
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import Any

import orjson
from rocksdict import (
    Rdict,
    WriteBatch,
    WriteOptions,
)

from gateway._model import OrderState
from gateway._settings import Settings
from gateway._store.base import (
    _AUDIT_FLOOR,
    _BUYER_NEWEST,
    _HASH_MARK,
    _SORTED,
    COLUMN_FAMILIES,
    FORMAT_VERSION,
    _be64,
    _be64x2,
    _open_db,
    record_prefix,
)
from gateway._store.check import probe_store, wal_loss
from gateway._store.mark import DurableMark, read_mark
from gateway._store.migrate import refuse_newer
from gateway._store.outbox import StoreOutbox
from gateway._store.reads import StoreReads
from gateway._store.recovery import StoreRecovery
from gateway._store.values import (
    AuditVerification,
    CommitResult,
    OutboxLedger,
    OutboxStats,
    StepWrite,
    StoreSettings,
)

log = logging.getLogger("gateway._store.store")


class Store(StoreReads, StoreOutbox, StoreRecovery):
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
        self._outbox = OutboxLedger()
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
        self._mark: DurableMark | None = None  # set by open_store: gateway._store.mark

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
            return self._commit(step)

    def commit_if(self, step: StepWrite, precondition: Callable[[], bool]) -> CommitResult | None:
        """``commit``, but only if ``precondition()`` (called under the write lock, so no other
        commit runs between the check and the write) is true; ``None`` when it was not."""
        with self._write_lock:
            return self._commit(step) if precondition() else None

    def _commit(self, step: StepWrite) -> CommitResult:
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
        order_audit: list[bytes] = []
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
                    if record.get("order_id"):
                        order_audit.append((known(tenant) or prefix_of(tenant))
                                           + record["order_id"].encode() + b"\0" + _be64(seq))
                if order_audit:
                    select(handles["idx_audit"])
                    for key in order_audit:
                        put(key, b"")
                for tenant, floor, prev, kept, digest in step.audit_floor:  # retention's anchor
                    at_seq = next(seq for record, seq in zip(step.audit, audit_seqs, strict=True)
                                  if record["tenant"] == tenant and record["decision"] == "retention")
                    put(tenant.encode() + b"\0" + _AUDIT_FLOOR, dumps({"floor": floor, "prev": prev, "at_seq": at_seq,
                                                                     "kept": kept, "kept_digest": digest}),
                        handles["meta"])
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
            if step.records:
                select(handles["packline"])
                for tenant, kind, record_id, stored in step.records:
                    key = record_prefix(kind, tenant) + record_id.encode()
                    if stored is None:
                        batch.delete(key)
                    else:
                        put(key, dumps(stored))
            for name, key, raw in step.raw:
                if raw is None:
                    batch.delete(key, handles[name])
                else:
                    put(key, raw, handles[name])
            for name, start, end in step.raw_ranges:
                batch.delete_range(start, end, handles[name])
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

    # -- open and close --------------------------------------------------------------

    def close(self) -> None:
        """Close the database (idempotent). Pending iterators end with ``StoreError``."""
        with self._write_lock:
            self._closed = True  # for good: reopen() refuses
            db, self._db, self._cfs, self._handles = self._db, None, None, None
            with self._memory_lock:
                self._orders.clear()
                self._recent, self._recent_old = {}, {}
            mark, self._mark = self._mark, None
            if db is not None and mark is not None:
                try:  # a clean close leaves the newest write as the durable mark, in both sync policies
                    db.flush_wal(True)
                    mark.write(db.latest_sequence_number())
                except Exception as exc:  # a failed database: the last mark written stays
                    log.info("closing: the durable mark stays at the last commit: %s", exc)
            if mark is not None:
                mark.close(fsync=True)
            if db is not None:
                self._guard(db.close)

def open_store(settings: StoreSettings, *, accept_damage: bool = False) -> Store:
    """Open (creating if needed) the store at ``settings.path`` and recover its counters.

    First a read-only probe looks for damage while nothing has been changed yet
    (``gateway._store.check``): damaged files, acknowledged writes the WAL no longer holds
    (the durable mark, ``gateway._store.mark``), a newer format. An older format is
    migrated after an automatic backup (``gateway._store.migrate``).

    Args:
        settings: where and how.
        accept_damage: open even though acknowledged writes are missing from the WAL (the
            operator said so: ``gateway run --accept-damaged-store``, ``gateway store
            repair``); the loss is logged as an error and the durable mark starts again
            from what is there. Damaged files still refuse: RocksDB cannot open them.

    Raises:
        StoreDamagedError: a file is damaged or acknowledged writes are missing.
        StoreFormatError: the store's format is newer than this gateway's (or unknown).
        StoreError: the directory cannot be created, or the database is locked by another
            process (or already open in this one).
    """
    mark = read_mark(settings.path)  # before the probe: a running writer only ever moves it up
    probe = probe_store(settings.path)
    if probe is not None and probe.format is not None:
        refuse_newer(settings.path, probe.format)
    lost = wal_loss(settings.path, mark, probe)
    if lost is not None and not accept_damage:
        raise lost
    store = Store(_open_db(settings), settings)
    try:
        store._recover()
        store._mark = DurableMark(settings.path)
        store._note_durable()
    except BaseException:
        store.close()
        raise
    if lost is not None:
        log.error("store opened although damaged (accepted by the operator): %s", lost.detail)
    log.info("store open: %s (sync=%s, %d outbox records)", settings.path, settings.sync, store._outbox.count)
    return store


def store_settings(settings: Settings) -> StoreSettings:
    """The store's settings from the ``[store]`` section and the data directory
    (``<data_dir>/rocksdb``)."""
    return StoreSettings(path=settings.data_path / "rocksdb", **dataclasses.asdict(settings.store))


__all__ = ["COLUMN_FAMILIES", "FORMAT_VERSION", "AuditVerification", "CommitResult", "OutboxStats", "StepWrite",
           "Store", "StoreSettings", "open_store", "store_settings"]
