"""Store format versions: a newer store is refused, an older one is migrated in place.

The store records its format in ``meta`` ``b"format"`` (``FORMAT_VERSION``, ASCII digits).
At open (``StoreRecovery._recover``):

* no format yet (a new store): the current one is written;
* the current format: nothing to do;
* a **newer** format (written by a newer gateway): refused with ``StoreFormatError`` before
  anything is written. The way out is to run that newer gateway (upgrade), never to
  downgrade a store; or to restore a backup this version made;
* an **older** format: first an automatic backup (a RocksDB checkpoint, beside the store:
  ``<store>.before-migrate-v<old>-<UTC time>``; hard links where it can, so it is quick and
  small), then each step of ``MIGRATIONS`` in turn, ``N -> N+1``, each followed by a
  durable write of ``N+1`` as the format, so a crash mid-way resumes at the step it was in
  (a step must therefore be safe to run again on a store it half-migrated);
* no step registered for a version, or a format that is not a number: refused.

Adding a migration
------------------
When a change of the key layout or of a stored value needs existing stores rewritten:

1. bump ``FORMAT_VERSION`` in ``gateway._store.base`` (``b"1"`` -> ``b"2"``);
2. write ``def _v1_to_v2(store: StoreBase) -> None`` here: it gets the open store before its
   counters are rebuilt, reads with ``store._scan``/``store._get`` and writes with
   ``store._write(batch, "migrating to format 2")`` in bounded batches (10,000 records);
   it must be idempotent (see above);
3. register it: ``MIGRATIONS[1] = _v1_to_v2``;
4. test it on a store written in format 1 (``tests/store/test_migrate.py`` shows how to make
   one) and say in the README's upgrade notes how long it takes per million records.

There is no real migration yet: format 1 is the first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from rocksdict import Checkpoint, WriteBatch

from gateway._errors import StoreError
from gateway._store.base import FORMAT_VERSION, StoreBase

log = logging.getLogger("gateway._store.store")

#: One step: takes the open store from format N (the key) to N + 1.
Migration = Callable[[StoreBase], None]
MIGRATIONS: dict[int, Migration] = {}


class StoreFormatError(StoreError):
    """The store's format cannot be used by this gateway (newer, unknown, or no migration).

    Attributes:
        found: the format the store records; ``wanted``: this gateway's.
    """

    def __init__(self, path: Path, found: bytes, message: str) -> None:
        self.path, self.found, self.wanted = path, found, FORMAT_VERSION
        super().__init__(message)


def format_number(raw: bytes) -> int | None:
    """The format as a number, ``None`` when it is not ASCII digits."""
    return int(raw) if raw.isdigit() and len(raw) <= 9 else None


def refuse_newer(path: Path, stored: bytes) -> int | None:
    """The older format to migrate from (``None``: current). Nothing is written.

    Raises:
        StoreFormatError: the format is newer than ``FORMAT_VERSION`` or not a number.
    """
    current = int(FORMAT_VERSION)
    found = format_number(stored)
    if found is None:
        raise StoreFormatError(path, stored, f"store format {stored!r} of {path} is not one this gateway knows "
                               f"(it writes format {current}): this is not a gateway store, or it is damaged; "
                               "restore a backup (`gateway restore`). 存储格式无法识别：请从备份恢复。")
    if found > current:
        raise StoreFormatError(path, stored, f"store format {found} of {path} is newer than this gateway's format "
                               f"{current}: it was written by a newer gateway version. Upgrade the gateway to that "
                               "version or later (a store is never downgraded), or restore a backup this version "
                               f"made (`gateway restore`). 存储格式 {found} 比本网关（格式 {current}）新："
                               "请升级网关，不要降级。")
    return found if found < current else None


def migrate(store: StoreBase, from_version: int) -> Path:
    """Back the store up beside itself, then run every step from ``from_version`` to the
    current format (see the module docstring). Returns the backup's directory.

    Raises:
        StoreFormatError: a step is missing (nothing was changed).
        StoreError: the backup or a step failed (the store is left at the last format
            written; the backup is kept).
    """
    path, current = store.settings.path, int(FORMAT_VERSION)
    missing = [v for v in range(from_version, current) if v not in MIGRATIONS]
    if missing:
        raise StoreFormatError(path, str(from_version).encode(), f"store format {from_version} of {path} cannot be "
                               f"migrated to {current}: no migration from format {missing[0]}; install the gateway "
                               "version between them first, or restore a backup made by this version")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    backup = path.with_name(f"{path.name}.before-migrate-v{from_version}-{stamp}")
    log.warning("store format %d is older than %d: backing it up to %s before migrating", from_version, current,
                backup)
    try:
        Checkpoint(store._live_db()).create_checkpoint(str(backup))
    except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
        raise StoreError(f"cannot back up the store to {backup} before migrating it (nothing was changed): {exc}; "
                         "free some disk space and start again") from exc
    handles = store._live(store._handles)
    for version in range(from_version, current):
        started = time.monotonic()
        MIGRATIONS[version](store)
        batch = WriteBatch(raw_mode=True)
        batch.put(b"format", str(version + 1).encode(), handles["meta"])
        store._write(batch, f"recording format {version + 1}")
        if not store._sync_wal:
            store._guard(store._live_db().flush_wal, True)
        log.warning("store migrated from format %d to %d in %.1f s", version, version + 1,
                    time.monotonic() - started)
    log.warning("store migration done; the store as it was is kept in %s (delete it once the gateway runs well)",
                backup)
    return backup


__all__ = ["MIGRATIONS", "Migration", "StoreFormatError", "format_number", "migrate", "refuse_newer"]
