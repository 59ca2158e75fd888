"""The durable mark: the newest RocksDB write known durable, kept beside the database.

RocksDB replays its write-ahead log in point-in-time mode: it stops at the first record it
cannot read and drops everything after it, silently. That is right for a torn tail (a
batch being written when the power went, never acknowledged), and wrong when the log was
truncated or garbled after the fact (a bad disk, a careless copy): acknowledged steps
vanish and nothing says so. RocksDB keeps no record of what it had fsynced, so the store
keeps one.

``GATEWAY-DURABLE`` in the store directory holds 16 bytes: ``be64(seq)`` and
``be64(seq ^ MAGIC)``, where ``seq`` is RocksDB's latest sequence number right after a WAL
fsync (``sync = "group"``: after every ``commit``; both policies: at ``close``). The file is
rewritten in place with one ``pwrite`` and never fsynced: a lost update only leaves an
older, lower mark, and the mark is only ever written after the data it counts is durable,
so it is a lower bound of what the log must give back. At open, a recovered sequence
number below the mark means acknowledged writes were lost: the store refuses to open
(``gateway._store.check``). A damaged mark (the two halves disagree) is ignored with a
warning. RocksDB ignores files it does not know; a checkpoint does not copy it, so a
restored store starts without one.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

log = logging.getLogger("gateway._store.store")

MARK_FILE = "GATEWAY-DURABLE"
_MAGIC = 0x6761_7465_7761_7921  # "gateway!"
_PAIR = struct.Struct(">QQ")


def read_mark(store_path: Path) -> int | None:
    """The durable mark of the store at ``store_path``; ``None`` without a (readable) one."""
    try:
        raw = (store_path / MARK_FILE).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the durable mark %s: %s", store_path / MARK_FILE, exc)
        return None
    if len(raw) != _PAIR.size:
        log.warning("durable mark %s is damaged (size %d): ignored", store_path / MARK_FILE, len(raw))
        return None
    seq, check = _PAIR.unpack(raw)
    if seq ^ _MAGIC != check:
        log.warning("durable mark %s is damaged: ignored", store_path / MARK_FILE)
        return None
    return int(seq)


class DurableMark:
    """The open mark file of one store; ``write`` is one ``pwrite`` (no fsync, see module).

    Failures are logged, never raised: the mark guards the next open, it must not fail a
    commit that is already durable.
    """

    def __init__(self, store_path: Path) -> None:
        self.path = store_path / MARK_FILE
        self._fd: int | None = None
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("cannot open the durable mark %s: %s (lost WAL writes will go unnoticed)", self.path, exc)

    def __repr__(self) -> str:
        return f"<DurableMark {str(self.path)!r} {'open' if self._fd is not None else 'closed'}>"

    def write(self, seq: int) -> None:
        """Record ``seq`` (RocksDB's latest sequence number, already durable)."""
        if self._fd is None:
            return
        try:
            os.pwrite(self._fd, _PAIR.pack(seq, seq ^ _MAGIC), 0)
        except OSError as exc:
            log.warning("cannot update the durable mark %s: %s", self.path, exc)

    def close(self, fsync: bool = False) -> None:
        """Close the file (idempotent); ``fsync`` it first at a clean close."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if fsync:
                os.fsync(fd)
        except OSError as exc:
            log.warning("cannot fsync the durable mark %s: %s", self.path, exc)
        finally:
            os.close(fd)


__all__ = ["MARK_FILE", "DurableMark", "read_mark"]
