"""The store's recovery: counters rebuilt from the keys at open, and reopening in place.

Part of ``gateway._store.store.Store`` (``StoreRecovery`` is one of its bases); ``open_store``
calls ``_recover`` once, the pipeline calls ``reopen`` after a failed write.

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
* The ``format``: a newer (or unknown) one is refused, an older one is migrated after an
  automatic backup (``gateway._store.migrate``). Damage is looked for before this open
  (``gateway._store.check``, called by ``open_store``). A held ``LOCK`` (another process, or a
  second open in this one) raises ``StoreError("store is locked ...")``.
* ``reopen`` (after a failed write: RocksDB refuses writes until reopened) closes the
  database, opens it again with the same recovery, and rebuilds the counters; the caches
  stay, because memory only ever changes after a write succeeded.

The in-memory state that ``commit`` keeps current after each successful write (counters, the
order cache, recent fingerprints, indexed buyers, quarantined events waiting for a waybill)
is updated here too (``_apply`` and its helpers), beside the code that rebuilds it at open.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import orjson
from rocksdict import Rdict, WriteBatch

from gateway._errors import StoreError
from gateway._store.base import (
    _AUDIT_INDEXED,
    _BUYER_GENERATION,
    _BUYER_NEWEST,
    _OUTBOX_FLOOR,
    _QUARANTINE_FLOOR,
    COLUMN_FAMILIES,
    FORMAT_VERSION,
    StoreBase,
    _be64,
    _head_hash,
    _open_db,
    _read64,
)
from gateway._store.migrate import migrate, refuse_newer
from gateway._store.values import OutboxLedger, StepWrite

log = logging.getLogger("gateway._store.store")


class StoreRecovery(StoreBase):
    """Open-time recovery and ``reopen`` of ``Store``."""

    def _attach(self, db: Rdict) -> None:
        self._cfs = {name: db.get_column_family(name) for name in COLUMN_FAMILIES}
        self._handles = {name: db.get_column_family_handle(name) for name in COLUMN_FAMILIES}
        self._db = db

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
                self._outbox = OutboxLedger()
            self._recover(initial=False)
        log.warning("store reopened after a write error: %s (%d outbox records)", self.settings.path,
                    self._outbox.count)

    def _recover(self, initial: bool = True) -> None:
        """Rebuild counters, chain heads and outbox stats from the keys (see docstring)."""
        meta = self._live(self._cfs)["meta"]
        stored_format = self._guard(meta.get, b"format")
        if stored_format is None:
            self._guard(meta.put, b"format", FORMAT_VERSION, self._write_options)
            if self._sync_wal:
                self._guard(self._live_db().flush_wal, True)
        else:
            older = refuse_newer(self.settings.path, stored_format)
            if older is not None:
                if not initial:
                    raise StoreError(f"store format {older} found at reopen: {self.settings.path}")
                migrate(self, older)
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
        if initial and self._guard(meta.get, _AUDIT_INDEXED) is None:
            self._index_audit()
        self._outbox_seq = self._outbox_floor
        self._dead_count = sum(1 for _ in self._scan("dead", b"", None))
        for key, value in self._scan("outbox", b"", None):
            seq = _read64(key)[0]
            self._outbox.add(seq, [len(value)])
            self._outbox_seq = max(self._outbox_seq, seq)

    def _index_audit(self) -> None:
        """Build ``idx_audit`` for a store written before it existed (once: ``meta``
        ``audit_index`` marks it done; every commit since keeps it)."""
        handles = self._live(self._handles)
        batch, count, written = WriteBatch(raw_mode=True), 0, 0
        for key, value in self._scan("audit", b"", None):
            if b'"order_id":"' not in value:
                continue
            order_id = orjson.loads(value).get("order_id")
            if order_id and "\0" not in order_id:
                batch.put(key[:-8] + order_id.encode() + b"\0" + key[-8:], b"", handles["idx_audit"])
                count += 1
            if count - written >= 10_000:
                self._write(batch, "indexing the audit trail")
                batch, written = WriteBatch(raw_mode=True), count
                log.info("indexing the audit trail by order: %d records", count)
        batch.put(_AUDIT_INDEXED, b"1", handles["meta"])
        self._write(batch, "indexing the audit trail")
        if count:
            log.info("indexed the audit trail by order: %d records", count)

    # -- in-memory state kept current by commit ---------------------------------------

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
            for name, raw_key, raw in step.raw:  # retention deleted these orders
                if name == "orders" and raw is None:
                    tenant_bytes, _, id_bytes = raw_key.partition(b"\0")
                    cache.pop((tenant_bytes.decode(), id_bytes.decode()), None)
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


__all__ = ["StoreRecovery"]
