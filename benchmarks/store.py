"""Durable ingest: decode -> core -> plan -> ONE synced RocksDB write batch per group commit.

``python -m benchmarks store [--events N] [--group G] [--json]``

Drives the real stages in-process, the way the committer does (no HTTP): request bodies of
ERP events are decoded with orjson, normalised through the shipped ``erp`` rules and the
core, planned by ``plan_step`` (state machine, audit, outbox) and committed with
``Store.commit`` (``sync="group"``: one fsync per group). Orders receive several events
each, so most events update an order that is already cached in memory.

Baseline, in the same run: raw rocksdict ``WriteBatch`` writes, synced once per group, of
the SAME puts the store issued for the same events — per group, the same number of puts
with the same key and value sizes, keyspace by keyspace (order records, event log with the
raw input, dedup entries, hash-chained audit, outbox, buyer index), sampled from the run's
own plans. Timed twice: the ``put`` calls plus the synced write (the baseline of the
within-3x target: what any Python code pays to write those records) and the write alone
(RocksDB's memtable, WAL and fsync: what is left after it is the budget for decoding,
mapping, planning and encoding).

Targets, in the ``targets`` object of ``--json`` (``benchmarks._common``):

* ``durable_ingest_eps`` >= 25,000: durable batched ingest, events/s. Re-planned by the
  project owner from 100,000 to what the contract (decode, normalise, plan, audit chain,
  outbox, one synced write per group) costs in CPython;
* ``raw_over_ingest_ratio`` <= 3.0: the raw write-batch limit in events/s over the
  durable ingest rate (within 3x of raw).

The time split (decode / normalise+core / plan / commit) is printed so that a miss shows
where the time goes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

import core_ext
from benchmarks._common import Progress, emit_json, machine, parser, print_targets, target_entry
from gateway._daemon import tune_gc
from gateway._pipeline import plan_step
from gateway._rules import load_rules, normalise_batch
from gateway._store import StepWrite, StoreSettings, open_store

RULES = Path(__file__).resolve().parent.parent / "config" / "rules"
TARGET_DURABLE_EPS = 25_000
TARGET_RAW_RATIO = 3.0
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


#: What ``Store.commit`` adds to a record it stores: audit ``seq``/``prev``/``hash`` (two
#: 64-hex digests and a number), outbox ``queued_at_ms``.
_AUDIT_EXTRA = len(b',"seq":1000000,"prev":"","hash":""') + 2 * 64
_OUTBOX_EXTRA = len(b',"queued_at_ms":1795669148715')


def put_sizes(write: StepWrite) -> list[tuple[int, int]]:
    """``(key bytes, value bytes)`` of every put ``Store.commit`` issues for ``write``.

    Keys are the tenant prefix (``"bench"`` + separator) plus the record's own key part.
    """
    prefix = len("bench") + 1
    sizes: list[tuple[int, int]] = []
    sizes += [(prefix + len(o.order_id), len(orjson.dumps(o.to_dict()))) for o in write.orders]
    sizes += [(prefix + 8, len(orjson.dumps(e))) for e in write.events]
    sizes += [(prefix + 8, 8)] * len(write.events)  # dedup: fingerprint -> event seq
    sizes += [(prefix + 8, len(orjson.dumps(a)) + _AUDIT_EXTRA) for a in write.audit]
    sizes += [(8, len(orjson.dumps(o)) + _OUTBOX_EXTRA) for o in write.outbox]
    sizes += [(prefix + len(orjson.dumps(q)), len(orjson.dumps(q))) for q in write.quarantine]
    sizes += [(prefix + 16 + len(order_id), 0) for _, _, _, order_id in write.buyer_index]
    sizes += [(prefix + len(waybill), len(order_id)) for _, waybill, order_id in write.waybill_index]
    return sizes


def run_ingest(bodies: list[bytes], total: int, directory: Path) -> dict[str, Any]:
    rules = load_rules(RULES).get("erp")
    assert rules is not None
    split = {"decode": 0.0, "normalise": 0.0, "plan": 0.0, "commit": 0.0}
    puts = 0
    groups: list[list[tuple[int, int]]] = []  # put sizes of the first groups, replayed raw
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
            if len(groups) < 4:
                groups.append(put_sizes(plan.write))
            done += len(decoded)
            progress.update(done)
        elapsed = time.perf_counter() - started
    return {
        "eps": total / elapsed,
        "elapsed_s": elapsed,
        "puts": puts,
        "puts_per_event": puts / total,
        "groups": len(bodies),
        "group_put_sizes": groups,
        "split": {k: v / elapsed for k, v in split.items()},
    }


def run_raw(groups: int, group_put_sizes: list[list[tuple[int, int]]], directory: Path) -> dict[str, float]:
    """Synced raw WriteBatch writes of ``groups`` groups with the sampled put sizes.

    Keys are unique (an 8-byte counter padded to the sampled key size), values are
    incompressible bytes of the sampled sizes, made before the clock starts. Two clocks:
    ``batch`` times the ``put`` calls and the synced ``write`` (what any Python code pays to
    write those records: the baseline of the <= 3x target), ``write`` the ``write`` alone
    (RocksDB's memtable + WAL + fsync).

    Returns:
        ``{"puts": n, "bytes": n, "batch_s": s, "write_s": s}``.
    """
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    db = Rdict(str(directory), options)
    write_options = WriteOptions()
    write_options.sync = True
    noise = os.urandom(1 << 16)
    progress = Progress("raw write batches", groups)
    key = 0
    puts = written = 0
    batch_s = write_s = 0.0
    for n in range(groups):
        items = []
        for key_size, value_size in group_put_sizes[n % len(group_put_sizes)]:
            key += 1
            start = key % 60_000
            items.append((key.to_bytes(8, "big") + noise[start:start + max(0, key_size - 8)],
                          noise[start:start + value_size]))
            written += max(key_size, 8) + value_size
        puts += len(items)
        started = time.perf_counter()
        batch = WriteBatch(raw_mode=True)
        put = batch.put
        for k, v in items:
            put(k, v)
        writing = time.perf_counter()
        db.write(batch, write_options)
        done = time.perf_counter()
        batch_s += done - started
        write_s += done - writing
        progress.update(n + 1)
    db.close()
    return {"puts": puts, "bytes": written, "batch_s": batch_s, "write_s": write_s}


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
        raw = run_raw(ingest["groups"], ingest["group_put_sizes"], workdir / "raw")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    per_event = ingest["puts_per_event"]
    raw_puts_s = raw["puts"] / raw["batch_s"]
    raw_eps = raw_puts_s / per_event
    write_eps = raw["puts"] / raw["write_s"] / per_event
    bytes_per_event = raw["bytes"] / raw["puts"] * per_event
    ratio = raw_eps / ingest["eps"]
    # What is left per event for all Python work at the target rate, once RocksDB has had its share.
    budget_us = 1e6 / TARGET_DURABLE_EPS - 1e6 / write_eps
    targets = {
        "durable_ingest_eps": target_entry(ingest["eps"], ">=", TARGET_DURABLE_EPS),
        "raw_over_ingest_ratio": target_entry(ratio, "<=", TARGET_RAW_RATIO, 2),
    }
    figures = {
        "benchmark": "store",
        "events": args.events,
        "group": args.group,
        "core": core_ext.IMPLEMENTATION,
        "durable_ingest_eps": round(ingest["eps"]),
        "puts_per_event": round(ingest["puts_per_event"], 2),
        "raw_batch_puts_s": round(raw_puts_s),
        "raw_bytes_per_event": round(bytes_per_event),
        "raw_limit_eps": round(raw_eps),
        "rocksdb_write_eps": round(write_eps),
        "python_budget_us_at_target": round(budget_us, 2),
        "python_us_per_event_now": round(1e6 / ingest["eps"] - 1e6 / write_eps, 2),
        "raw_over_ingest": round(ratio, 2),
        "time_split": {k: round(v, 3) for k, v in ingest["split"].items()},
        "targets": targets,
        "machine": machine(),
    }
    print(f"  durable ingest        {ingest['eps']:>12,.0f} events/s   ({ingest['puts_per_event']:.2f} puts/event)")
    print(f"  raw synced batches    {raw_puts_s:>12,.0f} puts/s  = {raw_eps:,.0f} events/s with the same puts "
          f"({bytes_per_event:,.0f} bytes/event; put calls + synced write)")
    print(f"  raw limit / ingest    {ratio:>12.2f}x")
    print(f"  per event             {1e6 / ingest['eps']:>12.1f} us now, of which RocksDB's write {1e6 / write_eps:.1f} us; "
          f"at {TARGET_DURABLE_EPS:,}/s all Python work must fit in {budget_us:.1f} us "
          f"(now {figures['python_us_per_event_now']} us)")
    print("  time split            " + ", ".join(f"{k} {v:.0%}" for k, v in ingest["split"].items()))
    print_targets(targets)
    if args.json:
        emit_json(figures)
    return 0
