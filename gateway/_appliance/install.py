"""``gateway install`` and ``gateway uninstall``: the gateway as a service on the box.

What install sets up (every path under ``--root DIR`` when given, so it is staged in a
directory and tested without touching the machine)::

    user edge-gateway            system user, own group, in dialout + input   (not under --root)
    /etc/edge-gateway/           0750 root:edge-gateway
        gateway.toml, rules/     0640 / 0750, the default config tree (conffiles: an edit is kept,
                                 the new default goes beside it as .new)
        secrets.env              0600 root:root, commented placeholders; never replaced
    /var/lib/edge-gateway/       0750 edge-gateway:edge-gateway (data/ inside: the store)
    /etc/systemd/system/edge-gateway.service
                                 0644, generated from the shipped unit (limits, hardening)
    systemctl daemon-reload, enable --now      (not under --root / --no-enable / without systemd)

The program itself (``<prefix>/.venv``) is installed by the archive's ``install.sh``;
install checks it is there, uninstall removes it. Uninstall keeps ``/etc/edge-gateway`` and
``/var/lib/edge-gateway`` unless ``purge``.

Both are generators of :class:`Step` so the CLI prints each step as it is done; a step that
cannot be done raises :class:`InstallError` (what is wrong, what to do).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gateway._appliance.install_files import (
    DEFAULTS_RECORD,
    InstallError,
    Owner,
    Step,
    ensure_config_file,
    ensure_dir,
    ensure_file,
    remove_path,
)
from gateway._appliance.install_system import (
    daemon_reload,
    ensure_service,
    ensure_user,
    remove_service,
    systemd_running,
    user_owner,
)
from gateway._appliance.install_unit import (
    SECRETS_TEMPLATE,
    UNIT_NAME,
    check_prefix,
    check_user_name,
    default_config_files,
    program_path,
    render_unit,
    unit_template,
)

CONFIG_DIR = PurePosixPath("/etc/edge-gateway")
STATE_DIR = PurePosixPath("/var/lib/edge-gateway")
UNIT_PATH = PurePosixPath("/etc/systemd/system") / UNIT_NAME
DEFAULT_PREFIX = PurePosixPath("/opt/edge-gateway")
DEFAULT_USER = "edge-gateway"
ROOT_OWNER = Owner(0, 0)


@dataclass(frozen=True)
class InstallOptions:
    """What ``gateway install`` / ``uninstall`` act on.

    Args:
        root: stage everything under this directory (no user, no ownership, no systemctl).
        prefix: where the program lives (``<prefix>/.venv/bin/gateway``).
        user: the service user.
        enable: ``systemctl enable --now`` after installing.
        dry_run: report what would change; change nothing.
        source: the config tree to install (default: the embedded one).
    """

    root: Path | None = None
    prefix: PurePosixPath = DEFAULT_PREFIX
    user: str = DEFAULT_USER
    enable: bool = True
    dry_run: bool = False
    source: Path | None = None

    def at(self, path: PurePosixPath) -> Path:
        """Where ``path`` (an absolute path on the box) is, under ``root`` when staging."""
        return Path(self.root, *path.parts[1:]) if self.root is not None else Path(path)


def _source(options: InstallOptions) -> Path:
    if options.source is not None:
        return options.source
    from gateway._settings import default_config_path

    return default_config_path().parent


def _load_record(path: Path) -> dict[str, str]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in record.items()} if isinstance(record, dict) else {}


def _check_program(options: InstallOptions) -> Step:
    program = program_path(options.prefix)
    if options.at(program).is_file():
        return Step("ok", f"program {program}", "present")
    if options.root is not None:
        return Step("skipped", f"program {program}", "not staged under --root (install.sh installs it); "
                    "the unit runs it from there")
    missing = (f"the program is not at {program}: unpack the offline archive and run its install.sh "
               "(it installs there), or give --prefix DIR where DIR/.venv/bin/gateway is this gateway")
    if options.dry_run:
        return Step("skipped", f"program {program}", f"MISSING, a real run stops here: {missing}")
    raise InstallError(missing)


def _owners(options: InstallOptions) -> tuple[Owner | None, Owner | None, Owner | None]:
    """(root:root, root:<user's group>, <user>:<user's group>); ``None`` where not set."""
    if options.root is not None:
        return None, None, None
    service = user_owner(options.user)
    if service is None:  # only in a dry run: the user step would have created it
        return ROOT_OWNER, None, None
    return ROOT_OWNER, Owner(0, service.gid), service


def install(options: InstallOptions) -> Iterator[Step]:
    """Install the service; yields each step as it is done (see the module docstring).

    Raises:
        InstallError: a step cannot be done (no program under the prefix, useradd or
            systemctl failed, a path in the way); the steps before it stay done.
    """
    check_user_name(options.user)
    check_prefix(options.prefix)
    dry = options.dry_run
    source = _source(options)
    files = default_config_files(source)
    unit = render_unit(unit_template(source), prefix=options.prefix, user=options.user).encode()

    yield _check_program(options)
    if options.root is None:
        yield from ensure_user(options.user, Path(STATE_DIR), dry_run=dry)
    else:
        yield Step("skipped", f"user {options.user}", "not created under --root; file owners not set either "
                   "(a real install creates the user and sets them)")
    root_owner, config_owner, service_owner = _owners(options)

    config_dir = options.at(CONFIG_DIR)
    yield ensure_dir(config_dir, 0o750, config_owner, dry_run=dry, shown=str(CONFIG_DIR))
    record_path = config_dir / DEFAULTS_RECORD
    record = _load_record(record_path)
    new_record = dict(record)
    changed_config = False
    made: set[PurePosixPath] = set()
    for file in files:
        for parent in reversed(file.relative.parents[:-1]):
            if parent in made:
                continue
            made.add(parent)
            yield ensure_dir(config_dir / parent, 0o750, config_owner, dry_run=dry, shown=str(CONFIG_DIR / parent))
        key = str(file.relative)
        step, remembered = ensure_config_file(config_dir / key, file.content, 0o640, config_owner,
                                              installed_sha256=record.get(key), dry_run=dry,
                                              shown=str(CONFIG_DIR / key))
        changed_config |= step.status == "changed"
        if remembered is not None:
            new_record[key] = remembered
        yield step
    step, _ = ensure_config_file(config_dir / "secrets.env", SECRETS_TEMPLATE.encode(), 0o600, root_owner,
                                 installed_sha256=None, offer_new=False, dry_run=dry,
                                 shown=str(CONFIG_DIR / "secrets.env"))
    yield step
    record_text = (json.dumps(new_record, indent=1, sort_keys=True) + "\n").encode()
    yield ensure_file(record_path, record_text, 0o640, config_owner, dry_run=dry,
                      shown=str(CONFIG_DIR / DEFAULTS_RECORD))

    yield ensure_dir(options.at(STATE_DIR), 0o750, service_owner, dry_run=dry, shown=str(STATE_DIR))
    yield ensure_dir(options.at(STATE_DIR / "data"), 0o750, service_owner, dry_run=dry,
                     shown=str(STATE_DIR / "data"))

    unit_path = options.at(UNIT_PATH)
    if not unit_path.parent.is_dir() and options.root is not None:
        yield ensure_dir(unit_path.parent, 0o755, root_owner, dry_run=dry, shown=str(UNIT_PATH.parent))
    unit_step = ensure_file(unit_path, unit, 0o644, root_owner, dry_run=dry, shown=str(UNIT_PATH))
    yield unit_step
    unit_changed = unit_step.status == "changed"

    command = f"systemctl enable --now {UNIT_NAME}"
    if options.root is not None:
        yield Step("skipped", f"service {UNIT_NAME}", f"staged under --root; on the box: {command}")
    elif not options.enable:
        yield Step("skipped", f"service {UNIT_NAME}", f"--no-enable; to start it: systemctl daemon-reload && {command}")
    elif not systemd_running():
        yield Step("skipped", f"service {UNIT_NAME}", f"systemd is not running here; on a systemd box: {command}")
    else:
        yield from ensure_service(UNIT_NAME, reload_units=unit_changed,
                                  restart=unit_changed or changed_config, dry_run=dry)


def uninstall(options: InstallOptions, *, purge: bool = False) -> Iterator[Step]:
    """Stop and remove the service and the program; with ``purge`` also the config and the
    data (the caller asks for confirmation). Yields each step as it is done.

    The user is kept (files elsewhere may belong to it): ``userdel edge-gateway``.
    """
    check_prefix(options.prefix)
    dry = options.dry_run
    unit_path = options.at(UNIT_PATH)
    live = options.root is None and systemd_running()
    if live:
        yield from remove_service(UNIT_NAME, dry_run=dry)
    else:
        yield Step("skipped", f"service {UNIT_NAME}", "staged under --root" if options.root is not None
                   else "systemd is not running here")
    had_unit = unit_path.exists()
    yield remove_path(unit_path, dry_run=dry, shown=str(UNIT_PATH), what="the unit")
    if live and had_unit:
        yield daemon_reload(dry_run=dry)

    for path, what in ((CONFIG_DIR, "config and secrets"), (STATE_DIR, "the store: your data")):
        if purge:
            yield remove_path(options.at(path), dry_run=dry, shown=str(path), what=what)
        elif options.at(path).exists():
            yield Step("skipped", str(path), f"kept ({what}); `gateway uninstall --purge` deletes it")

    # The program last: this command may be running from it.
    venv = PurePosixPath(options.prefix) / ".venv"
    staged_venv = options.at(venv)
    if staged_venv.exists() and not (staged_venv / "pyvenv.cfg").is_file():
        yield Step("skipped", str(venv), "not a Python venv (no pyvenv.cfg): left alone, remove it yourself")
    else:
        yield remove_path(staged_venv, dry_run=dry, shown=str(venv), what="the program")
        prefix = options.at(options.prefix)
        if prefix.is_dir() and not any(prefix.iterdir()) and not dry:
            prefix.rmdir()
    if options.root is None and user_owner(options.user) is not None:
        yield Step("skipped", f"user {options.user}", f"kept; `userdel {options.user}` removes it")


__all__ = [
    "CONFIG_DIR",
    "DEFAULT_PREFIX",
    "DEFAULT_USER",
    "STATE_DIR",
    "UNIT_PATH",
    "InstallError",
    "InstallOptions",
    "Step",
    "install",
    "uninstall",
]
