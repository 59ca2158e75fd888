"""Durable ingest: decode -> core -> plan -> ONE synced RocksDB write batch per group commit.

``python -m benchmarks store [--events N] [--group G] [--json]``

Drives the real stages in-process, the way the committer does (no HTTP): request bodies of
ERP events are decoded with orjson, normalised through the shipped ``erp`` rules and the
core, planned by ``plan_step`` (state machine, audit, outbox) and committed with
``Store.commit`` (``sync="group"``: one fsync per group). Orders receive several events
each, so most events update an order that is already cached in memory.

Baseline, in the same run: raw rocksdict ``WriteBatch`` writes, synced per batch, of the
same number of puts with values of the same average size (what the store writes for the
same events, without any of our Python). Targets: >= 100,000 events/s durable, and within
3x of the raw write-batch limit expressed in events/s.

The time split (decode / normalise+core / plan / commit) is printed so that a miss shows
where the time goes.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

import core_ext
from benchmarks._common import Progress, emit_json, machine, parser, verdict
from gateway._daemon import tune_gc
from gateway._mapping import load_rules
from gateway._normalize import normalise_batch
from gateway._step import plan_step
from gateway._store import StepWrite, StoreSettings, open_store

RULES = Path(__file__).resolve().parent.parent / "config" / "rules"
FLOW = ["CREATED", "PAID", "WAIT_AUDIT", "AUDITED", "PICKING", "PACKED", "SENT", "SIGNED"]


def make_bodies(events: int, group: int, events_per_order: int = 4) -> list[bytes]:
    """Request bodies of ``group`` ERP events each; each order gets ``events_per_order`` events."""
    bodies = []
    batch: list[dict[str, Any]] = []
    orders = max(1, events // events_per_order)
    for n in range(events):
        order = n % orders
        step = n // orders
        batch.append({
            "event_id": f"erp-{n:09d}",
            "platform": "douyin",
            "order_no": f"DY{order:010d}",
            "status": FLOW[step % len(FLOW)],
            "occurred_at": "2026-11-25T10:00:00+08:00",
            "buyer": {"phone": f"138{order % 10**8:08d}"},
            "amount": 129.0,
            "lines": [{"sku": "SKU-1", "qty": 1}, {"sku": "GIFT-9", "qty": 1}],
        })
        if len(batch) == group:
            bodies.append(orjson.dumps({"events": batch}))
            batch = []
    if batch:
        bodies.append(orjson.dumps({"events": batch}))
    return bodies


def puts_of(write: StepWrite) -> int:
    """Number of RocksDB puts ``Store.commit`` issues for ``write`` (dedup = one per event)."""
    return (len(write.orders) + 2 * len(write.events) + len(write.audit) + len(write.outbox)
            + len(write.quarantine) + len(write.buyer_index) + len(write.waybill_index))


def run_ingest(bodies: list[bytes], total: int, directory: Path) -> dict[str, Any]:
    rules = load_rules(RULES).get("erp")
    assert rules is not None
    split = {"decode": 0.0, "normalise": 0.0, "plan": 0.0, "commit": 0.0}
    puts = 0
    value_bytes = 0
    sampled = 0
    progress = Progress("durable ingest", total)
    done = 0
    with open_store(StoreSettings(path=directory, sync="group")) as store:
        started = time.perf_counter()
        for body in bodies:
            t0 = time.perf_counter()
            decoded = orjson.loads(body)["events"]
            t1 = time.perf_counter()
            events = normalise_batch(rules, "bench", decoded, time.time_ns() // 1_000_000)
            t2 = time.perf_counter()
            plan = plan_step(events, store.get_order, store.seen_fingerprint, store.order_for_waybill,
                             store.orders_for_buyer, time.time_ns() // 1_000_000)
            t3 = time.perf_counter()
            store.commit(plan.write)
            t4 = time.perf_counter()
            split["decode"] += t1 - t0
            split["normalise"] += t2 - t1
            split["plan"] += t3 - t2
            split["commit"] += t4 - t3
            puts += puts_of(plan.write)
            if sampled < 2000:  # average value size, for a fair raw baseline
                for record in plan.write.events[:200]:
                    value_bytes += len(orjson.dumps(record))
                    sampled += 1
            done += len(decoded)
            progress.update(done)
        elapsed = time.perf_counter() - started
    return {
        "eps": total / elapsed,
        "elapsed_s": elapsed,
        "puts": puts,
        "puts_per_event": puts / total,
        "avg_log_record_bytes": value_bytes / max(sampled, 1),
        "split": {k: v / elapsed for k, v in split.items()},
    }


def run_raw(puts: int, per_batch: int, value_size: int, directory: Path) -> float:
    """Synced raw WriteBatch puts/s: ``per_batch`` puts per batch, ``value_size`` bytes each."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    db = Rdict(str(directory), options)
    write_options = WriteOptions()
    write_options.sync = True
    value = b"v" * value_size
    progress = Progress("raw write batches", puts)
    started = time.perf_counter()
    done = 0
    key = 0
    while done < puts:
        batch = WriteBatch(raw_mode=True)
        n = min(per_batch, puts - done)
        for _ in range(n):
            batch.put(key.to_bytes(8, "big"), value)
            key += 1
        db.write(batch, write_options)
        done += n
        progress.update(done)
    elapsed = time.perf_counter() - started
    db.close()
    return puts / elapsed


def main(argv: list[str]) -> int:
    p = parser("store", __doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000, help="events to ingest (default 200000)")
    p.add_argument("--group", type=int, default=5_000, help="events per group commit (default 5000)")
    args = p.parse_args(argv)
    tune_gc()  # the daemon's GC policy, so the figure is what `gateway run` gets
    workdir = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        print(f"store benchmark: {args.events:,} ERP events, {args.group:,} per group commit, "
              f"core={core_ext.IMPLEMENTATION}, sync=group", flush=True)
        bodies = make_bodies(args.events, args.group)
        ingest = run_ingest(bodies, args.events, workdir / "ingest")
        puts_per_group = int(ingest["puts_per_event"] * args.group)
        raw_puts_s = run_raw(ingest["puts"], puts_per_group, int(ingest["avg_log_record_bytes"]), workdir / "raw")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    raw_eps = raw_puts_s / ingest["puts_per_event"]
    ratio = raw_eps / ingest["eps"]
    figures = {
        "benchmark": "store",
        "events": args.events,
        "group": args.group,
        "core": core_ext.IMPLEMENTATION,
        "durable_ingest_eps": round(ingest["eps"]),
        "puts_per_event": round(ingest["puts_per_event"], 2),
        "raw_batch_puts_s": round(raw_puts_s),
        "raw_limit_eps": round(raw_eps),
        "raw_over_ingest": round(ratio, 2),
        "time_split": {k: round(v, 3) for k, v in ingest["split"].items()},
        "target_100k": ingest["eps"] >= 100_000,
        "target_within_3x": ratio <= 3.0,
        "machine": machine(),
    }
    print(f"  durable ingest        {ingest['eps']:>12,.0f} events/s   ({ingest['puts_per_event']:.2f} puts/event)")
    print(f"  raw synced batches    {raw_puts_s:>12,.0f} puts/s  = {raw_eps:,.0f} events/s at the same puts/event")
    print(f"  raw limit / ingest    {ratio:>12.2f}x")
    print("  time split            " + ", ".join(f"{k} {v:.0%}" for k, v in ingest["split"].items()))
    print(f"  target >= 100,000 events/s: {verdict(figures['target_100k'])}; "
          f"within 3x of raw: {verdict(figures['target_within_3x'])}")
    if args.json:
        emit_json(figures)
    return 0
