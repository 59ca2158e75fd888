"""The store's foundation: value types, key encoding, RocksDB options, and ``StoreBase``.

``StoreBase`` holds the state every part of ``gateway._store.store.Store`` shares and the low-level
reads and writes; ``reads`` and ``outbox`` build on it.

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
    idx_audit      T 0 order_id(utf-8) 0 be64(audit_seq)       b""  (an order's audit records)
    dead           be64(outbox_seq)                           {"outbox_seq", "event": outbox record,
                                                              "status", "response", "batch_id",
                                                              "at_ms"} (refused by the upstream)
    packline       kind 0 T 0 record_id(utf-8)                 pack-line record (sessions, print jobs,
                                                              catalog, stock, alerts...); T may be
                                                              empty (records of no tenant)
    meta           b"format"                                  b"1" (refused if different)
                   b"outbox_floor"                            be64(highest outbox seq deleted)
                   b"buyer_index_newest"                      be64(newest time_ms in idx_buyer)
                   b"audit_index"                             b"1": idx_audit covers every audit
                                                              record (built at open otherwise)
                   T 0 b"quarantine_floor"                    be64(highest q_seq released)
                   T 0 b"audit_floor"                         ``AuditAnchor``: the linked chain starts
                                                              at "floor" (retention pruned the records
                                                              before it but "kept" ones, vouched for
                                                              by "kept_digest"); "at_seq" is the audit
                                                              record that says so
                                                              (``gateway._store.retention``)

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
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator
from itertools import islice
from typing import Any, NamedTuple

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

from gateway._errors import StoreError, StoreLockedError
from gateway._model import OrderState
from gateway._store.mark import DurableMark
from gateway._store.values import OutboxLedger, StoreSettings

log = logging.getLogger("gateway._store.store")  # one logger for the whole store

FORMAT_VERSION = b"1"
COLUMN_FAMILIES = ("orders", "events", "audit", "outbox", "dead", "quarantine", "dedup",
                   "idx_buyer", "idx_waybill", "meta", "packline", "idx_audit")
_POINT_LOOKUP = frozenset({"orders", "dedup", "idx_waybill", "meta", "packline"})  # get bloom filters
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
_AUDIT_INDEXED = b"audit_index"
_BUYER_GENERATION = 100_000  # buyers remembered per generation (two generations are kept)
_QUARANTINE_FLOOR = b"quarantine_floor"
_AUDIT_FLOOR = b"audit_floor"


NO_KEPT = hashlib.sha256(b"").hexdigest()


class AuditAnchor(NamedTuple):
    """Where a tenant's audit chain starts (``meta`` ``T 0 audit_floor``).

    Attributes:
        floor: the first seq of the linked chain; records before it were pruned by retention,
            except ``kept`` records of orders retention keeps (verified one by one, and as a set
            by ``kept_digest``: sha256 over ``"<seq>:<hash>\\n"`` of each, in seq order).
        prev: the hash the record at ``floor`` links to (a pruned record's).
        at_seq: the ``retention`` audit record that declared this anchor (it vouches for it).
    """

    floor: int = 1
    prev: str = ""
    at_seq: int = 0
    kept: int = 0
    kept_digest: str = NO_KEPT


class StoreBase:
    """The store's state and its low-level RocksDB access (chunked scans, guarded calls,
    writes with the WAL fsync). Instances are ``gateway._store.store.Store``; see there."""

    settings: StoreSettings
    _db: Rdict | None
    _cfs: dict[str, Rdict] | None
    _handles: dict[str, Any] | None
    _write_options: WriteOptions
    _sync_wal: bool
    _unsynced: WriteOptions
    _write_lock: threading.Lock
    _memory_lock: threading.Lock
    _prefixes: dict[str, bytes]
    _event_seq: dict[str, int]
    _audit_seq: dict[str, int]
    _audit_head: dict[str, str]
    _quarantine_seq: dict[str, int]
    _quarantine_count: dict[str, int]
    _outbox_seq: int
    _outbox_floor: int
    _outbox: OutboxLedger
    _dead_count: int
    _closed: bool
    _waiting: dict[tuple[str, str], list[int]]
    _waiting_of: dict[tuple[str, int], str]
    _buyers: set[tuple[str, int]]
    _buyers_old: set[tuple[str, int]]
    _buyers_since_ms: int
    _buyers_complete_after_ms: int
    _buyer_index_newest: int
    _orders: OrderedDict[tuple[str, str], OrderState]
    _order_writes: int
    _recent: dict[str, set[int]]
    _recent_old: dict[str, set[int]]
    _recent_size: int
    _mark: DurableMark | None

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
            if self._mark is not None:  # what a damaged WAL must still give back: gateway._store.mark
                self._note_durable()

    def _note_durable(self) -> None:
        """Record RocksDB's latest sequence number (durable now) in the durable mark."""
        if self._db is None or self._mark is None:
            return
        try:
            seq = self._db.latest_sequence_number()
        except Exception as exc:  # rocksdict raises bare Exception
            log.warning("cannot read the latest sequence number: %s", exc)
            return
        self._mark.write(seq)

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

    def audit_anchor(self, tenant: str) -> AuditAnchor:
        """Where a tenant's audit chain starts now, and what retention kept before that start
        (``gateway._store.retention``); ``AuditAnchor()`` when nothing was ever pruned."""
        value = self._get("meta", tenant.encode() + b"\0" + _AUDIT_FLOOR)
        if value is None:
            return AuditAnchor()
        anchor = orjson.loads(value)
        return AuditAnchor(int(anchor["floor"]), str(anchor["prev"]), int(anchor["at_seq"]),
                           int(anchor.get("kept", 0)), str(anchor.get("kept_digest", NO_KEPT)))

    def _read_prefix(self, tenant: str) -> bytes | None:
        """``T 0`` for reads; ``None`` for a name no tenant can have."""
        prefix = self._prefixes.get(tenant)
        if prefix is None and isinstance(tenant, str) and _TENANT.fullmatch(tenant):
            prefix = tenant.encode() + b"\0"
        return prefix

def _head_hash(value: bytes) -> str:
    """The ``hash`` of a stored audit value (its fixed suffix), ``""`` if unreadable."""
    if value[-75:-66] == _HASH_MARK and value.endswith(b'"}'):
        return value[-66:-2].decode()
    log.warning("last audit record is damaged; run verify_audit_chain")
    return ""


_KIND = re.compile(r"[a-z0-9_]{1,32}")


def record_prefix(kind: str, tenant: str) -> bytes:
    """``kind 0 T 0``: the key prefix of a kind's records of one tenant (``""``: of no tenant)."""
    if not _KIND.fullmatch(kind):
        raise ValueError(f"invalid record kind: {kind!r}")
    if tenant and not _TENANT.fullmatch(tenant):
        raise ValueError(f"invalid tenant name: {tenant!r}")
    return kind.encode() + b"\0" + tenant.encode() + b"\0"


def _upper(prefix: bytes) -> bytes:
    """The exclusive upper bound of keys starting with ``prefix`` (which ends in ``\\0``)."""
    return prefix[:-1] + b"\x01"


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
    options.set_paranoid_checks(True)  # RocksDB's default, stated: damage found is an error, never skipped
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
            raise StoreLockedError(f"store is locked by another process (or already open): {path}: {exc}") from exc
        raise StoreError(f"cannot open store {path}: {exc}") from exc

