"""A year in the store: durable ingest and the after-sales lookup on a full store vs an empty one.

``python -m benchmarks year [--orders-per-day 5000] [--days 365] [--measure-days 8] [--lookups 2000]
[--keep DIR] [--json]``

**The year.** ``--days`` days of a shop taking ``--orders-per-day`` orders (default: a year of a
5,000-order/day shop, 1,825,000 orders, ~9.5M events), written the way the gateway writes them:
ERP events normalised by the shipped rules, planned by ``plan_step`` and committed by
``Store.commit``, one group per quarter day with the clock of that quarter. Each order lives the
way orders do, over four days: paid and audited on its first day, packed and shipped (with a
waybill) on the next, delivered two days later; one in fifty goes into a refund after delivery
(``REFUNDING``) and half of those are refunded. Buyers come back: the shop has ``orders/4``
buyers, so a buyer's phone indexes about four orders a year. Four in five shipped orders get
the pack line's records as a real station writes them (session, parcel, evidence; the same
templates as ``benchmarks api``). Seeding a year takes a while (about 10 min here); ``--keep
DIR`` keeps it and reuses it on the next run with the same sizes (the seed is deterministic).

**Measured, on the year store and on an empty store, in the same run** (each opened fresh, as
after a restart; the year is measured on a RocksDB checkpoint of it, so a kept year stays as
seeded):

* durable ingest (``sync="group"``, one fsync per group) of the next ``--measure-days`` days of
  the same traffic, in groups of 500 events (a busy webhook flow's group size);
* the after-sales lookup (``find_buyer``: by phone, keyword 礼盒, the last 30 days) of
  ``--lookups`` buyers who ordered in the measured days.

Targets (issue 15), in ``targets`` of ``--json``: ``ingest_year_over_empty`` <= 1.5 (the empty
store's events/s over the year store's) and ``lookup_p99_year_over_empty`` <= 1.5. The store's
size on disk per million orders is printed too (the README's box sizing comes from it).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rocksdict import Checkpoint

from benchmarks._common import Progress, emit_json, machine, parser, print_targets, target_entry
from benchmarks._paced_client import percentile
from benchmarks.api import PRODUCTS, TENANT, pack_templates, phone_of
from benchmarks.ingest import RULES
from gateway._daemon import tune_gc
from gateway._pipeline import plan_step
from gateway._rules import load_rules, normalise_batch
from gateway._store import StepWrite, Store, StoreSettings, open_store

DAY_MS = 86_400_000
QUARTER_MS = DAY_MS // 4
START_MS = 1_767_225_600_000  # 2026-01-01 UTC: fixed, so a kept store stays valid
MEASURE_GROUP = 500
#: (days after the order's first day, quarter of that day, ERP status); one in fifty orders
#: goes on into REFUNDING on day 5 and half of those to REFUNDED on day 7.
LIFE = ((0, 1, "PAID"), (0, 2, "AUDITED"), (1, 0, "PACKED"), (1, 1, "SENT"), (3, 2, "SIGNED"))
AFTER_SALES = ((5, 1, "REFUNDING"), (7, 1, "REFUNDED"))


def _order_no(n: int) -> str:
    return f"Y{n:010d}"


def _event(n: int, step: int, status: str, buyers: int, clock_ms: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"year-{n:010d}-{step}", "platform": "douyin" if n % 3 else "tmall",
        "order_no": _order_no(n), "status": status,
        "occurred_at": datetime.fromtimestamp(clock_ms / 1000, UTC).isoformat(),
        "buyer": {"phone": phone_of(n % buyers)}, "amount": 329.0,
        "lines": [{"sku": "CREAM-50", "qty": 1}], "gift_box": "GIFTBOX-1", "gifts": [{"sku": "TRIAL-7"}]}
    if status == "SENT":
        event["waybill"] = f"SF{n:012d}"
    return event


def traffic(first_day: int, days: int, per_day: int, buyers: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(clock, events)`` per quarter day from ``first_day`` for ``days`` days: every order of the
    shop (order ``n`` starts on day ``n // per_day``) contributes the events of its life that
    fall into that quarter. Deterministic."""
    steps = LIFE + AFTER_SALES
    for day in range(first_day, first_day + days):
        for quarter in range(4):
            clock = START_MS + day * DAY_MS + quarter * QUARTER_MS
            batch = []
            for index, (after, at_quarter, status) in enumerate(steps):
                if at_quarter != quarter or day - after < 0:
                    continue
                first = (day - after) * per_day
                for n in range(first, first + per_day):
                    if index >= len(LIFE) and n % 50 not in ((7, 17) if index == len(LIFE) else (7,)):
                        continue  # after-sales: n % 50 == 7 refunded, == 17 disputed and still open
                    batch.append(_event(n, index, status, buyers, clock))
            if batch:
                yield clock, batch


def _pack_records(batch: list[dict[str, Any]], templates: tuple[bytes, bytes, bytes]) -> list[Any]:
    """The pack line's records for the orders ``batch`` ships (four in five), from the templates."""
    records: list[Any] = []
    session_t, parcel_t, evidence_t = templates
    for event in batch:
        if event["status"] != "SENT" or int(event["order_no"][1:]) % 5 == 0:
            continue
        order_id = f"{event['platform']}|{event['order_no']}"
        session_id = f"A1-{event['order_no']}"
        for kind, template, record_id in (("session", session_t, session_id), ("parcel", parcel_t, order_id),
                                          ("evidence", evidence_t, f"{order_id}|{session_id}")):
            text = template.replace(b"__ORDER__", order_id.encode()).replace(b"__SESSION__", session_id.encode())
            records.append((TENANT, kind, record_id, orjson.loads(text)))
    return records


def ingest(store: Store, groups: Iterator[tuple[int, list[dict[str, Any]]]], total: int, label: str,
           group_size: int = 0) -> tuple[int, float]:
    """Normalise, plan and commit ``groups`` (split into ``group_size`` events when given);
    returns ``(events, seconds)``."""
    rules = load_rules(RULES).get("erp")
    assert rules is not None
    templates = pack_templates()
    progress = Progress(label, total)
    done = 0
    elapsed = 0.0
    for clock, batch in groups:
        chunks = [batch[i:i + group_size] for i in range(0, len(batch), group_size)] if group_size else [batch]
        for chunk in chunks:
            started = time.perf_counter()
            events = normalise_batch(rules, TENANT, chunk, clock)
            plan = plan_step(events, store.get_order, store.seen_fingerprint, store.order_for_waybill,
                             store.orders_for_buyer, clock)
            plan.write.records.extend(_pack_records(chunk, templates))
            store.commit(plan.write)
            elapsed += time.perf_counter() - started
            done += len(chunk)
            progress.update(min(done, total))
    progress.update(total, force=True)
    return done, elapsed


def expected_events(days: int, per_day: int) -> int:
    """Events ``traffic`` yields over ``days`` full days (an estimate: the life of every order)."""
    return days * per_day * len(LIFE) + days * per_day * 3 // 50


def seed_year(path: Path, days: int, per_day: int, buyers: int) -> None:
    with open_store(StoreSettings(path=path, sync="os")) as store:
        store.commit(StepWrite(records=[(TENANT, "product", p.sku, p.to_dict()) for p in PRODUCTS]))
        ingest(store, traffic(0, days, per_day, buyers), expected_events(days, per_day), "seeding the year")


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(path: Path, first_day: int, args: Any, buyers: int, label: str) -> dict[str, Any]:
    """Durable ingest of the measured days, then lookups of their buyers, on the store at ``path``."""
    from gateway._ops_lookup import find_buyer

    total = expected_events(args.measure_days, args.orders_per_day)
    with open_store(StoreSettings(path=path, sync="group")) as store:
        if label == "empty":
            store.commit(StepWrite(records=[(TENANT, "product", p.sku, p.to_dict()) for p in PRODUCTS]))
        events, seconds = ingest(store, traffic(first_day, args.measure_days, args.orders_per_day, buyers),
                                 total, f"durable ingest, {label} store", MEASURE_GROUP)
        rng = random.Random(15)
        first_order = first_day * args.orders_per_day
        wanted = [(first_order + rng.randrange(args.measure_days * args.orders_per_day)) % buyers
                  for _ in range(args.lookups)]
        now_ms = START_MS + (first_day + args.measure_days) * DAY_MS
        for buyer in wanted[:50]:  # warm the block cache the way a running gateway has it
            find_buyer(store, TENANT, phone=phone_of(buyer), keyword="礼盒", now_ms=now_ms)
        lookup_ms, shown = [], []
        progress = Progress(f"lookups, {label} store", len(wanted))
        for index, buyer in enumerate(wanted):
            started = time.perf_counter()
            found = find_buyer(store, TENANT, phone=phone_of(buyer), keyword="礼盒", now_ms=now_ms)
            lookup_ms.append((time.perf_counter() - started) * 1000)
            shown.append(len(found.orders))
            progress.update(index + 1)
        rss = _fill_order_cache(store, first_order, store.settings.cache_orders) if label == "year" else None
    return {"events": events, "eps": events / seconds, "lookup_p50_ms": percentile(lookup_ms, 0.5),
            "lookup_p99_ms": percentile(lookup_ms, 0.99), "orders_shown": sum(shown) / len(shown),
            "rss_full_cache_mib": rss}


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _fill_order_cache(store: Store, first_order: int, count: int) -> float:
    """Read the ``count`` newest orders (the order cache's size) and return this process's RSS:
    what a gateway that has run a while holds (full order cache, block cache, memtables)."""
    progress = Progress("filling the order cache", count)
    for done, n in enumerate(range(max(0, first_order - count), first_order)):
        store.get_order(TENANT, f"{'douyin' if n % 3 else 'tmall'}|{_order_no(n)}")
        progress.update(done + 1)
    return _rss_mib()


def main(argv: list[str]) -> int:
    p = parser("year", __doc__.strip().splitlines()[0])
    p.add_argument("--orders-per-day", type=int, default=5_000, help="the shop's orders a day (default 5,000)")
    p.add_argument("--days", type=int, default=365, help="days in the full store (default 365)")
    p.add_argument("--measure-days", type=int, default=8, help="days of traffic ingested in the measurement")
    p.add_argument("--lookups", type=int, default=2_000, help="lookups measured per store (default 2,000)")
    p.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the seeded year in this directory")
    args = p.parse_args(argv)
    tune_gc()
    import core_ext

    buyers = max(1, args.orders_per_day * args.days // 4)
    temp = Path(tempfile.mkdtemp(prefix="bench-year-"))
    directory = args.keep if args.keep is not None else temp / "year"
    wanted = {"orders_per_day": args.orders_per_day, "days": args.days, "format": 1}
    marker = directory / "seeded.json"
    seed_s = None
    if not (marker.exists() and orjson.loads(marker.read_bytes()) == wanted):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        started = time.perf_counter()
        seed_year(directory / "store", args.days, args.orders_per_day, buyers)
        seed_s = time.perf_counter() - started
        marker.write_bytes(orjson.dumps(wanted))
    try:
        work = temp / "measured-year"  # measure on a checkpoint (hard links): a kept year stays as seeded
        with open_store(StoreSettings(path=directory / "store", sync="os")) as seeded:
            Checkpoint(seeded._live_db()).create_checkpoint(str(work))
        year_disk = disk_bytes(work)
        full = measure(work, args.days, args, buyers, "year")
        empty = measure(temp / "empty", args.days, args, buyers, "empty")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    orders = args.orders_per_day * args.days
    ingest_ratio = empty["eps"] / full["eps"]
    lookup_ratio = full["lookup_p99_ms"] / empty["lookup_p99_ms"]
    per_million = year_disk / orders * 1_000_000
    print(f"year benchmark: {orders:,} orders ({args.days} days of {args.orders_per_day:,}/day), "
          f"core={core_ext.IMPLEMENTATION}" + (f", seeded in {seed_s:.0f} s" if seed_s else ", kept store"))
    print(f"  machine: {machine()}")
    print(f"  store on disk            {year_disk / 2**30:8.2f} GiB = {per_million / 2**30:.2f} GiB per million orders")
    for label, figures in (("empty store", empty), ("year store", full)):
        print(f"  {label:<12} durable ingest {figures['eps']:>9,.0f} events/s   lookup p50 "
              f"{figures['lookup_p50_ms']:6.3f} ms  p99 {figures['lookup_p99_ms']:6.3f} ms  "
              f"({figures['orders_shown']:.1f} orders shown)")
    targets = {"ingest_year_over_empty": target_entry(ingest_ratio, "<=", 1.5, 2),
               "lookup_p99_year_over_empty": target_entry(lookup_ratio, "<=", 1.5, 2)}
    if full["rss_full_cache_mib"]:
        print(f"  RSS with the order cache full (cache_orders), the block "
              f"cache and memtables in use: {full['rss_full_cache_mib']:.0f} MiB (this process)")
    print_targets(targets)
    if args.json:
        emit_json({"benchmark": "year", "orders": orders, "days": args.days, "orders_per_day": args.orders_per_day,
                   "measure_days": args.measure_days, "disk_bytes": year_disk, "disk_bytes_per_million_orders": per_million,
                   "seed_s": seed_s, "empty": empty, "year": full, "core": core_ext.IMPLEMENTATION,
                   "machine": machine(), "targets": targets})
    return 0


__all__ = ["main", "traffic"]
