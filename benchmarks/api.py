"""The operators' API on a big store: after-sales lookup latency and the OCI's cost.

``python -m benchmarks api [--orders 1000000] [--buyers 200000] [--lookups 2000] [--keep DIR]
[--json]``

**The store.** ``--orders`` orders of ``--buyers`` buyers (each buyer's orders spread over 60
days, on Douyin and Tmall), written the way the gateway writes them: ERP events normalised by
the shipped rules, planned by ``plan_step`` (state machine, audit chain, outbox, buyer and
waybill indexes, cross-channel pack groups) and committed by ``Store.commit`` in groups of
2,000, each group with the clock of its day. Four in five orders are packed and shipped:
each gets the pack line's records as a real station writes them (a closed session with its
bill and timeline, the parcel, the NVR evidence with each scan's offset), built by the real
session and evidence code once and re-keyed per order. Seeding a million orders takes a few
minutes; ``--keep DIR`` keeps the store there and reuses it on the next run with the same
sizes (the seed is deterministic).

**Lookup** (``gateway._ops_lookup.find_buyer``): ``--lookups`` random buyers by phone, with the
keyword ``礼盒``: the buyer's orders of the last 30 days with components, status words and
evidence, exactly what ``GET /api/v1/tenants/{t}/buyers/lookup`` answers before JSON encoding.
Baseline in the same run, for the same buyers: a **raw RocksDB read of the same keys**
(rocksdict, no decoding): the buyer-index prefix scan, the stations' records, the products
once, then a ``get`` of each order and of its parcel, plan, session and evidence keys --
what any code must read to answer.

**Packing proof**: ``proof_data`` of one order of a quarter of those buyers (its audit stamp
comes from the per-order audit index).

**OCI**: ``gateway._ops.oci.measure_oci`` on the whole tenant (one full scan of orders and
audit), reported per 100,000 orders.

Targets (issue 14), in ``targets`` of ``--json``: ``lookup_p99_ms`` <= 50;
``lookup_over_raw_p99`` <= 3.0 (lookup p99 over the raw read's p99).
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rocksdict import ReadOptions

from benchmarks._common import Progress, emit_json, machine, parser, print_targets, target_entry
from benchmarks._paced_client import percentile
from benchmarks.ingest import RULES
from devices.isapi import Clip, ClipSegment
from gateway._daemon import tune_gc
from gateway._model import OrderState, Status
from gateway._packline.bill import build_bill
from gateway._packline.evidence import evidence_request, evidence_write
from gateway._packline.session import open_session
from gateway._packline.values import Catalog, Product
from gateway._pipeline import plan_step
from gateway._rules import load_rules, normalise_batch
from gateway._store import StepWrite, Store, StoreSettings, open_store
from gateway._store.base import _be64, record_prefix

TENANT = "bench"
DAY_MS = 86_400_000
GROUP = 2_000
PRODUCTS = (Product("CREAM-50", "面霜 50ml", "item", ("6901234567892",), 120),
            Product("GIFTBOX-1", "礼盒", "gift_box", ("6901234567809",), 50),
            Product("TRIAL-7", "试用装", "trial", ("6901234567816",), 20))
ORDER_KEY = "__ORDER__"
SESSION_KEY = "__SESSION__"


def phone_of(buyer: int) -> str:
    return f"139{buyer:08d}"


def seed_events(orders: int, buyers: int, end_ms: int) -> list[tuple[int, list[dict[str, Any]]]]:
    """``(clock of the group, ERP events)`` per group, oldest first: order ``n`` belongs to
    buyer ``n % buyers``; the orders are spread evenly over the 60 days before ``end_ms``."""
    start_ms = end_ms - 60 * DAY_MS
    groups = []
    for first in range(0, orders, GROUP):
        clock = start_ms + (first * 60 * DAY_MS) // orders
        batch = []
        for n in range(first, min(orders, first + GROUP)):
            channel = "douyin" if n % 3 else "tmall"
            shipped = n % 5 != 0
            event: dict[str, Any] = {
                "event_id": f"api-{n:09d}", "platform": channel, "order_no": f"B{n:010d}",
                "status": "SHIPPED" if shipped else "READY_TO_PACK",
                "occurred_at": datetime.fromtimestamp(clock / 1000, UTC).isoformat(),
                "buyer": {"phone": phone_of(n % buyers)}, "amount": 329.0,
                "lines": [{"sku": "CREAM-50", "qty": 1}], "gift_box": "GIFTBOX-1", "gifts": [{"sku": "TRIAL-7"}]}
            if shipped:
                event["waybill"] = f"SF{n:012d}"
            batch.append(event)
        groups.append((clock, batch))
    return groups


def pack_templates() -> tuple[bytes, bytes, bytes]:
    """A closed session, its parcel and its evidence record for one order, as JSON with the
    placeholders ``__ORDER__`` / ``__SESSION__``: built once by the real code."""
    order = OrderState(TENANT, ORDER_KEY, Status.READY_TO_PACK, data={
        "lines": [{"sku": "CREAM-50", "qty": 1}], "gift_box": "GIFTBOX-1", "gifts": [{"sku": "TRIAL-7"}]})
    catalog = Catalog(PRODUCTS)
    bill = build_bill(ORDER_KEY, [order], catalog, [], None)
    session, _ = open_session(SESSION_KEY, "A1", "OP-0007", TENANT, bill, 1_000, order_states={ORDER_KEY: "READY_TO_PACK"})
    for offset, component in enumerate(bill.components):
        product = catalog.product(component.sku)
        session.scan_item(product, product.barcodes[0] if product else "", None, 2_000 + offset * 1_500)
    session.close(9_000)
    record = session.to_dict()
    parcel = {"group_id": ORDER_KEY, "order_ids": [ORDER_KEY], "session_id": SESSION_KEY, "station": "A1",
              "operator": "OP-0007", "packed_at_ms": 9_000, "job_id": f"{SESSION_KEY}/1", "waybill": "SF1",
              "alerted": False}
    at = datetime.fromtimestamp(0, UTC)
    clip = Clip(1, at, at + timedelta(seconds=20), (ClipSegment(at, at + timedelta(seconds=20),
                                                               "rtsp://nvr/Streaming/tracks/101?starttime=x"),), True)
    write = evidence_write(evidence_request(TENANT, record, "main", 1), clip,
                           {"path": "/var/lib/edge-gateway/evidence/x.jpg", "sha256": "0" * 64, "bytes": 1}, 10_000)
    evidence = next(value for _, kind, _, value in write.records if kind == "evidence")
    return orjson.dumps(record), orjson.dumps(parcel), orjson.dumps(evidence)


def seed(path: Path, orders: int, buyers: int, end_ms: int) -> None:
    rules = load_rules(RULES).get("erp")
    assert rules is not None
    session_t, parcel_t, evidence_t = pack_templates()
    progress = Progress("seeding orders", orders)
    done = 0
    with open_store(StoreSettings(path=path, sync="os")) as store:
        store.commit(StepWrite(records=[(TENANT, "product", p.sku, p.to_dict()) for p in PRODUCTS]))
        for clock, batch in seed_events(orders, buyers, end_ms):
            events = normalise_batch(rules, TENANT, batch, clock)
            plan = plan_step(events, store.get_order, store.seen_fingerprint, store.order_for_waybill,
                             store.orders_for_buyer, clock)
            for event in batch:
                if event.get("waybill"):
                    order_id = f"{event['platform']}|{event['order_no']}"
                    session_id = f"A1-{event['order_no']}"
                    keys = ((ORDER_KEY.encode(), order_id.encode()), (SESSION_KEY.encode(), session_id.encode()))
                    records = []
                    for kind, template, record_id in (("session", session_t, session_id),
                                                      ("parcel", parcel_t, order_id),
                                                      ("evidence", evidence_t, f"{order_id}|{session_id}")):
                        for old, new in keys:
                            template = template.replace(old, new)
                        records.append((TENANT, kind, record_id, orjson.loads(template)))
                    plan.write.records.extend(records)
            store.commit(plan.write)
            done += len(batch)
            progress.update(done)
    progress.update(done, force=True)


def raw_read(store: Store, phone_key: int, since_ms: int) -> int:
    """Bytes read by a raw rocksdict read of the keys a lookup needs (see the module docstring)."""
    cfs = store._cfs  # the baseline reads RocksDB directly, on purpose
    assert cfs is not None
    prefix = TENANT.encode() + b"\0"
    start = prefix + _be64(phone_key) + _be64(max(0, since_ms))
    stop = prefix + _be64(phone_key + 1)
    total = 0
    options = ReadOptions()
    options.set_iterate_upper_bound(stop)
    order_ids = [key[len(prefix) + 16:] for key, _ in cfs["idx_buyer"].items(from_key=start, read_opt=options)]
    packline = cfs["packline"]
    station = record_prefix("station", "")
    stations = ReadOptions()
    stations.set_iterate_upper_bound(station[:-1] + b"\x01")
    total += sum(len(v) for _, v in packline.items(from_key=station, read_opt=stations))
    for sku in PRODUCTS:  # each product once per lookup, as the lookup reads them
        total += len(packline.get(record_prefix("product", TENANT) + sku.sku.encode()) or b"")
    for order_id in order_ids:
        total += len(cfs["orders"].get(prefix + order_id) or b"")
        for kind in ("parcel", "plan"):
            total += len(packline.get(record_prefix(kind, TENANT) + order_id) or b"")
        session_id = b"A1-" + order_id.split(b"|", 1)[-1]
        total += len(packline.get(record_prefix("session", TENANT) + session_id) or b"")
        total += len(packline.get(record_prefix("evidence", TENANT) + order_id + b"|" + session_id) or b"")
    return total


def main(argv: list[str]) -> int:
    p = parser("api", __doc__.strip().splitlines()[0])
    p.add_argument("--orders", type=int, default=1_000_000, help="orders in the store (default 1,000,000)")
    p.add_argument("--buyers", type=int, default=200_000, help="buyers they belong to (default 200,000)")
    p.add_argument("--lookups", type=int, default=2_000, help="lookups measured (default 2,000)")
    p.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the seeded store in this directory")
    args = p.parse_args(argv)
    tune_gc()
    import core_ext
    from gateway._ops.oci import measure_oci
    from gateway._ops_lookup import find_buyer, proof_data

    end_ms = 1_798_761_600_000  # 2027-01-01 UTC: fixed, so a kept store stays valid
    speed = machine()
    temp = None
    if args.keep is not None:
        directory = args.keep
        marker = directory / "seeded.json"
        wanted = {"orders": args.orders, "buyers": args.buyers, "end_ms": end_ms, "format": 1}
        if not (marker.exists() and orjson.loads(marker.read_bytes()) == wanted):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            t0 = time.perf_counter()
            seed(directory / "store", args.orders, args.buyers, end_ms)
            print(f"  seeded in {time.perf_counter() - t0:.0f} s", flush=True)
            marker.write_bytes(orjson.dumps(wanted))
    else:
        temp = Path(tempfile.mkdtemp(prefix="bench-api-"))
        directory = temp
        t0 = time.perf_counter()
        seed(directory / "store", args.orders, args.buyers, end_ms)
        print(f"  seeded in {time.perf_counter() - t0:.0f} s", flush=True)
    try:
        rng = random.Random(14)
        buyers = [rng.randrange(args.buyers) for _ in range(args.lookups)]
        since = end_ms - 30 * DAY_MS
        with open_store(StoreSettings(path=directory / "store", sync="os")) as store:
            for buyer in buyers[:50]:  # warm the block cache the way a running gateway has it
                find_buyer(store, TENANT, phone=phone_of(buyer), keyword="礼盒", now_ms=end_ms)
            lookup_ms, raw_ms, shown = [], [], []
            progress = Progress("lookups", len(buyers))
            for index, buyer in enumerate(buyers):
                key = core_ext.buyer_key(TENANT, "phone", phone_of(buyer))
                t0 = time.perf_counter()
                raw_read(store, key, since)
                t1 = time.perf_counter()
                found = find_buyer(store, TENANT, phone=phone_of(buyer), keyword="礼盒", now_ms=end_ms)
                t2 = time.perf_counter()
                raw_ms.append((t1 - t0) * 1000)
                lookup_ms.append((t2 - t1) * 1000)
                shown.append(len(found.orders))
                progress.update(index + 1)
            proof_ms = []
            for buyer in buyers[: max(1, len(buyers) // 4)]:  # the proof of one of the buyer's orders
                order_id = f"{'douyin' if buyer % 3 else 'tmall'}|B{buyer:010d}"
                t0 = time.perf_counter()
                proof_data(store, TENANT, order_id)
                proof_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            oci = measure_oci(store, TENANT)
            oci_s = time.perf_counter() - t0
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    lookup_p50, lookup_p99 = percentile(lookup_ms, 0.50), percentile(lookup_ms, 0.99)
    raw_p50, raw_p99 = percentile(raw_ms, 0.50), percentile(raw_ms, 0.99)
    per_100k = oci_s * 100_000 / max(1, args.orders)
    print(f"api benchmark: {args.orders:,} orders of {args.buyers:,} buyers, {args.lookups:,} lookups by phone "
          f"(keyword 礼盒), {statistics.mean(shown):.1f} orders shown per lookup")
    print(f"  machine: {speed}")
    print(f"  raw RocksDB read of the same keys   p50 {raw_p50:7.3f} ms  p99 {raw_p99:7.3f} ms")
    print(f"  after-sales lookup                  p50 {lookup_p50:7.3f} ms  p99 {lookup_p99:7.3f} ms  "
          f"max {max(lookup_ms):.3f} ms  ({lookup_p99 / raw_p99:.1f}x the raw read at p99)")
    print(f"  packing proof (JSON data)           p50 {percentile(proof_ms, 0.5):7.3f} ms  "
          f"p99 {percentile(proof_ms, 0.99):7.3f} ms  ({len(proof_ms):,} orders)")
    print(f"  OCI over the whole tenant           {oci_s:.1f} s = {per_100k:.2f} s per 100,000 orders "
          f"(passes: {oci.get('passes_s')})")
    targets = {"lookup_p99_ms": target_entry(lookup_p99, "<=", 50.0, 3),
               "lookup_over_raw_p99": target_entry(lookup_p99 / raw_p99, "<=", 3.0, 2)}
    print_targets(targets)
    if args.json:
        emit_json({"benchmark": "api", "orders": args.orders, "buyers": args.buyers, "lookups": args.lookups,
                   "lookup_ms": {"p50": lookup_p50, "p99": lookup_p99, "max": max(lookup_ms)},
                   "raw_ms": {"p50": raw_p50, "p99": raw_p99},
                   "proof_ms": {"p50": percentile(proof_ms, 0.5), "p99": percentile(proof_ms, 0.99)}, "oci_s": oci_s, "oci_s_per_100k_orders": per_100k,
                   "machine": speed, "targets": targets})
    return 0


__all__ = ["main", "seed"]
