"""``gateway backup`` and ``gateway restore``: consistent backups of the live store, and their restore.

Backup (``backup_store``): when the gateway runs, through its local API with the admin token
(``POST /api/v1/admin/backup``, ``gateway._server.admin_api``): the daemon's own process
takes a RocksDB checkpoint in a worker thread while ingest goes on. When it is stopped,
directly. Either way the same directory results (``gateway._store.backup``: ``store/``,
``buyer-salt``, ``manifest.json``).

Restore (``restore_store``), gateway stopped only (refused while ``/livez`` answers or the
store's ``LOCK`` is held):

1. every file is checked against the manifest (size, SHA-256);
2. the checkpoint is copied into ``<data>/store.restoring-<time>`` and opened there (the
   backup itself is never written); every tenant's audit chain is verified and its seqs
   and head must equal the manifest's, as must the outbox seq;
3. the salt file's check must be the one the manifest recorded;
4. the store in use moves aside to ``<data>/store.before-restore-<time>`` (never deleted:
   remove it yourself once the restored gateway runs well), the copy takes its place, and
   the salt file is put back (a different one in place moves aside the same way).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import core_ext
from gateway._errors import GatewayError
from gateway._pipeline.salt import KIND as SALT_KIND
from gateway._pipeline.salt import RECORD as SALT_RECORD
from gateway._pipeline.salt import salt_check
from gateway._server.admin_api import BACKUP_PATH
from gateway._server.local_client import LocalGateway
from gateway._settings import Settings
from gateway._store import Store, StoreSettings, open_store, store_settings
from gateway._store.backup import SALT_FILE, STORE_DIR, BackupError, summary, take_backup, verify_backup

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
#: A backup through the API may take this long before the CLI gives up waiting.
API_BACKUP_TIMEOUT_S = 3600.0


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def gateway_running(settings: Settings) -> str | None:
    """Why the gateway looks like it runs on this data directory, or ``None``."""
    http = settings.http
    if http.port:
        host = f"[{http.host}]" if ":" in http.host else http.host
        try:
            if httpx.get(f"http://{host}:{http.port}/livez", timeout=2.0).status_code == 200:
                return f"the gateway answers at http://{host}:{http.port}/livez"
        except httpx.HTTPError:
            pass
    lock = store_settings(settings).path / "LOCK"
    if lock.exists():
        descriptor = os.open(lock, os.O_RDWR)
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(descriptor, fcntl.LOCK_UN)
        except OSError:
            return f"another process holds {lock}"
        finally:
            os.close(descriptor)
    return None


def store_salt_check(store: Store) -> str | None:
    """The salt check the store recorded (``None``: its keys are not salted)."""
    record = store.get_record("", SALT_KIND, SALT_RECORD)
    return record.get("check") if record and record.get("salted") else None


def backup_store(settings: Settings, target: Path, progress: Progress) -> dict[str, Any]:
    """Back up the store into ``target``: through the running gateway, else directly.

    Returns:
        The manifest's figures (``file_count`` and ``bytes`` instead of ``files``).

    Raises:
        GatewayError: the directory is refused, the gateway answered an error, or the store
            cannot be opened (a gateway holds it but its API does not answer).
    """
    target = Path(os.path.abspath(target))
    gateway = LocalGateway(settings, timeout_s=API_BACKUP_TIMEOUT_S, store_fallback=False)
    try:
        if gateway.client is not None:
            progress(f"the gateway runs: asking it for a checkpoint into {target} (ingest goes on)")
            reply = gateway.client.post(BACKUP_PATH, json={"dir": str(target)})
            body = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}
            if reply.status_code != 200:
                raise GatewayError(f"the gateway refused the backup (HTTP {reply.status_code}): "
                                   f"{body.get('error', reply.text[:200])}")
            result: dict[str, Any] = body
            return result
    finally:
        gateway.close()
    progress(f"the gateway is stopped: opening the store {store_settings(settings).path} directly")
    with open_store(store_settings(settings)) as store:
        manifest = take_backup(store, target, gateway_id=settings.gateway.id, taken="offline",
                               salt_file=settings.buyer_salt_path, salt_check=store_salt_check(store),
                               data_dir=settings.data_path, progress=progress)
    files = manifest.pop("files")
    return {**manifest, "dir": str(target), "file_count": len(files), "bytes": sum(f["size"] for f in files.values())}


def _check_restored(copy: Path, manifest: dict[str, Any], progress: Progress) -> None:
    """Open the copy (not the backup) and hold it against the manifest."""
    with open_store(StoreSettings(path=copy)) as store:
        found = summary(store)
        problems = []
        if found["store_format"] != manifest["store_format"]:
            problems.append(f"format {found['store_format']}, the manifest says {manifest['store_format']}")
        for tenant, expected in sorted(manifest["tenants"].items()):
            progress(f"verifying the audit chain of tenant {tenant} ({expected['last_audit_seq']} records)")
            result = store.verify_audit_chain(tenant)
            if not result.ok:
                problems.append(f"tenant {tenant}: audit chain broken at seq {result.first_bad_seq}: {result.reason}")
            if found["tenants"].get(tenant) != expected:
                problems.append(f"tenant {tenant}: {found['tenants'].get(tenant)} instead of {expected}")
        for tenant in sorted(set(found["tenants"]) - set(manifest["tenants"])):
            problems.append(f"tenant {tenant} is in the store but not in the manifest")
        if found["outbox_seq"] != manifest["outbox_seq"]:
            problems.append(f"outbox seq {found['outbox_seq']}, the manifest says {manifest['outbox_seq']}")
    if problems:
        raise BackupError("the backup's store does not match its manifest: " + "; ".join(problems[:10]))


def _check_salt(source: Path, manifest: dict[str, Any]) -> str | None:
    """The backup's salt text, checked against the manifest (``None``: there is none)."""
    salt = manifest["buyer_salt"]
    if not salt.get("file"):
        log.warning("the backup holds no buyer salt: %s", salt.get("reason"))
        return None
    text: str = (source / salt["file"]).read_text(encoding="utf-8").strip()
    if salt.get("check"):
        core_ext.set_buyer_salt(text)
        try:
            check = salt_check()
        finally:
            core_ext.set_buyer_salt("")
        if check != salt["check"]:
            raise BackupError(f"the backup's {SALT_FILE} is not the salt its store was made with")
    return text


def restore_store(settings: Settings, source: Path, progress: Progress,
                  confirm: Callable[[str], bool]) -> dict[str, Any]:
    """Restore the backup in ``source`` as the store of ``settings`` (see the module docstring).

    Args:
        confirm: asked before a store in use is moved aside; ``False`` stops with nothing changed.

    Returns:
        ``{"store", "moved_aside", "salt", "salt_moved_aside", "tenants"}``.

    Raises:
        GatewayError: the gateway runs, the backup is damaged or does not match its
            manifest, or the operator said no. Nothing in use was changed.
    """
    running = gateway_running(settings)
    if running:
        raise GatewayError(f"the gateway is running ({running}): stop it first (systemctl stop edge-gateway), "
                           "then restore. 网关正在运行：请先停止网关再恢复。")
    source = Path(os.path.abspath(source))
    progress(f"checking every file of {source} against its manifest")
    manifest = verify_backup(source, progress)
    salt = _check_salt(source, manifest)
    live = store_settings(settings).path
    stamp = _stamp()
    copy = settings.data_path / f"store.restoring-{stamp}"
    settings.data_path.mkdir(parents=True, exist_ok=True)
    progress(f"copying the checkpoint into {copy}")
    shutil.copytree(source / STORE_DIR, copy)
    try:
        _check_restored(copy, manifest, progress)
        if live.exists() and any(live.iterdir()) and not confirm(
                f"replace the store {live} by the backup of {manifest['created_at']}? (the one in use is kept "
                f"as {settings.data_path}/store.before-restore-{stamp})"):
            raise GatewayError("restore cancelled: nothing was changed")
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    aside = None
    if live.exists():
        aside = settings.data_path / f"store.before-restore-{stamp}"
        live.rename(aside)
    copy.rename(live)
    salt_aside = None
    if salt is not None:
        path = settings.buyer_salt_path
        if path.exists() and path.read_text(encoding="utf-8").strip() != salt:
            salt_aside = path.with_name(f"{path.name}.before-restore-{stamp}")
            path.rename(salt_aside)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(salt + "\n")
    return {"store": str(live), "moved_aside": str(aside) if aside else None,
            "salt": str(settings.buyer_salt_path) if salt is not None else None,
            "salt_moved_aside": str(salt_aside) if salt_aside else None, "tenants": manifest["tenants"]}


__all__ = ["backup_store", "gateway_running", "restore_store", "store_salt_check"]
