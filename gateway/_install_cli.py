"""Install commands: ``gateway install`` and ``gateway uninstall`` (the gateway as a systemd
service on the warehouse box; the steps: ``gateway._appliance.install``).

    gateway install [--root DIR] [--prefix /opt/edge-gateway] [--user edge-gateway]
                    [--no-enable] [--dry-run]
    gateway uninstall [--root DIR] [--prefix /opt/edge-gateway] [--purge [--yes]] [--dry-run]

Each step prints one line, ``ok`` (already right, unchanged), ``changed`` or ``skipped``
(with why and what to do), as it is done; a second ``gateway install`` prints only ``ok``
and ``skipped``. ``--root DIR`` stages everything under DIR without touching the machine
(no user, no ownership, no systemctl). ``--purge`` asks before deleting the config and the
store unless ``--yes``.

Exit codes: 0 done, 1 a step failed (the message says what to do; the steps printed before
it stay done), 2 usage error (or --purge refused at the prompt).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from gateway._appliance.install import (
    CONFIG_DIR,
    DEFAULT_PREFIX,
    DEFAULT_USER,
    STATE_DIR,
    InstallError,
    InstallOptions,
    Step,
    install,
    uninstall,
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DIR",
                        help="stage everything under DIR (DIR/etc/edge-gateway, ...) without touching the machine")
    parser.add_argument("--prefix", metavar="DIR", default=str(DEFAULT_PREFIX),
                        help=f"where the program is installed: DIR/.venv/bin/gateway (default {DEFAULT_PREFIX})")
    parser.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")


def add_install_parsers(subparsers: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Register ``gateway install`` and ``gateway uninstall``; returns their parsers (give each
    ``set_defaults(func=...)``)."""
    install_parser: argparse.ArgumentParser = subparsers.add_parser(
        "install", help="install the gateway as the systemd service edge-gateway (user, /etc, /var/lib, unit)",
        description=f"Create the service user (in groups dialout and input, for scanners), {CONFIG_DIR}/ "
        f"(gateway.toml, rules/, secrets.env mode 0600), {STATE_DIR}/ and the systemd unit, then enable and start "
        "it. Safe to run again: unchanged items print 'ok', an edited config file is kept (the new default is "
        "written beside it as .new).")
    _common(install_parser)
    install_parser.add_argument("--user", default=DEFAULT_USER, help=f"the service user (default {DEFAULT_USER})")
    install_parser.add_argument("--no-enable", action="store_true",
                                help="do not run systemctl daemon-reload / enable --now")
    uninstall_parser: argparse.ArgumentParser = subparsers.add_parser(
        "uninstall", help="stop and remove the service and the program (keeps config and data unless --purge)",
        description=f"Stop and disable edge-gateway, remove its unit and the program (PREFIX/.venv). {CONFIG_DIR} "
        f"and {STATE_DIR} (the store) are kept unless --purge.")
    _common(uninstall_parser)
    uninstall_parser.add_argument("--user", default=DEFAULT_USER, help=argparse.SUPPRESS)
    uninstall_parser.add_argument("--purge", action="store_true",
                                  help=f"also delete {CONFIG_DIR} and {STATE_DIR} (all data; asks first)")
    uninstall_parser.add_argument("--yes", action="store_true", help="do not ask before --purge")
    return install_parser, uninstall_parser


def _options(args: argparse.Namespace) -> InstallOptions:
    return InstallOptions(root=Path(args.root).resolve() if args.root else None, prefix=PurePosixPath(args.prefix),
                          user=args.user, enable=not getattr(args, "no_enable", False), dry_run=args.dry_run)


def _report(steps: Iterator[Step], out: TextIO) -> dict[str, int]:
    counts = {"ok": 0, "changed": 0, "skipped": 0}
    for step in steps:
        counts[step.status] += 1
        print(step, file=out, flush=True)
    return counts


def _run(what: str, options: InstallOptions, steps: Callable[[], Iterator[Step]], out: TextIO) -> int:
    if options.root is None and not options.dry_run and os.geteuid() != 0:
        print(f"error: gateway {what} changes the system: run it as root (sudo), or stage it with --root DIR, "
              "or look first with --dry-run", file=sys.stderr)
        return 1
    where = f" under {options.root}" if options.root is not None else ""
    print(f"gateway {what}{where}{' (dry run: nothing is changed)' if options.dry_run else ''}", file=out)
    try:
        counts = _report(steps(), out)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = "would change" if options.dry_run else "changed"
    print(f"{what}: {counts['changed']} {verb}, {counts['ok']} unchanged, {counts['skipped']} skipped", file=out)
    return 0


def _confirm_purge(args: argparse.Namespace, options: InstallOptions, stdin: TextIO) -> bool:
    if args.yes or options.dry_run:
        return True
    config, state = options.at(CONFIG_DIR), options.at(STATE_DIR)
    if not stdin.isatty():
        print(f"error: --purge deletes {config} and {state} (the store); add --yes to confirm without a "
              "terminal", file=sys.stderr)
        return False
    print(f"--purge deletes {config} (config, secrets) and {state} (the store: every order, the audit trail). "
          "Back it up first (gateway backup). Type 'purge' to go on: ", end="", file=sys.stderr, flush=True)
    return stdin.readline().strip() == "purge"


def run_install_command(args: argparse.Namespace, *, out: TextIO | None = None,
                        stdin: TextIO | None = None) -> int:
    """Run ``gateway install`` or ``gateway uninstall`` (``args.command``); returns the exit code."""
    stream = out or sys.stdout
    try:
        options = _options(args)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "install":
        return _run("install", options, lambda: install(options), stream)
    if args.purge and not _confirm_purge(args, options, stdin or sys.stdin):
        print("uninstall: nothing done", file=sys.stderr)
        return 2
    return _run("uninstall", options, lambda: uninstall(options, purge=args.purge), stream)


__all__ = ["add_install_parsers", "run_install_command"]
