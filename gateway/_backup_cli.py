"""Backup commands: ``gateway backup``, ``gateway restore``, ``gateway store repair | verify``.

    gateway backup DIR [--json]
        a consistent backup of the store into DIR (new or empty, absolute or relative to
        here, outside the data directory): through the running gateway's API (ingest goes
        on), or directly when it is stopped
    gateway restore DIR [--yes]
        (gateway stopped) check the backup in DIR and make it the store; the store in use
        is moved aside to <data>/store.before-restore-<time>, never deleted
    gateway store repair [--json]
        (gateway stopped) copy the damaged store aside, repair it with RocksDB, report per
        tenant what is left and what was lost
    gateway store verify
        (gateway stopped) every check there is: every table block, every audit chain
    gateway store retention [--dry-run] [--days N] [--json]
        (gateway stopped) one retention pass now (the running gateway does one daily): delete
        finished orders unchanged for [store] retention_days (or N) days; --dry-run only says
        what would go and what holds the audit chain's start

Logic: ``gateway._appliance.backup`` and ``gateway._appliance.repair``. Progress goes to
stderr, results to stdout. Exit status: 0 done (``verify``: sound), 1 refused or failed
(the message says what to do), 3 the store is damaged or cannot be opened.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from gateway._errors import GatewayError, StoreError
from gateway._settings import Settings
from gateway._store.backup import BackupError


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def add_backup_commands(subparsers: Any, config_options: Callable[[argparse.ArgumentParser], None]
                        ) -> list[argparse.ArgumentParser]:
    """Register ``backup``, ``restore`` and ``store`` on the CLI's sub-parsers; returns their
    parsers (give each ``set_defaults(func=...)``)."""
    backup = subparsers.add_parser(
        "backup", help="back up the store while the gateway runs (RocksDB checkpoint, salt, manifest)",
        description="A consistent backup of the store into DIR (new or empty, outside the data directory): "
        "through the running gateway's API with the admin token, ingest going on, or directly when it is "
        "stopped. DIR gets store/, buyer-salt and manifest.json (checksums, seqs, audit chain heads).")
    config_options(backup)
    backup.add_argument("dir", metavar="DIR")
    backup.add_argument("--json", action="store_true", help="print the manifest's figures as one JSON object")
    restore = subparsers.add_parser(
        "restore", help="restore a backup as the store (gateway stopped)",
        description="Check every file of the backup in DIR against its manifest, verify every audit chain in a "
        "copy, then swap it in. The store in use is moved to <data>/store.before-restore-<time> (never "
        "deleted); the buyer salt is put back.")
    config_options(restore)
    restore.add_argument("dir", metavar="DIR")
    restore.add_argument("--yes", action="store_true", help="replace the store in use without asking")
    store = subparsers.add_parser("store", help="the store itself: repair a damaged one, verify it (gateway stopped)")
    commands = store.add_subparsers(dest="store_command", required=True, metavar="SUBCOMMAND")
    repair = commands.add_parser(
        "repair", help="copy the damaged store aside, repair it, report what was lost",
        description="For a store the gateway refused as damaged. The store is first copied to "
        "<data>/store.before-repair-<time>; RocksDB's repair then keeps every table and log it can read "
        "(a damaged table file goes whole to <store>/lost/); the report says per tenant what is left, what was "
        "there before and where an audit chain breaks.")
    config_options(repair)
    repair.add_argument("--json", action="store_true")
    verify = commands.add_parser("verify", help="read every block and verify every audit chain")
    config_options(verify)
    retention = commands.add_parser(
        "retention", help="delete finished orders older than [store] retention_days now (or say what would go)",
        description="One retention pass now (the running gateway runs one daily): finished orders (delivered, "
        "refunded, cancelled) unchanged for retention_days are deleted with their events, indexes and pack-line "
        "records. Never deleted: open disputes, held or unshipped orders, the outbox, dead letters, waiting "
        "quarantine. See gateway/_store/retention.py.")
    config_options(retention)
    retention.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    retention.add_argument("--days", type=int, default=None, help="use N days instead of [store] retention_days")
    retention.add_argument("--json", action="store_true")
    return [backup, restore, store]


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        print(f"error: {question}\n  what to do: answer with --yes (no terminal to ask on)", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _print_repair(report: dict[str, Any]) -> None:
    print(f"store repaired: {report['store']} (the damaged one is kept in {report['copied_to']})")
    if report["lost_files"]:
        print(f"  files RocksDB could not read, set aside whole in lost/: {', '.join(report['lost_files'])}")
    if report.get("writes_lost"):
        print(f"  {report['writes_lost']} RocksDB writes acknowledged before are missing")
    for tenant, entry in report["tenants"].items():
        before = (f" (before: {entry['events_before']} events, {entry['audit_records_before']} audit records)"
                  if "events_before" in entry else " (before: unknown: the damaged store cannot be read)")
        chain = "audit chain OK" if entry["chain_ok"] else (
            f"audit chain BROKEN at seq {entry['first_bad_seq']}: {entry['reason']}")
        print(f"  tenant {tenant}: {entry['events']} events, {entry['audit_records']} audit records{before}; {chain}")


def run_backup_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``backup``, ``restore`` or ``store ...``; returns the exit status."""
    from gateway._appliance.backup import backup_store, restore_store
    from gateway._appliance.repair import repair_store, verify_store

    try:
        if args.command == "backup":
            result = backup_store(settings, Path(args.dir), _progress)
            if args.json:
                print(orjson.dumps(result).decode())
            else:
                print(f"backup complete: {result['dir']} ({result['file_count']} files, "
                      f"{result['bytes'] / 1024**2:.1f} MiB, {len(result['tenants'])} tenants, {result['taken']})")
                if not result["buyer_salt"].get("file"):
                    print(f"WARNING: {result['buyer_salt']['reason']}")
            return 0
        if args.command == "restore":
            done = restore_store(settings, Path(args.dir), _progress, (lambda q: True) if args.yes else _confirm)
            print(f"restored into {done['store']}" + (f"; the previous store is kept in {done['moved_aside']}"
                                                      if done["moved_aside"] else ""))
            if done["salt_moved_aside"]:
                print(f"the previous buyer salt is kept in {done['salt_moved_aside']}")
            return 0
        if args.store_command == "repair":
            report = repair_store(settings, _progress)
            if args.json:
                print(orjson.dumps(report).decode())
            else:
                _print_repair(report)
            return 0
        if args.store_command == "retention":
            from gateway._appliance.retention import retention_command

            if args.days is not None and args.days < 1:
                print("error: --days must be at least 1", file=sys.stderr)
                return 1
            reports = retention_command(settings, dry_run=args.dry_run, days=args.days, progress=_progress)
            if args.json:
                print(orjson.dumps(reports).decode())
            elif not reports:
                print("retention is off ([store] retention_days = 0) or the store has no tenant: nothing to do")
            for report in reports if not args.json else []:
                print(report["line"])
            return 0
        problems = verify_store(settings, _progress)
        for problem in problems:
            print(f"DAMAGED: {problem}")
        if not problems:
            print("store verified: every table block and every audit chain are sound")
        return 3 if problems else 0
    except BackupError as exc:  # a refused directory or a damaged backup: the store is fine
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


__all__ = ["add_backup_commands", "run_backup_command"]
