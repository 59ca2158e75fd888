"""Replay speed: recorded events through two rule configurations, beside durable ingest.

``python -m benchmarks replay [--events N] [--group G] [--candidate hold|refund] [--profile-events N] [--json]``

In one run:

a. **durable ingest** (the baseline): N ERP events (``benchmarks.store.make_bodies``: orders
   of four events each, 5,000 per request) through the real stages in-process, as the
   committer runs them (decode, normalise, ``plan_step``, one synced ``Store.commit`` per
   group; ``benchmarks.store.run_ingest``). This records the events in the store's event
   log, as the gateway would have over a month of traffic.
b. **replay from the store**: the same N recorded events read back from the event log
   (``gateway._sandbox.recorded.iter_replay``, the store opened read-only as ``gateway replay
   --from-store`` opens it) and replayed through the live rules (the shipped ones) and a
   candidate (``erp.toml`` with ``AUDITED`` mapped to ``ON_HOLD`` instead of ``READY_TO_PACK``:
   every order's fourth event, so EVERY order ends differently, the worst case for the replay's
   shortcut of planning alike runs once; ``--candidate refund`` maps a status this traffic never
   sends instead: nothing differs, the best case), in memory, with the final comparison and the report
   (what ``gateway._sandbox.run_replay`` does). Nothing is fsynced, encoded for the outbox or
   forwarded, and the step builds no audit or event-log record (``plan_step(records=False)``).
c. **reading alone**: the event log read back and decoded with no replay: the floor.

Target, in the ``targets`` object of ``--json`` (``benchmarks._common``):

* ``replay_over_durable_ratio`` >= 3.0: replay events/s over durable ingest events/s (issue
  16: a month of a 5,000-order/day shop, ~1.2M events, replays in under a minute).

Where the replay's time goes is always printed (``replay_split`` in ``--json``): per phase
(``gateway._sandbox.engine.PHASES``: reading the log, both sides' mapping rules, the check
whether a run is planned once, runs planned once for both sides, runs planned on each side,
then the final comparison and report, and the collector's one pass when it resumes), in
microseconds per event over the whole run.
``--profile-events N`` adds a cProfile of the first N events (by internal time).
"""

from __future__ import annotations

import cProfile
import io
import itertools
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import core_ext
from benchmarks._common import Progress, emit_json, machine, parser, print_targets, target_entry
from benchmarks.store import RULES, make_bodies, run_ingest
from gateway._daemon import tune_gc
from gateway._sandbox import load_candidate, load_live
from gateway._sandbox.diff import compare
from gateway._sandbox.engine import Replay, collector_paused
from gateway._sandbox.recorded import ExportFilter, iter_replay
from gateway._sandbox.report import build_report
from gateway._store.backup import open_read_only

TARGET_RATIO = 3.0
PHASE_TEXT = {
    "read": "reading + decoding the event log (RocksDB scan, orjson)",
    "normalise": "the mapping rules: live normalise_batch, the candidate's status codes",
    "check": "can this run be planned once for both sides?",
    "shared": "runs planned once (plan_step, records=False) and applied to both sides",
    "apart": "runs the candidate changes: planned on each side, compared per event",
    "compare": "the final per-order comparison and the report",
    "resume": "the collector's first pass once resumed (over every object the replay made), store closed",
}
TENANT = "bench"
WINDOW_MS = 1_800_000


#: ``--candidate``: what the candidate ``erp.toml`` changes (old line -> new line).
CANDIDATES = {
    # every order's fourth event: EVERY order ends differently (the worst case for sharing)
    "hold": ('AUDITED = "READY_TO_PACK"', 'AUDITED = "ON_HOLD"'),
    # a status this traffic never sends: nothing differs, every run is planned once (the best case)
    "refund": ('REFUNDING = "REFUND_INITIATED"', 'REFUNDING = "CANCELLED"'),
}


def write_candidate(directory: Path, which: str = "hold") -> Path:
    """A candidate directory: the shipped ``erp.toml`` with one status mapped otherwise (``CANDIDATES``)."""
    directory.mkdir(parents=True, exist_ok=True)
    old, new = CANDIDATES[which]
    text = (RULES / "erp.toml").read_text(encoding="utf-8")
    assert old in text
    text = text.replace("version = 1", "version = 2", 1).replace(old, new)
    (directory / "erp.toml").write_text(text, encoding="utf-8")
    return directory


def run_read(store_dir: Path, total: int) -> float:
    """Seconds to read and decode the recorded events with no replay."""
    progress = Progress("read the event log", total)
    started = time.perf_counter()
    with open_read_only(store_dir) as store:
        for count, _ in enumerate(iter_replay(store, ExportFilter(TENANT)), 1):
            if count % 50_000 == 0:
                progress.update(count)
    progress.update(total, force=True)
    return time.perf_counter() - started


def run_replay_phase(store_dir: Path, candidate_dir: Path, total: int, limit: int | None = None,
                     profile: cProfile.Profile | None = None) -> tuple[float, dict[str, Any], dict[str, float]]:
    """Seconds for a full replay from the store (``limit`` events when given), the report,
    and the seconds per phase (the engine's, then ``compare``: the comparison and report)."""
    live = load_live(RULES, WINDOW_MS)
    candidate = load_candidate(RULES, candidate_dir, WINDOW_MS)
    progress = Progress("replay (live + candidate)", limit or total)
    started = time.perf_counter()
    with open_read_only(store_dir) as store:
        lines = iter_replay(store, ExportFilter(TENANT))
        if limit is not None:
            lines = itertools.islice(lines, limit)
        if profile is not None:
            profile.enable()
        replay = Replay(live, candidate, progress.update)
        with collector_paused():  # as run_replay does
            replay.feed(lines)
            fed = time.perf_counter()
            report = build_report(replay, compare(replay))
            reported = time.perf_counter()
        if profile is not None:
            profile.disable()
    progress.update(limit or total, force=True)
    elapsed = time.perf_counter() - started
    return elapsed, report, {**replay.seconds, "compare": reported - fed, "resume": elapsed - (reported - started)}


def where_time_goes(store_dir: Path, candidate_dir: Path, events: int) -> str:
    """The top functions by internal time over a profiled replay of ``events`` events."""
    profile = cProfile.Profile()
    run_replay_phase(store_dir, candidate_dir, events, limit=events, profile=profile)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main(argv: list[str]) -> int:
    p = parser("replay", __doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="recorded events (default 1000000)")
    p.add_argument("--group", type=int, default=5_000, help="events per ingest request / group commit")
    p.add_argument("--profile-events", type=int, default=0, help="also profile the first N events (cProfile)")
    p.add_argument("--candidate", choices=sorted(CANDIDATES), default="hold",
                   help="hold: every order ends differently (default); refund: nothing does")
    args = p.parse_args(argv)
    tune_gc()
    workdir = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        print(f"replay benchmark: {args.events:,} ERP events, core={core_ext.IMPLEMENTATION}", flush=True)
        bodies = make_bodies(args.events, args.group)
        ingest = run_ingest(bodies, args.events, workdir / "store")
        del bodies
        candidate_dir = write_candidate(workdir / "candidate", args.candidate)
        read_s = run_read(workdir / "store", args.events)
        replay_s, report, phases = run_replay_phase(workdir / "store", candidate_dir, args.events)
        replay_eps = args.events / replay_s
        # What durable ingest would reach if its commit (encode, write, fsync) cost nothing.
        no_commit_eps = ingest["eps"] / max(1e-9, 1 - ingest["split"]["commit"])
        ratio = replay_eps / ingest["eps"]
        targets = {"replay_over_durable_ratio": target_entry(ratio, ">=", TARGET_RATIO, 2)}
        profile = "" if args.profile_events <= 0 else where_time_goes(
            workdir / "store", candidate_dir, min(args.profile_events, args.events))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {
        "benchmark": "replay",
        "events": args.events,
        "candidate": args.candidate,
        "core": core_ext.IMPLEMENTATION,
        "durable_ingest_eps": round(ingest["eps"]),
        "replay_eps": round(replay_eps),
        "replay_s": round(replay_s, 2),
        "read_only_eps": round(args.events / read_s),
        "read_share_of_replay": round(read_s / replay_s, 3),
        "replay_over_durable": round(ratio, 2),
        "orders": report["orders"],
        "orders_changed": report["orders_changed"],
        "seconds_per_million": round(replay_s * 1_000_000 / args.events, 1),
        "ingest_time_split": {k: round(v, 3) for k, v in ingest["split"].items()},
        "ingest_without_commit_eps": round(no_commit_eps),
        "replay_split": {name: {"share": round(spent / replay_s, 3), "us_per_event": round(spent * 1e6 / args.events, 1)}
                         for name, spent in phases.items()},
        "targets": targets,
        "machine": machine(),
    }
    print(f"  durable ingest          {ingest['eps']:>12,.0f} events/s   (baseline: synced group commits)")
    print(f"  replay from the store   {replay_eps:>12,.0f} events/s   ({replay_s:.1f} s; live + candidate, "
          f"{report['orders']:,} orders, {report['orders_changed']:,} would change)")
    print(f"  reading alone           {args.events / read_s:>12,.0f} events/s   ({read_s / replay_s:.0%} of the replay)")
    print(f"  replay / durable        {ratio:>12.2f}x   (1M events in {figures['seconds_per_million']} s)")
    print("  durable ingest split    " + ", ".join(f"{k} {v:.0%}" for k, v in ingest["split"].items())
          + f"  -> without its commit it would do {no_commit_eps:,.0f} events/s")
    print(f"  where the replay's time goes ({args.events:,} events; us per event, share of the replay):")
    for name, spent in phases.items():
        print(f"    {name:<10} {spent * 1e6 / args.events:>7.1f} us  {spent / replay_s:>4.0%}   {PHASE_TEXT[name]}")
    print_targets(targets)
    if profile:
        print("  where the time goes (cProfile of the first "
              f"{min(args.profile_events, args.events):,} events, by internal time):")
        print("\n".join("    " + line for line in profile.splitlines() if line.strip()))
    if args.json:
        emit_json(figures)
    return 0
