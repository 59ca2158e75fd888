"""Administration of the running gateway through the local API (admin token of tenant ``*``).

Routes::

    POST /api/v1/admin/backup  {"dir": "/abs/path"}   admin, ``*``
        a consistent backup of the live store (RocksDB checkpoint, buyer salt, manifest:
        ``gateway._store.backup``) taken in a worker thread while ingest goes on; 200 with
        the manifest's figures (``files`` summarised as ``file_count`` and ``bytes``) once
        it is complete on disk. 400 ``bad_dir``: not absolute, inside the data directory,
        or exists and is not empty; 409 ``backup_running``: one backup at a time; 503: the
        store failed (the partial directory is removed).

The directory is written by the gateway's own user (``edge-gateway`` under systemd): it must
be able to create it. ``gateway backup DIR`` calls this route when the gateway runs
(``gateway._appliance.backup``). The call is recorded in the audit trail (``_gateway``).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import orjson
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._errors import MalformedEventError, PayloadTooLargeError
from gateway._pipeline.salt import KIND as SALT_KIND
from gateway._pipeline.salt import RECORD as SALT_RECORD
from gateway._server.http import Protect, error_response, json_response, read_body
from gateway._server.services import Services
from gateway._store.backup import BackupError, check_target, take_backup

log = logging.getLogger(__name__)

BACKUP_PATH = "/api/v1/admin/backup"
_BODY_BYTES = 16 * 1024


def admin_routes(services: Services, protected: Protect) -> list[Route]:
    """The administration routes bound to ``services``, each behind ``protected`` (admin)."""
    one_backup = trio.CapacityLimiter(1)

    async def backup(request: Request) -> Response:
        try:
            body = orjson.loads(await read_body(request, _BODY_BYTES, request.headers.get("content-length")) or b"{}")
        except (orjson.JSONDecodeError, PayloadTooLargeError, MalformedEventError) as exc:
            return error_response(400, "bad_request", f'body must be JSON {{"dir": "/abs/path"}}: {exc}',
                                  "请求体必须是 JSON：{\"dir\": \"/绝对路径\"}")
        text = body.get("dir") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text or "\0" in text:
            return error_response(400, "bad_dir", 'give {"dir": "/abs/path"}: a new or empty directory',
                                  "请给出备份目录（绝对路径，新目录或空目录）")
        target = Path(text)
        settings = services.settings
        try:
            check_target(target, settings.data_path)
        except BackupError as exc:
            return error_response(400, "bad_dir", str(exc), "备份目录不可用：需绝对路径、不在数据目录内、且为新目录或空目录")
        if one_backup.borrowed_tokens:
            return error_response(409, "backup_running", "a backup is already running: wait for it to finish",
                                  "已有备份正在进行，请稍后再试")
        record = services.store.get_record("", SALT_KIND, SALT_RECORD)
        salt_check = record.get("check") if record and record.get("salted") else None
        take = partial(take_backup, services.store, target, gateway_id=settings.gateway.id, taken="online",
                       salt_file=settings.buyer_salt_path, salt_check=salt_check, data_dir=settings.data_path,
                       progress=lambda line: log.info("backup: %s", line))
        try:
            async with one_backup:
                manifest = await trio.to_thread.run_sync(take)
        except BackupError as exc:
            log.error("backup into %s failed: %s", target, exc)
            return error_response(503, "backup_failed", f"{exc}: check the directory's disk and permissions, then "
                                  "try again", "备份失败：请检查目标磁盘空间和权限后重试", {"Retry-After": "5"})
        files = manifest.pop("files")
        reply = {**manifest, "dir": str(target), "file_count": len(files),
                 "bytes": sum(f["size"] for f in files.values())}
        request.state.audit = {"dir": str(target), "rocksdb_seq": manifest["rocksdb_seq"]}
        return json_response(reply)

    return [Route(BACKUP_PATH, protected(backup, "admin"), methods=["POST"])]


__all__ = ["BACKUP_PATH", "admin_routes"]
