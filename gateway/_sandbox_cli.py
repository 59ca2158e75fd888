"""Sandbox commands: ``gateway export`` and ``gateway replay``.

    gateway export --tenant T [--since WHEN] [--until WHEN] [--source S] [-o FILE]
        the tenant's recorded raw inputs from the event log as JSON lines (stdout by default),
        streamed; the live store is opened read-only (the gateway may keep running)
    gateway replay EVENTS.jsonl --rules CANDIDATE_DIR [--merge-window-s S] [--json] [--lang zh|en]
    gateway replay --from-store --tenant T --rules CANDIDATE_DIR [--since WHEN] [--until WHEN] ...
        the same events through the live configuration and through the candidate one, in
        memory; prints the orders that would change, per rule, with before/after examples

WHEN is a date (``2026-11-01``) or a date and time (``2026-11-01T08:00``), China time
unless it names its offset. Progress (with ETA) goes to stderr, the report to stdout.

CANDIDATE_DIR holds the changed files (``erp.toml``, ``gifts/demo.toml``) and, for a live
file the candidate deletes, an empty marker named after it: ``youzan.toml.delete``,
``gifts/demo.toml.delete`` (a marker for a file that is not live is refused, exit 2). The
export and ``--from-store`` carry quarantine releases (``release_of``), replayed on each side.

Exit status of ``replay``: 0 no difference, 1 differences, 2 error (a broken candidate
rule file is named by file:line:key, as the live loader names it). ``export``: 0 done, 2 error.
Neither command writes to the live store, calls the upstream or drives a device.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import core_ext
from gateway._errors import ConfigError, GatewayError
from gateway._packline.catalog_store import load_catalog
from gateway._packline.values import Catalog
from gateway._pipeline.salt import read_salt
from gateway._rules import RuleErrors
from gateway._sandbox import (
    ExportFilter,
    export_events,
    has_differences,
    iter_replay,
    load_candidate,
    load_live,
    read_recorded,
    render_text,
    report_bytes,
    run_replay,
)
from gateway._settings import Settings, default_config_path, load_settings, with_overrides
from gateway._store import Store, store_settings
from gateway._store.backup import open_read_only, summary

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2
_CHINA = timezone(timedelta(hours=8))


class ProgressBar:
    """``[#####-----]  45%  450,000/1,000,000 events  52,000/s  ETA 0:11`` on stderr, redrawn
    at most every 0.2 s; ``total`` 0 shows the count and rate only."""

    def __init__(self, label: str, total: int, stream: IO[str] | None = None) -> None:
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self._drawn = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self._drawn < 0.2 and (not self.total or done < self.total):
            return
        self._drawn = now
        rate = done / max(now - self.started, 1e-6)
        if self.total:
            share = min(1.0, done / self.total)
            bar = "#" * int(share * 24)
            left = max(0, self.total - done) / rate if rate else 0
            text = (f"\r{self.label} [{bar:-<24}] {share:4.0%} {done:,}/{self.total:,}  {rate:,.0f}/s  "
                    f"ETA {int(left) // 60}:{int(left) % 60:02d}")
        else:
            text = f"\r{self.label} {done:,}  {rate:,.0f}/s"
        print(text, end="", file=self.stream, flush=True)

    def close(self) -> None:
        print(file=self.stream, flush=True)


def parse_when(text: str) -> int:
    """Epoch ms of a date or date-time (China time unless the text has an offset).

    Raises:
        ValueError: not a date or date-time.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_CHINA)
    return int(moment.timestamp() * 1000)


def add_sandbox_commands(subparsers: Any, config_options: Callable[[argparse.ArgumentParser], None]
                         ) -> list[argparse.ArgumentParser]:
    """Register ``export`` and ``replay``; returns their parsers (``set_defaults(func=run_sandbox_command)``)."""
    export = subparsers.add_parser(
        "export", help="write a tenant's recorded raw inputs (event log) as JSON lines",
        description="Stream the tenant's recorded raw inputs from the event log (source, tenant, received "
        "time, the decoded input) as JSON lines, for `gateway replay`, with a release line (release_of: the "
        "quarantined line's seq) where a quarantined event was released. The store is opened read-only.")
    config_options(export)
    _window_options(export)
    export.add_argument("--tenant", required=True)
    export.add_argument("--source", default="", help="only this source (rule file name)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    replay = subparsers.add_parser(
        "replay", help="replay recorded events under candidate rules and show what would change",
        description="Run recorded events through the live configuration and through the candidate rule files "
        "in CANDIDATE_DIR (laid over the live rules directory), in memory, and report the orders whose final "
        "status, pack group, expected bill, quarantine or forwarded events would change. Exit status: 0 no "
        "difference, 1 differences, 2 error.")
    config_options(replay)
    _window_options(replay)
    replay.add_argument("events", nargs="?", metavar="EVENTS.jsonl", help="recorded inputs (`gateway export`)")
    replay.add_argument("--rules", required=True, metavar="CANDIDATE_DIR",
                        help="the changed rule files (*.toml, gifts/*.toml); the others come from the live rules; "
                        "an empty NAME.toml.delete (or gifts/NAME.toml.delete) deletes the live file NAME.toml")
    replay.add_argument("--from-store", action="store_true",
                        help="read the live event log directly (read-only) instead of EVENTS.jsonl")
    replay.add_argument("--tenant", default="", help="only this tenant (required with --from-store)")
    replay.add_argument("--merge-window-s", type=float, default=None,
                        help="candidate pack-group window (default: the live [pipeline] merge_window_s)")
    replay.add_argument("--json", action="store_true", help="print the report as one JSON object (sorted keys)")
    replay.add_argument("--lang", choices=["zh", "en"], default="zh", help="report language (default zh)")
    replay.add_argument("--limit", type=int, default=1000, help="changed orders listed in full (default 1000)")
    return [export, replay]


def _window_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=parse_when, default=0, metavar="WHEN", help="received at or after")
    parser.add_argument("--until", type=parse_when, default=0, metavar="WHEN", help="received before")


def run_sandbox_command(args: argparse.Namespace) -> int:
    """Run ``export`` or ``replay``; every refusal prints ``error: ...`` and what to do (exit 2)."""
    try:
        if args.command == "export":
            return _export(args)
        return _replay(args)
    except GatewayError as exc:
        lines = [str(e) for e in exc.errors] if isinstance(exc, RuleErrors) else [str(exc)]
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        if isinstance(exc, ConfigError):
            print("  what to do: fix each line named above and run the command again "
                  "(`gateway check-config DIR` checks rule files)", file=sys.stderr)
        return EXIT_ERROR


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(Path(args.config) if args.config else default_config_path())
    if args.data_dir:
        settings = with_overrides(settings, gateway={"data_dir": args.data_dir})
    return settings


@contextlib.contextmanager
def _live_store(settings: Settings, required: bool) -> Iterator[Store | None]:
    """The live store opened read-only (``None`` when absent and not ``required``)."""
    path = store_settings(settings).path
    if not path.is_dir() and not required:
        yield None
        return
    if not path.is_dir():
        raise GatewayError(f"{path}: no store here: check --config / --data-dir")
    with open_read_only(path) as store:
        yield store


def _export(args: argparse.Namespace) -> int:
    settings = _settings(args)
    wanted = ExportFilter(args.tenant, args.since, args.until, args.source)
    with _live_store(settings, True) as store, _output(args.output) as out:
        assert store is not None
        bar = ProgressBar("export", _last_seq(store, args.tenant))
        written = export_events(store, wanted, out, bar)
        bar.close()
    print(f"exported {written:,} recorded events of tenant {args.tenant}"
          + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    if not path:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        handle = open(path, "wb")
    except OSError as exc:
        raise GatewayError(f"{path}: cannot write the export: {exc}") from exc
    with handle:
        yield handle


def _last_seq(store: Store, tenant: str) -> int:
    figures: dict[str, Any] = summary(store)["tenants"].get(tenant, {})
    return int(figures.get("last_event_seq", 0))


def _use_install_salt(settings: Settings) -> None:
    """Buyer keys as the live gateway makes them (its salt), never creating one."""
    try:
        salt = read_salt(settings.buyer_salt_path)
    except ConfigError as exc:
        print(f"warning: {exc}; buyer keys are computed unsalted (both sides alike)", file=sys.stderr)
        salt = None
    core_ext.set_buyer_salt(salt or "")


def _replay(args: argparse.Namespace) -> int:
    if args.from_store == bool(args.events):
        raise GatewayError("give either EVENTS.jsonl or --from-store (with --tenant)")
    if args.from_store and not args.tenant:
        raise GatewayError("--from-store needs --tenant")
    settings = _settings(args)
    window_ms = round(settings.pipeline.merge_window_s * 1000)
    candidate_window = window_ms if args.merge_window_s is None else round(args.merge_window_s * 1000)
    live = load_live(settings.rules_path, window_ms)
    candidate = load_candidate(settings.rules_path, Path(args.rules), candidate_window)
    _use_install_salt(settings)
    wanted = ExportFilter(args.tenant, args.since, args.until)
    with _live_store(settings, args.from_store) as store:
        if args.from_store:
            assert store is not None
            total = _last_seq(store, args.tenant)
            lines: Iterator[dict[str, Any]] = iter_replay(store, wanted)
        else:
            path = Path(args.events)
            total = _count_lines(path)
            lines = (line for line in read_recorded(path)
                     if (not args.tenant or line["tenant"] == args.tenant) and wanted.admits(line))

        def catalog_for(tenant: str) -> Catalog:
            return load_catalog(store, tenant) if store is not None else Catalog()

        bar = ProgressBar("replay", total)
        report = run_replay(lines, live, candidate, catalog_for=catalog_for, progress=bar, limit=args.limit)
        bar.close()
    if args.json:
        sys.stdout.buffer.write(report_bytes(report) + b"\n")
        sys.stdout.flush()
    else:
        print(render_text(report, args.lang), end="")
    return EXIT_DIFFERENT if has_differences(report) else EXIT_SAME


def _count_lines(path: Path) -> int:
    """Lines of ``path`` (for the ETA); 0 when unreadable (the reader names the problem)."""
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return 0


__all__ = ["EXIT_DIFFERENT", "EXIT_ERROR", "EXIT_SAME", "ProgressBar", "add_sandbox_commands", "parse_when",
           "run_sandbox_command"]
