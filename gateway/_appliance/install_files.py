"""Idempotent file steps of ``gateway install``: directories, files the installer owns, and
config files the operator may have edited.

Each function looks first, changes only what differs, and returns one :class:`Step` saying
what it found or did: ``ok`` (already right, nothing changed), ``changed`` (created,
rewritten, mode or owner fixed; under ``dry_run`` what *would* change, with nothing
touched) or ``skipped`` (with the reason). So a second run reports ``ok`` everywhere.

Config files follow dpkg's conffile rule. The installer remembers the SHA-256 of the default
it last wrote into each file (:data:`DEFAULTS_RECORD`); a file still holding that default is
unedited and takes the new one, an edited file is kept and the new default is written beside
it as ``<name>.new`` for the operator to merge.

Writes are atomic (a temporary file in the same directory, fsynced, renamed over), so a
power cut leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway._errors import GatewayError

Status = Literal["ok", "changed", "skipped"]

#: File (in the config directory) holding {relative path: SHA-256 of the default installed}.
DEFAULTS_RECORD = ".installed-defaults.json"


class InstallError(GatewayError):
    """``gateway install`` / ``uninstall`` cannot go on; the message says what to do."""


@dataclass(frozen=True)
class Step:
    """One line of the install report.

    Args:
        status: ``ok`` (unchanged), ``changed`` or ``skipped``.
        target: what the step is about: a path, ``user edge-gateway``, ``service``.
        detail: what was found or done, or why it was skipped.
    """

    status: Status
    target: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.status:<8} {self.target}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Owner:
    """Numeric owner of an installed path (``None`` where ownership is not set: --root)."""

    uid: int
    gid: int


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _fix_attributes(path: Path, mode: int, owner: Owner | None, dry_run: bool) -> list[str]:
    """Set ``path``'s mode and owner where they differ; returns what was (or would be) fixed."""
    info = path.lstat()
    fixes: list[str] = []
    if info.st_mode & 0o7777 != mode:
        fixes.append(f"mode {info.st_mode & 0o7777:04o} -> {mode:04o}")
        if not dry_run:
            path.chmod(mode)
    if owner is not None and (info.st_uid, info.st_gid) != (owner.uid, owner.gid):
        fixes.append(f"owner {info.st_uid}:{info.st_gid} -> {owner.uid}:{owner.gid}")
        if not dry_run:
            os.chown(path, owner.uid, owner.gid)
    return fixes


def _write_atomically(path: Path, content: bytes, mode: int, owner: Owner | None) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # Mode and owner before the content lands, so a secret is never readable by others.
        os.fchmod(descriptor, mode)
        if owner is not None:
            os.fchown(descriptor, owner.uid, owner.gid)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def ensure_dir(path: Path, mode: int, owner: Owner | None, *, dry_run: bool = False,
               shown: str | None = None) -> Step:
    """``path`` exists as a directory with ``mode`` and ``owner`` (parents created 0755)."""
    target = shown or str(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise InstallError(f"{path} exists and is not a directory: move it away, then re-run")
    if not path.exists():
        if not dry_run:
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(mode)
            if owner is not None:
                os.chown(path, owner.uid, owner.gid)
        return Step("changed", target, f"created, mode {mode:04o}")
    fixes = _fix_attributes(path, mode, owner, dry_run)
    return Step("changed", target, ", ".join(fixes)) if fixes else Step("ok", target, "unchanged")


def ensure_file(path: Path, content: bytes, mode: int, owner: Owner | None, *, dry_run: bool = False,
                shown: str | None = None) -> Step:
    """``path`` holds exactly ``content`` (a file the installer owns: rewritten when it differs)."""
    target = shown or str(path)
    if not path.exists():
        if not dry_run:
            _write_atomically(path, content, mode, owner)
        return Step("changed", target, "created")
    if path.read_bytes() != content:
        if not dry_run:
            _write_atomically(path, content, mode, owner)
        return Step("changed", target, "rewritten (it differed from what this version installs)")
    fixes = _fix_attributes(path, mode, owner, dry_run)
    return Step("changed", target, ", ".join(fixes)) if fixes else Step("ok", target, "unchanged")


def ensure_config_file(path: Path, default: bytes, mode: int, owner: Owner | None, *,
                       installed_sha256: str | None, offer_new: bool = True, dry_run: bool = False,
                       shown: str | None = None) -> tuple[Step, str | None]:
    """Install the default ``default`` at ``path`` without ever overwriting an operator's edit.

    Args:
        installed_sha256: the SHA-256 of the default last installed there (``None``: never).
        offer_new: write ``<path>.new`` beside an edited file (``False`` for secrets.env,
            whose default holds only placeholders).

    Returns:
        The step, and the SHA-256 to remember for ``path`` (``None``: keep what was recorded).
    """
    target = shown or str(path)
    new_sha256 = sha256(default)
    if not path.exists():
        if not dry_run:
            _write_atomically(path, default, mode, owner)
        return Step("changed", target, "created"), new_sha256
    current = path.read_bytes()
    if current == default:
        fixes = _fix_attributes(path, mode, owner, dry_run)
        step = Step("changed", target, ", ".join(fixes)) if fixes else Step("ok", target, "unchanged")
        return step, new_sha256
    if installed_sha256 is not None and sha256(current) == installed_sha256:
        if not dry_run:
            _write_atomically(path, default, mode, owner)
        return Step("changed", target, "updated to this version's default (you had not edited it)"), new_sha256
    fixes = _fix_attributes(path, mode, owner, dry_run)
    fixed = f"; {', '.join(fixes)}" if fixes else ""
    if not offer_new:
        status: Status = "changed" if fixes else "ok"
        return Step(status, target, f"kept (yours){fixed}"), None
    beside = path.with_name(path.name + ".new")
    shown_new = f"{target}.new"
    if beside.exists() and beside.read_bytes() == default:
        status = "changed" if fixes else "ok"
        return Step(status, target, f"kept your edit; this version's default is in {shown_new}{fixed}"), None
    if not dry_run:
        _write_atomically(beside, default, mode, owner)
    return Step("changed", target, f"kept your edit; this version's default written to {shown_new}, "
                f"merge what you need{fixed}"), None


def remove_path(path: Path, *, dry_run: bool = False, shown: str | None = None, what: str = "") -> Step:
    """Remove a file or a whole directory tree (``ok`` when it is already absent)."""
    target = shown or str(path)
    if not path.exists() and not path.is_symlink():
        return Step("ok", target, "absent")
    if not dry_run:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return Step("changed", target, f"removed{f' ({what})' if what else ''}")


__all__ = [
    "DEFAULTS_RECORD",
    "InstallError",
    "Owner",
    "Status",
    "Step",
    "ensure_config_file",
    "ensure_dir",
    "ensure_file",
    "remove_path",
    "sha256",
]
