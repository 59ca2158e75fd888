"""Doctor checks of the box itself: the data directory and its disk, the open-files limit,
the secrets' file modes, the log file.

**Disk.** The outbox may grow to ``[store] outbox_max_bytes`` while the upstream is down,
and RocksDB needs room beyond what it stores (the WAL, memtable flushes, compactions
rewriting files before deleting the old ones): ``STORE_HEADROOM_BYTES``. Free space below
``outbox_max_bytes + STORE_HEADROOM_BYTES`` is a warning (a long upstream outage would fill
the disk before the outbox bound refuses webhooks); below ``STORE_HEADROOM_BYTES`` a failure
(the store may refuse its next write at any time).

**Open files.** The gateway needs one descriptor per client connection (``[http]
max_connections``) plus ``FILES_BESIDES_CONNECTIONS`` (RocksDB's tables and WAL, logs,
devices, outbound sockets; the same figure ``gateway._daemon`` uses). It raises its soft
limit up to the hard limit itself, so only a hard limit below the need is a failure.
"""

from __future__ import annotations

import os
import resource
import stat
import tempfile
from pathlib import Path
from typing import Any

from gateway._appliance.doctor_core import DoctorContext, Findings
from gateway._settings import Settings, TomlDocument

STORE_HEADROOM_BYTES = 512 * 1024**2
#: As ``gateway._daemon.FILES_BESIDES_CONNECTIONS`` (a test keeps them equal; the daemon is
#: above the appliance, so it cannot be imported from here).
FILES_BESIDES_CONNECTIONS = 1024
#: A secret's name as ``gateway.toml`` spells it: every ``*_file`` key names a secret file.
SECRET_FILE_SUFFIX = "_file"


def _mib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB" if size >= 1024**3 else f"{size / 1024**2:.0f} MiB"


def disk_verdict(free_bytes: int, outbox_max_bytes: int) -> tuple[str, str]:
    """(status, message) for ``free_bytes`` free beside an outbox bound (module docstring)."""
    need = outbox_max_bytes + STORE_HEADROOM_BYTES
    if free_bytes < STORE_HEADROOM_BYTES:
        return "fail", f"only {_mib(free_bytes)} free: the store may refuse its next write"
    if free_bytes < need:
        return "warn", (f"{_mib(free_bytes)} free, less than the outbox bound ([store] outbox_max_bytes = "
                        f"{_mib(outbox_max_bytes)}) + {_mib(STORE_HEADROOM_BYTES)} for RocksDB")
    return "ok", f"{_mib(free_bytes)} free (the outbox may take {_mib(outbox_max_bytes)})"


async def check_data_dir(ctx: DoctorContext, found: Findings) -> None:
    """The data directory exists (or can be made), is writable, and has room for the outbox."""
    settings = ctx.settings
    path = settings.data_path
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not path.exists():
        if not os.access(existing, os.W_OK | os.X_OK):
            found.fail(f"{path} does not exist and {existing} is not writable", f"create it for the gateway's user: "
                       f"`install -d -o edge-gateway -g edge-gateway -m 0750 {path}` (or `gateway install`)")
            return
    elif not path.is_dir():
        found.fail(f"{path} is not a directory", "set [gateway] data_dir (or --data-dir) to a directory")
        return
    else:
        try:
            with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
                pass
        except OSError as exc:
            found.fail(f"{path} is not writable by {_user()} ({exc.strerror})",
                       f"give it to the gateway's user: `chown -R edge-gateway: {path}` and `chmod u+rwx {path}` "
                       "(run the doctor as that user: `sudo -u edge-gateway gateway doctor ...`)")
            return
    usage = os.statvfs(existing)
    free = usage.f_bavail * usage.f_frsize
    status, message = disk_verdict(free, settings.store.outbox_max_bytes)
    details: dict[str, Any] = {"path": str(path), "free_bytes": free,
                               "outbox_max_bytes": settings.store.outbox_max_bytes}
    where = f"{path}{'' if path.exists() else ' (created at first start)'}: "
    if status == "ok":
        found.ok(where + message, **details)
    else:
        fix = ("free disk space (or give the data a bigger disk), or lower [store] outbox_max_bytes to what the "
               "disk can hold")
        found.add("fail" if status == "fail" else "warn", where + message, fix, **details)


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


async def check_open_files(ctx: DoctorContext, found: Findings) -> None:
    """The open-files limit covers ``max_connections`` + RocksDB and the rest."""
    need = ctx.settings.http.max_connections + FILES_BESIDES_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    details: dict[str, Any] = {"soft": soft, "hard": hard, "needed": need}
    shown = "unlimited" if hard == infinite else str(hard)
    fix = ("raise it: LimitNOFILE=65536 in the gateway's systemd unit (the shipped unit has it), or `ulimit -n "
           f"{need}` before `gateway run`; or lower [http] max_connections")
    if soft == infinite or soft >= need:
        found.ok(f"open files limit {soft}, the config needs {need}", **details)
    elif hard == infinite or hard >= need:
        found.ok(f"open files limit {soft} (hard {shown}): the gateway raises it to {need} at start", **details)
    else:
        found.fail(f"open files limit {soft} (hard {shown}) in this shell, the config needs {need} "
                   f"([http] max_connections = {ctx.settings.http.max_connections} + {FILES_BESIDES_CONNECTIONS} "
                   "for RocksDB and the rest)", fix, **details)


def secret_files(settings: Settings) -> list[tuple[Path, str]]:
    """Every file holding a secret, with where it comes from: the admin token, the scoped
    tokens, the buyer salt, each file a ``*_file`` key of the config names, and
    ``secrets.env`` beside the config when there is one."""
    files: dict[Path, str] = {settings.token_path: "[api] token_file", settings.tokens_path: "[api] tokens_file",
                              settings.buyer_salt_path: "[gateway] buyer_salt_file"}
    if settings.path is not None:
        doc = TomlDocument.load(settings.path)

        def walk(table: dict[str, Any], at: tuple[str, ...]) -> None:
            for key, value in table.items():
                if isinstance(value, dict):
                    walk(value, (*at, key))
                elif key.endswith(SECRET_FILE_SUFFIX) and isinstance(value, str) and value:
                    files.setdefault((settings.config_dir / value).resolve(), ".".join((*at, key)))

        walk(doc.data, ())
        env = settings.config_dir / "secrets.env"
        if env.exists():
            files[env.resolve()] = "the service's EnvironmentFile"
    return sorted(files.items())


async def check_secrets(ctx: DoctorContext, found: Findings) -> None:
    """No secret file is readable by others (the buyer salt: not by the group either)."""
    for path, origin in secret_files(ctx.settings):
        subject = str(path)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            if origin.startswith(("[api]", "[gateway]")):
                found.ok(f"{origin}: not there yet (created at first start, mode 0600)", subject=subject)
            else:
                found.fail(f"{origin}: the file does not exist", f"create it (mode 0600) or fix {origin}",
                           subject=subject)
            continue
        except OSError as exc:
            found.warn(f"{origin}: cannot look at it ({exc.strerror})", "run the doctor as root or as the gateway's "
                       "user to check it", subject=subject)
            continue
        strict = origin == "[gateway] buyer_salt_file"
        if mode & 0o007 or (strict and mode & 0o070):
            found.fail(f"{origin} is readable by {'others' if mode & 0o007 else 'its group'} (mode {mode:04o})",
                       f"`chmod 600 {path}` (owned by the gateway's user)", subject=subject, mode=f"{mode:04o}")
        else:
            found.ok(f"{origin}: mode {mode:04o}", subject=subject, mode=f"{mode:04o}")


async def check_log_file(ctx: DoctorContext, found: Findings) -> None:
    """``[logging] file``, when set, can be written (its directory exists and is writable)."""
    from gateway._appliance.logs import log_file_path

    path = log_file_path(ctx.settings)
    if path is None:
        found.ok(f"logs go to stderr (the journal under systemd), format {ctx.settings.logging.format}")
        return
    target = path if path.exists() else path.parent
    if not target.exists():
        found.fail(f"{path.parent} does not exist", f"create it for the gateway's user: `install -d -o edge-gateway "
                   f"-m 0750 {path.parent}`, or set [logging] file = \"\" to log to the journal")
    elif not os.access(target, os.W_OK):
        found.fail(f"{target} is not writable by {_user()}", f"`chown edge-gateway: {target}` (run the doctor as "
                   "the gateway's user to check what it can write)")
    else:
        found.ok(f"logs go to {path} (rotated at {_mib(ctx.settings.logging.max_bytes)}, "
                 f"{ctx.settings.logging.backups} kept), format {ctx.settings.logging.format}")


__all__ = ["FILES_BESIDES_CONNECTIONS", "STORE_HEADROOM_BYTES", "check_data_dir", "check_log_file",
           "check_open_files", "check_secrets", "disk_verdict", "secret_files"]
