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
"""

from __future__ import annotations

import gc
import logging

import orjson
from rocksdict import Rdict, WriteBatch

from gateway._errors import StoreError
from gateway._store.base import (
    _AUDIT_INDEXED,
    _BUYER_NEWEST,
    _OUTBOX_FLOOR,
    _QUARANTINE_FLOOR,
    COLUMN_FAMILIES,
    FORMAT_VERSION,
    StoreBase,
    _head_hash,
    _open_db,
    _read64,
)
from gateway._store.migrate import migrate, refuse_newer
from gateway._store.values import OutboxLedger

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


__all__ = ["StoreRecovery"]
