"""The machine's side of ``gateway install``: the service user and systemd.

These are the only steps that change the box outside files: ``useradd`` / ``usermod`` for
the user and its device groups, ``systemctl`` for the service. Each looks first (the user
database, ``systemctl is-enabled`` / ``is-active``) and acts only when something differs, so
a second run reports ``ok``. A failing command raises :class:`InstallError` with its output
and what to do.
"""

from __future__ import annotations

import grp
import pwd
import shutil
import subprocess
from pathlib import Path

from gateway._appliance.install_files import InstallError, Owner, Step

#: Groups whose devices a station uses: serial ports (/dev/ttyUSB*, ttyACM*) and input
#: devices (/dev/input/event*: keyboard-wedge scanners).
DEVICE_GROUPS = ("dialout", "input")
NOLOGIN = "/usr/sbin/nologin"


def run_command(argv: list[str]) -> str:
    """Run ``argv``; its stdout, or raise :class:`InstallError` with its output."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"`{' '.join(argv)}` could not run: {exc}") from exc
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise InstallError(f"`{' '.join(argv)}` failed (exit {done.returncode}): {output}")
    return done.stdout


def user_owner(user: str) -> Owner | None:
    """``user``'s uid and primary gid, ``None`` when there is no such user."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return Owner(entry.pw_uid, entry.pw_gid)


def ensure_user(user: str, home: Path, *, dry_run: bool = False) -> list[Step]:
    """The system user ``user`` (own group, no login, home ``home`` not created here) in the
    :data:`DEVICE_GROUPS` that exist on this box."""
    target = f"user {user}"
    steps: list[Step] = []
    if user_owner(user) is None:
        if not dry_run:
            run_command(["useradd", "--system", "--user-group", "--home-dir", str(home), "--no-create-home",
                         "--shell", NOLOGIN, "--comment", "Warehouse edge gateway", user])
        steps.append(Step("changed", target, "created (system user, own group, no login shell)"))
    else:
        steps.append(Step("ok", target, "exists"))
    for group in DEVICE_GROUPS:
        group_target = f"user {user} in group {group}"
        try:
            members = grp.getgrnam(group).gr_mem
        except KeyError:
            steps.append(Step("skipped", group_target, f"this box has no group {group}: its devices stay "
                              f"unreadable to {user}; create it (groupadd --system {group}) and re-run"))
            continue
        if user in members:
            steps.append(Step("ok", group_target, "unchanged"))
            continue
        if not dry_run:
            run_command(["usermod", "--append", "--groups", group, user])
        steps.append(Step("changed", group_target, "added"))
    return steps


def systemd_running() -> bool:
    """Whether this box booted with systemd and ``systemctl`` is there (sd_booted(3))."""
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _systemctl_quiet(*args: str) -> bool:
    try:
        return subprocess.run(["systemctl", *args], capture_output=True, check=False, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_service(unit: str, *, reload_units: bool, restart: bool, dry_run: bool = False) -> list[Step]:
    """Tell systemd: ``daemon-reload`` when the unit file changed, then ``enable --now`` unless
    it is enabled and running, or ``try-restart`` when ``restart`` (the unit or config
    changed under a running service)."""
    steps: list[Step] = []
    if reload_units:
        if not dry_run:
            run_command(["systemctl", "daemon-reload"])
        steps.append(Step("changed", "systemd", "daemon-reload (the unit file changed)"))
    enabled = _systemctl_quiet("is-enabled", "--quiet", unit)
    active = _systemctl_quiet("is-active", "--quiet", unit)
    if enabled and active:
        if restart:
            if not dry_run:
                run_command(["systemctl", "try-restart", unit])
            steps.append(Step("changed", f"service {unit}", "restarted to apply the changes above"))
        else:
            steps.append(Step("ok", f"service {unit}", "enabled and running"))
        return steps
    if not dry_run:
        run_command(["systemctl", "enable", "--now", unit])
    steps.append(Step("changed", f"service {unit}", "enabled and started (journalctl -u edge-gateway -f)"))
    return steps


def remove_service(unit: str, *, dry_run: bool = False) -> list[Step]:
    """``systemctl disable --now`` ``unit`` when it is enabled or running."""
    if not (_systemctl_quiet("is-enabled", "--quiet", unit) or _systemctl_quiet("is-active", "--quiet", unit)):
        return [Step("ok", f"service {unit}", "not enabled, not running")]
    if not dry_run:
        run_command(["systemctl", "disable", "--now", unit])
    return [Step("changed", f"service {unit}", "stopped and disabled")]


def daemon_reload(*, dry_run: bool = False) -> Step:
    if not dry_run:
        run_command(["systemctl", "daemon-reload"])
    return Step("changed", "systemd", "daemon-reload")


__all__ = [
    "DEVICE_GROUPS",
    "daemon_reload",
    "ensure_service",
    "ensure_user",
    "remove_service",
    "run_command",
    "systemd_running",
    "user_owner",
]
