"""The store's queries: orders, de-duplication, indexes, event log, quarantine and audit.

Part of ``gateway._store.store.Store`` (``StoreReads`` is one of its bases); callable from any
thread. Caches are read under the memory lock; RocksDB is read in chunks.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from gateway._model import OrderState
from gateway._store.base import (
    _SORTED,
    NO_KEPT,
    AuditAnchor,
    StoreBase,
    _be64,
    _be64x2,
    _read64,
    _upper,
    record_prefix,
)
from gateway._store.values import AuditVerification

log = logging.getLogger("gateway._store.store")


class StoreReads(StoreBase):
    """Read methods of ``Store``."""

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

        One order's records are found through ``idx_audit`` (a prefix scan and a get per
        record), not by scanning the chain; ``order_id=""`` (records of no order: catalog
        updates, station notes) scans the chain.
        """
        prefix = self._read_prefix(tenant)
        if prefix is None:
            return
        if order_id and "\0" not in order_id:  # "" (records of no order) are not indexed: scanned
            start = prefix + order_id.encode() + b"\0"
            for key, _ in self._scan("idx_audit", start, _upper(start)):
                value = self._get("audit", prefix + key[-8:])
                if value is not None:
                    yield orjson.loads(value)
            return
        needle = b'"order_id":' + orjson.dumps(order_id) if order_id is not None else b""
        for _, value in self._scan("audit", prefix, _upper(prefix)):
            if needle in value:
                record = orjson.loads(value)
                if order_id is None or record.get("order_id") == order_id:
                    yield record

    def verify_audit_chain(self, tenant: str) -> AuditVerification:
        """Recompute a tenant's audit chain and report the first bad or missing record.

        Where retention pruned the chain's start (``audit_anchor``), the records it kept before
        the floor are checked one by one and, as a set, against the anchor's digest; the chain
        is linked from the floor on, and the anchor must be the one its retention record says."""
        prefix = self._read_prefix(tenant)
        anchor = self.audit_anchor(tenant)
        prev, checked, expected = anchor.prev, 0, anchor.floor
        if prefix is not None:
            problem = self._kept_problem(prefix, anchor)
            if problem is not None:
                return problem
            for key, value in self._scan("audit", prefix + _be64(anchor.floor), _upper(prefix)):
                seq = _read64(key, len(prefix))[0]
                reason = _audit_problem(seq, expected, prev, value) or _anchor_problem(seq, anchor, value)
                if reason:
                    return AuditVerification(False, checked, min(seq, expected), reason)
                prev, checked, expected = value[-66:-2].decode(), checked + 1, seq + 1
            if anchor.at_seq and expected <= anchor.at_seq:
                return AuditVerification(False, checked, anchor.at_seq,
                                         f"the retention record {anchor.at_seq} is missing")
        written = self._audit_seq.get(tenant, 0)
        if expected - 1 < written:
            return AuditVerification(False, checked, expected,
                                     f"chain ends at seq {expected - 1} but {written} records were written")
        return AuditVerification(True, checked, None, "")

    def _kept_problem(self, prefix: bytes, anchor: AuditAnchor) -> AuditVerification | None:
        """The records retention kept before the floor: each one's own hash, and the set's digest."""
        digest, kept = hashlib.sha256(), 0
        for key, value in self._scan("audit", prefix, prefix + _be64(anchor.floor)):
            seq = _read64(key, len(prefix))[0]
            try:
                own_prev = orjson.loads(value).get("prev", "")
            except orjson.JSONDecodeError:
                own_prev = ""
            reason = _audit_problem(seq, seq, own_prev, value)
            if reason:
                return AuditVerification(False, kept, seq, f"kept record before the chain's start: {reason}")
            digest.update(b"%d:%s\n" % (seq, value[-66:-2]))
            kept += 1
        if (kept, digest.hexdigest()) != (anchor.kept, anchor.kept_digest):
            return AuditVerification(False, kept, anchor.floor, f"the {kept} records kept before the chain's start "
                                     f"are not the {anchor.kept} retention recorded")
        return None

    def quarantine_count(self, tenant: str | None = None) -> int:
        """Quarantined records held, for one tenant or all."""
        counts = self._quarantine_count
        return sum(counts.values()) if tenant is None else counts.get(tenant, 0)

    def iter_raw_orders(self, tenant: str) -> Iterator[tuple[bytes, bytes]]:
        """``(order_id bytes, stored value)`` of every order of ``tenant``, in key order,
        undecoded (a full scan, in chunks: for the operators' periodic computations)."""
        prefix = self._read_prefix(tenant)
        if prefix is None:
            return
        for key, value in self._scan("orders", prefix, _upper(prefix)):
            yield key[len(prefix):], value

    def get_record(self, tenant: str, kind: str, record_id: str) -> dict[str, Any] | None:
        """The pack-line record ``kind``/``record_id`` of ``tenant`` (``""``: of no tenant), or ``None``."""
        value = self._get("packline", record_prefix(kind, tenant) + record_id.encode())
        return orjson.loads(value) if value is not None else None

    def iter_records(self, kind: str, tenant: str | None = None,
                     id_prefix: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
        """``(tenant, record_id, value)`` of every ``kind`` record, in key order: of one
        tenant (``""`` for records of no tenant) or, with ``tenant=None``, of all of them;
        only ids starting with ``id_prefix`` when given."""
        if tenant is None:
            start = record_prefix(kind, "")[:-1]  # "kind 0": every tenant
            if id_prefix:
                raise ValueError("id_prefix needs a tenant")
        else:
            start = record_prefix(kind, tenant) + id_prefix.encode()
        stop = start + b"\xff" * 4 if id_prefix else _upper(start)
        for key, value in self._scan("packline", start, stop):
            _, tenant_bytes, record_id = key.split(b"\0", 2)
            yield tenant_bytes.decode(), record_id.decode(), orjson.loads(value)

    def tenants(self) -> list[str]:
        """Tenants that have at least one order, sorted."""
        return [tenant for tenant, _, _ in self._tenant_tails("orders")]




def _anchor_problem(seq: int, anchor: AuditAnchor, value: bytes) -> str:
    """Why the chain's start (``audit_anchor``) is not the one its retention record declared, or
    ``""``: the anchor lives outside the chain, so the record at ``anchor.at_seq`` vouches for it."""
    if seq != anchor.at_seq:
        return ""
    data = orjson.loads(value).get("data") or {}
    said = (data.get("floor"), data.get("kept", 0), data.get("kept_digest", NO_KEPT))
    if said != (anchor.floor, anchor.kept, anchor.kept_digest):
        return f"the chain's start ({anchor.floor}, {anchor.kept} kept before it) is not what retention record " \
               f"{anchor.at_seq} says ({said[0]!r}, {said[1]!r})"
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

