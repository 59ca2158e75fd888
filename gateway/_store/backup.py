"""Backups of the live store: a RocksDB checkpoint, the buyer salt and a manifest.

A backup is a directory::

    DIR/store/           a RocksDB checkpoint (``rocksdict.Checkpoint``): a consistent copy of
                         the database as of one instant, taken while commits go on (table files
                         are hard-linked when DIR is on the store's filesystem, else copied;
                         the live WAL is copied)
    DIR/buyer-salt       the install's buyer-key salt (mode 0600), when it has one
    DIR/manifest.json    what it is and how to check it (below)

The manifest (``manifest_version`` 1)::

    created_at, created_at_ms   when the checkpoint was taken (UTC)
    gateway_id, store_format    whose store, in which format
    taken                       "online" (through the running gateway's API) or "offline"
    rocksdb_seq                 RocksDB's newest sequence number in the checkpoint
    tenants                     {tenant: {last_event_seq, last_audit_seq, audit_head}}
    outbox_seq                  the newest outbox seq
    buyer_salt                  {"file": "buyer-salt", "check": <the store's salt check>} or
                                {"file": null, "reason": why there is none}
    files                       {relative path: {"size", "sha256"}} of every file but the manifest

Every figure is read from the checkpoint itself (opened read-only), never from the live
store: what the manifest says is what the backup holds. Events acknowledged before the
checkpoint began are in it (each commit is in the WAL before it is acknowledged); a few
committed during it may be too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from rocksdict import AccessType, Checkpoint, Options, Rdict

from gateway._errors import StoreError
from gateway._store.base import _OUTBOX_FLOOR, COLUMN_FAMILIES, FORMAT_VERSION, StoreBase, _head_hash, _read64
from gateway._store.store import Store
from gateway._store.values import StoreSettings

log = logging.getLogger("gateway._store.store")

MANIFEST = "manifest.json"
STORE_DIR = "store"
SALT_FILE = "buyer-salt"
MANIFEST_VERSION = 1
Progress = Callable[[str], None]


class BackupError(StoreError):
    """A backup cannot be taken, or a backup directory does not check out."""


def check_target(target: Path, data_dir: Path | None = None) -> None:
    """Refuse a backup directory that is relative, inside the data directory, or not empty.

    Raises:
        BackupError: what is wrong with it, and what to give instead.
    """
    if not target.is_absolute():
        raise BackupError(f"backup directory {str(target)!r} is not an absolute path: give one starting with /")
    resolved = target.resolve()
    if data_dir is not None:
        data = data_dir.resolve()
        if resolved == data or data in resolved.parents:
            raise BackupError(f"backup directory {target} is inside the data directory {data_dir}: put backups "
                              "elsewhere (best on another disk)")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"backup directory {target} exists and is not empty: give a new or empty directory")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
        os.fsync(handle.fileno())  # the backup is on disk before the manifest says it is complete
    return digest.hexdigest()


def file_checksums(root: Path, progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file under ``root`` but the manifest."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)
    total = sum(p.stat().st_size for p in files)
    done, result = 0, {}
    for path in files:
        size = path.stat().st_size
        result[path.relative_to(root).as_posix()] = {"size": size, "sha256": _sha256(path)}
        done += size
        if progress is not None and size > 16 * 1024**2:
            progress(f"checksums: {done / 1024**2:.0f} of {total / 1024**2:.0f} MiB")
    return result


def open_read_only(path: Path) -> Store:
    """A store directory (a checkpoint) opened read-only: nothing in it is written. Its
    counters are not rebuilt; use ``summary`` and the read methods."""
    try:
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only(False),
                   column_families={name: Options(raw_mode=True) for name in COLUMN_FAMILIES})
    except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
        raise StoreError(f"cannot open {path} read-only: {exc}") from exc
    return Store(db, StoreSettings(path=path))


def summary(store: StoreBase) -> dict[str, Any]:
    """The figures a manifest records, read from ``store``: format, RocksDB sequence number,
    per-tenant last event and audit seqs with the chain head, and the newest outbox seq."""
    tenants: dict[str, dict[str, Any]] = {}
    for tenant, key, _ in store._tenant_tails("events"):
        tenants.setdefault(tenant, {"last_event_seq": 0, "last_audit_seq": 0, "audit_head": ""})
        tenants[tenant]["last_event_seq"] = _read64(key, len(tenant) + 1)[0]
    for tenant, key, value in store._tenant_tails("audit"):
        entry = tenants.setdefault(tenant, {"last_event_seq": 0, "last_audit_seq": 0, "audit_head": ""})
        entry["last_audit_seq"] = _read64(key, len(tenant) + 1)[0]
        entry["audit_head"] = _head_hash(value)
    floor = store._get("meta", _OUTBOX_FLOOR)
    outbox_seq = _read64(floor)[0] if floor else 0
    iterator = store._live(store._cfs)["outbox"].iter()
    iterator.seek_to_last()
    if iterator.valid():
        outbox_seq = max(outbox_seq, _read64(iterator.key())[0])
    del iterator
    stored = store._get("meta", b"format")
    return {"store_format": (stored or FORMAT_VERSION).decode(errors="replace"),
            "rocksdb_seq": store._guard(store._live_db().latest_sequence_number),
            "tenants": dict(sorted(tenants.items())), "outbox_seq": outbox_seq}


def take_backup(store: Store, target: Path, *, gateway_id: str, taken: str, salt_file: Path | None,
                salt_check: str | None, data_dir: Path | None = None, progress: Progress | None = None
                ) -> dict[str, Any]:
    """Checkpoint the open ``store`` into ``target/store``, copy the salt, write the manifest.

    Blocking (seconds to minutes: run it in a worker thread); commits go on meanwhile.

    Args:
        store: the live store.
        target: a new or empty absolute directory outside ``data_dir``.
        gateway_id, taken: recorded in the manifest (``taken``: "online" or "offline").
        salt_file: the buyer salt to copy (``None`` or missing: recorded as absent, loudly).
        salt_check: the store's record of the salt (``install/buyer_salt`` ``check``).
        progress: called with a line for each long part.

    Returns:
        The manifest written.

    Raises:
        BackupError: the target is refused, or the checkpoint or a copy failed (a partial
            target is removed when this call created it).
    """
    say = progress or (lambda line: log.info("backup: %s", line))
    check_target(target, data_dir)
    created = not target.exists()
    started_ms = time.time_ns() // 1_000_000
    try:
        target.mkdir(parents=True, exist_ok=True)
        say(f"checkpoint of {store.settings.path} into {target / STORE_DIR}")
        try:
            Checkpoint(store._live_db()).create_checkpoint(str(target / STORE_DIR))
        except Exception as exc:  # rocksdict raises bare Exception for RocksDB errors
            raise BackupError(f"the checkpoint failed: {exc}") from exc
        with open_read_only(target / STORE_DIR) as copy:
            figures = summary(copy)
        salt: dict[str, Any]
        if salt_file is not None and salt_file.is_file():
            descriptor = os.open(target / SALT_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(salt_file.read_bytes())
            salt = {"file": SALT_FILE, "check": salt_check}
        else:
            reason = (f"no buyer salt file at {salt_file}: this store's buyer keys are not salted" if salt_check is None
                      else f"the buyer salt file {salt_file} is MISSING although the store's keys were made with one: "
                      "this backup cannot find orders by phone after a restore unless that file is found")
            log.warning("backup: %s", reason)
            salt = {"file": None, "reason": reason}
        say("checksums of every file")
        manifest = {"manifest_version": MANIFEST_VERSION,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_ms / 1000)),
                    "created_at_ms": started_ms, "gateway_id": gateway_id, "taken": taken, **figures,
                    "buyer_salt": salt, "files": file_checksums(target, say)}
        partial = target / (MANIFEST + ".partial")
        partial.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.rename(target / MANIFEST)
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        raise
    say(f"backup complete: {target} ({len(manifest['tenants'])} tenants, RocksDB seq {manifest['rocksdb_seq']})")
    return manifest


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of the backup in ``source``.

    Raises:
        BackupError: no manifest (an incomplete backup), or not one this gateway reads.
    """
    try:
        manifest: dict[str, Any] = orjson.loads((source / MANIFEST).read_bytes())
    except FileNotFoundError as exc:
        raise BackupError(f"{source} holds no {MANIFEST}: not a backup, or one that did not finish") from exc
    except (OSError, orjson.JSONDecodeError) as exc:
        raise BackupError(f"cannot read {source / MANIFEST}: {exc}") from exc
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise BackupError(f"{source / MANIFEST} is manifest version {manifest.get('manifest_version')!r}; this "
                          f"gateway reads version {MANIFEST_VERSION}: restore it with the gateway that made it")
    return manifest


def verify_backup(source: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Check every file of the backup in ``source`` against its manifest; return the manifest.

    Raises:
        BackupError: a file is missing, has another size or checksum, or is not listed.
    """
    manifest = read_manifest(source)
    listed: dict[str, dict[str, Any]] = manifest["files"]
    found = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file() and p.name != MANIFEST}
    problems = [f"{name}: missing" for name in sorted(set(listed) - found)]
    problems += [f"{name}: not in the manifest" for name in sorted(found - set(listed))]
    done = 0
    for name, expected in sorted(listed.items()):
        path = source / name
        if name not in found:
            continue
        if path.stat().st_size != expected["size"]:
            problems.append(f"{name}: {path.stat().st_size} bytes, the manifest says {expected['size']}")
        elif _sha256(path) != expected["sha256"]:
            problems.append(f"{name}: SHA-256 differs from the manifest")
        done += expected["size"]
        if progress is not None and expected["size"] > 16 * 1024**2:
            progress(f"verified {done / 1024**2:.0f} MiB")
    if problems:
        raise BackupError(f"the backup in {source} is damaged: " + "; ".join(problems[:10])
                          + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""))
    return manifest


__all__ = ["MANIFEST", "SALT_FILE", "STORE_DIR", "BackupError", "check_target", "file_checksums", "open_read_only",
           "read_manifest", "summary", "take_backup", "verify_backup"]
