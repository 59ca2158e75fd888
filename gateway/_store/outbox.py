"""The store's outbox side: acknowledged deletes, dead letters and their requeue, reading.

Part of ``gateway._store.store.Store`` (``StoreOutbox`` is one of its bases). The forwarder reads
with ``read_outbox`` (only up to the last fsynced seq) and deletes what the upstream
acknowledged; a refused event moves to the ``dead`` keyspace atomically.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from rocksdict import (
    WriteBatch,
)

from gateway._store.base import (
    _OUTBOX_FLOOR,
    StoreBase,
    _be64,
    _read64,
)
from gateway._store.values import OutboxStats


class StoreOutbox(StoreBase):
    """Outbox and dead-letter methods of ``Store``."""

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

    def outbox_size(self) -> tuple[int, int]:
        """``(records, bytes)`` of the live outbox: ``outbox_stats`` without the oldest seq,
        for the backpressure check on every submission."""
        with self._memory_lock:
            ledger = self._outbox
            return ledger.count, ledger.bytes

