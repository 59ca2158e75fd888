"""A day of traffic with the upstream down and the outbox full: the gateway's RSS and disk stay bounded.

``python -m benchmarks soak [--hours-of-traffic 24] [--orders-per-day 20000] [--stations 4]
[--outbox-bound 20000] [--json]``

**Setup.** A real ``gateway run`` process (the shipped rules, ``[store] sync = "group"``, a
tmp data dir) whose ``[upstream]`` is a port on 127.0.0.1 where nothing listens: the upstream
is down for the whole run, so every event stays in the outbox. The outbox bound is set to
``--outbox-bound`` events (reserve 10 %), so it is reached within the first hours and the rest
of the day runs **with the outbox full**: webhooks get 503 + ``Retry-After`` (the platforms
retry; nothing is lost), pack-line scans still go through on the reserve. ``--stations``
stations with a serial scanner each on a real pty, and a catalog of one item.

**A day, compressed.** ``--hours-of-traffic`` hours of a shop taking ``--orders-per-day`` orders
(default 20,000: four times a 5,000-order/day shop, a sale day), each simulated hour sent as
fast as the gateway takes it, with the day's shape (quiet at night, peaks at 10-11 h and
20-22 h). Per hour: the hour's new orders (paid and audited) and the shipping of the orders of
two hours before, as signed ERP batches of 1-20 events over 8 keep-alive connections; each
station packs ``parcels_per_station_hour`` parcels (badge, order, item: the parcel closes);
50 after-sales lookups by phone and one ``/metrics`` scrape. Timers inside the gateway (retry
backoff, the operators' report) run in real time, so the compressed day exercises traffic,
not the clock.

**Measured** after every simulated hour: the gateway's RSS (``/proc/PID/status`` VmRSS) and
the data directory's size. Baselines in the same run: the RSS of the idle gateway just started,
and the bytes of the requests the gateway accepted (what the platforms sent it).

Targets (issue 15), in ``targets`` of ``--json``, the documented bounds (README, "Box size"):

* ``rss_peak_mib`` <= 400 (the systemd unit's MemoryHigh is 1536M);
* ``rss_growth_while_full`` <= 1.05: RSS at the end over RSS in the first hour the outbox was full
  (at its bound: webhooks refused, stations too once the reserve is spent). While the store fills,
  RSS grows by design (memtables up to 128 MiB, the order cache, recent fingerprints); once
  nothing more is stored it must stay flat: no leak while refusals go on. Not measured (a miss)
  when the outbox never filled;
* ``disk_bytes_per_stored_event`` <= 6,000 (data directory over events and scans stored:
  bounded because the outbox bound bounds what is stored while the upstream is down).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks._common import emit_json, machine, parser, print_targets, target_entry
from benchmarks._load import drive
from benchmarks.ingest import RULES, SECRET, TENANT, free_port, post_request
from benchmarks.packline import ITEM, SKU
from devices.simulators.scanner import PtyScanner, frame

#: Share of the day's orders per hour (sums to 1): night, the morning peak, the evening peak.
SHAPE = (1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 7, 7, 6, 5, 5, 5, 5, 5, 6, 7, 8, 8, 6, 4)
PARCELS_PER_STATION_HOUR = 30
LOOKUPS_PER_HOUR = 50
RSS_PEAK_MIB = 400.0
RSS_GROWTH = 1.05
DISK_PER_EVENT = 6_000.0


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def write_config(workdir: Path, port: int, down_port: int, stations: list[str], paths: list[str],
                 bound: int) -> Path:
    text = [f"[gateway]\nid = 'soak'\ndata_dir = '{workdir / 'data'}'\nrules_dir = '{RULES}'\nrules_poll_s = 0\n"
            f"[http]\nhost = '127.0.0.1'\nport = {port}\n"
            f"[store]\nsync = 'group'\noutbox_max_events = {bound}\noutbox_reserve_events = {max(1, bound // 10)}\n"
            f"[upstream]\nurl = 'http://127.0.0.1:{down_port}/erp'\nsecret = 'soak-upstream-secret-0123456789'\n"
            f"[demo]\nenabled = false\n[tenants.{TENANT}.erp]\nsecret = '{SECRET}'\n"
            f"[packline]\ntenant = '{TENANT}'\n"]
    for name, path in zip(stations, paths, strict=True):
        text.append(f"[stations.{name}]\n[[stations.{name}.scanners]]\nkind = 'serial'\npath = '{path}'\n")
    config = workdir / "gateway.toml"
    config.write_text("".join(text), encoding="utf-8")
    return config


def hour_events(hour: int, per_day: int, first_order: list[int]) -> list[dict[str, Any]]:
    """The hour's events: its new orders paid and audited, the orders of two hours before shipped."""
    share = SHAPE[hour % 24] / sum(SHAPE)
    count = max(1, round(per_day * share))
    start = first_order[hour]
    first_order.append(start + count)
    clock = f"2026-11-11T{hour % 24:02d}:30:00+08:00"
    events = []
    for n in range(start, start + count):
        for status in ("PAID", "AUDITED"):
            events.append({"event_id": f"soak-{n}-{status}", "platform": "douyin", "order_no": f"SK{n:09d}",
                           "status": status, "occurred_at": clock, "buyer": {"phone": f"135{n % 10**8:08d}"},
                           "amount": 199.0, "lines": [{"sku": "SKU-1", "qty": 1}]})
    if hour >= 2:
        for n in range(first_order[hour - 2], first_order[hour - 1]):
            events.append({"event_id": f"soak-{n}-SENT", "platform": "douyin", "order_no": f"SK{n:09d}",
                           "status": "SENT", "occurred_at": clock, "waybill": f"SF{n:012d}"})
    return events


def batches(events: list[dict[str, Any]], rng: random.Random) -> list[bytes]:
    bodies, at = [], 0
    while at < len(events):
        size = rng.choice((1, 1, 1, 2, 5, 20))
        bodies.append(orjson.dumps({"events": events[at:at + size]}))
        at += size
    return bodies


def pack_orders(stations: int, hours: int) -> list[dict[str, Any]]:
    return [{"event_id": f"pack-{s}-{k}", "platform": "douyin", "order_no": f"PK{s:03d}{k:05d}",
             "status": "READY_TO_PACK", "occurred_at": "2026-11-11T00:00:00+08:00",
             "buyer": {"phone": f"136{s:03d}{k:05d}"}, "amount": 59.0, "lines": [{"sku": SKU, "qty": 1}]}
            for s in range(stations) for k in range(hours * PARCELS_PER_STATION_HOUR)]


def pack_hour(ptys: list[PtyScanner], hour: int) -> int:
    """Each station packs its parcels of ``hour`` (order, item: closes); returns scans written."""
    written = 0
    for k in range(hour * PARCELS_PER_STATION_HOUR, (hour + 1) * PARCELS_PER_STATION_HOUR):
        for s, pty in enumerate(ptys):
            assert pty.master_fd is not None
            for data in (frame(f"PK{s:03d}{k:05d}", aim="]C0"), frame(ITEM, aim="]E0")):
                os.write(pty.master_fd, data)
                written += 1
        time.sleep(0.02)  # a packer is not a machine gun: let each parcel's scans land
    return written


def start(config: Path, port: int) -> subprocess.Popen[bytes]:
    log = (config.parent / "gateway.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config), "--no-demo"],
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited: see {config.parent / 'gateway.log'}")
        time.sleep(0.2)
    raise RuntimeError("the gateway did not answer /livez within 60 s")


def main(argv: list[str]) -> int:
    p = parser("soak", __doc__.strip().splitlines()[0])
    p.add_argument("--hours-of-traffic", type=int, default=24, help="simulated hours (default 24)")
    p.add_argument("--orders-per-day", type=int, default=20_000, help="orders a day (default 20,000)")
    p.add_argument("--stations", type=int, default=4, help="pack stations (default 4)")
    p.add_argument("--outbox-bound", type=int, default=20_000, help="[store] outbox_max_events (default 20,000)")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    rng = random.Random(15)
    names = [f"soak-{n + 1:02d}" for n in range(args.stations)]
    ptys = [PtyScanner(workdir / f"scanner-{n}") for n in range(args.stations)]
    for pty in ptys:
        pty.plug()
    port, down = free_port(), free_port()
    config = write_config(workdir, port, down, names, [pty.path for pty in ptys], args.outbox_bound)
    process = start(config, port)
    base = f"http://127.0.0.1:{port}"
    series: list[dict[str, Any]] = []
    totals = {"sent_events": 0, "accepted_events": 0, "refused_503": 0, "other_status": 0, "scans": 0,
              "accepted_bytes": 0, "lookups": 0}
    try:
        token = (workdir / "data" / "api-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        idle_rss = rss_mib(process.pid)
        catalog = f"sku,name,kind,barcodes,weight_g,parts,serialised,stock\n{SKU},Soak item,item,{ITEM},100,,,\n"
        httpx.post(f"{base}/api/v1/tenants/{TENANT}/catalog?format=csv", content=catalog.encode(), headers=auth,
                   timeout=30).raise_for_status()
        drive(("127.0.0.1", port), [post_request(port, orjson.dumps({"events": chunk}), str(int(time.time())))
                                    for chunk in _chunks(pack_orders(args.stations, args.hours_of_traffic), 500)],
              2, "pack orders", events_per_request=500)
        for n, pty in enumerate(ptys):
            assert pty.master_fd is not None
            os.write(pty.master_fd, frame(f"OP-{n + 1:04d}", aim="]C0"))
        time.sleep(1.0)
        first_order = [0]
        for hour in range(args.hours_of_traffic):
            events = hour_events(hour, args.orders_per_day, first_order)
            bodies = batches(events, rng)
            stamp = str(int(time.time()))
            requests = [post_request(port, body, stamp) for body in bodies]
            load = drive(("127.0.0.1", port), requests, 8, f"hour {hour + 1:2d} webhooks")
            totals["sent_events"] += len(events)
            sizes = [len(orjson.loads(body)["events"]) for body in bodies]
            ok_share = load.statuses.get(200, 0) / max(1, len(bodies))
            totals["accepted_events"] += round(sum(sizes) * ok_share)
            totals["accepted_bytes"] += round(sum(len(b) for b in bodies) * ok_share)
            totals["refused_503"] += load.statuses.get(503, 0)
            totals["other_status"] += sum(c for s, c in load.statuses.items() if s not in (200, 503))
            totals["scans"] += pack_hour(ptys, hour)
            with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
                for _ in range(LOOKUPS_PER_HOUR):
                    n = rng.randrange(max(1, first_order[-1]))
                    client.get(f"/api/v1/tenants/{TENANT}/buyers/lookup", params={"phone": f"135{n % 10**8:08d}"})
                    totals["lookups"] += 1
                client.get("/metrics")
                outbox = client.get("/api/v1/outbox").json()
            series.append({"hour": hour + 1, "rss_mib": round(rss_mib(process.pid), 1),
                           "disk_mib": round(disk_bytes(workdir / "data") / 2**20, 1),
                           "outbox_events": outbox["backlog_events"],
                           "webhooks_503": load.statuses.get(503, 0)})
            progress(f"hour {hour + 1:2d}: RSS {series[-1]['rss_mib']} MiB, data {series[-1]['disk_mib']} MiB, "
                     f"outbox {series[-1]['outbox_events']}, 503s {series[-1]['webhooks_503']}")
        with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
            packed, cursor = 0, None
            while True:  # the parcels the stations closed, page by page
                page = client.get(f"/api/v1/tenants/{TENANT}/packline/parcel",
                                  params={"limit": 500, **({"cursor": cursor} if cursor else {})}).json()
                packed += len(page["items"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        for pty in ptys:
            pty.unplug()
        disk_end = disk_bytes(workdir / "data")
        shutil.rmtree(workdir, ignore_errors=True)
    peak = max(point["rss_mib"] for point in series)
    full_at = next((p for p in series if p["outbox_events"] >= args.outbox_bound), None)
    warm = (full_at or series[-1])["rss_mib"]
    growth = series[-1]["rss_mib"] / warm
    stored = totals["accepted_events"] + totals["scans"]
    disk_peak = max(point["disk_mib"] for point in series) * 2**20  # while running: WAL and memtables' files too
    per_event = max(disk_peak, disk_end) / max(1, stored)
    print(f"soak benchmark: {args.hours_of_traffic} h of {args.orders_per_day:,} orders/day, {args.stations} stations, "
          f"upstream down, outbox bound {args.outbox_bound:,} events")
    print(f"  machine: {machine()}")
    print(f"  events sent {totals['sent_events']:,}, accepted {totals['accepted_events']:,} "
          f"({totals['accepted_bytes'] / 2**20:.1f} MiB of requests), webhooks refused with 503: "
          f"{totals['refused_503']:,}, other statuses: {totals['other_status']}")
    print(f"  scans written {totals['scans']:,}, parcels listed {packed:,}, lookups {totals['lookups']:,}")
    full = f"when the outbox was full (hour {full_at['hour']}) {warm:.1f}" if full_at else "the outbox never filled"
    print(f"  RSS: idle {idle_rss:.1f} MiB (baseline), {full}, peak {peak:.1f}, end {series[-1]['rss_mib']:.1f} MiB")
    print(f"  disk: peak {disk_peak / 2**20:.1f} MiB while running, {disk_end / 2**20:.1f} MiB after the stop; "
          f"{per_event:,.0f} bytes per stored event or scan at the peak "
          f"(the requests themselves: {totals['accepted_bytes'] / max(1, totals['accepted_events']):,.0f} bytes/event)")
    print("  per hour: " + ", ".join(f"{p['hour']}h {p['rss_mib']}M/{p['disk_mib']}M" for p in series))
    targets = {"rss_peak_mib": target_entry(peak, "<=", RSS_PEAK_MIB, 1),
               "rss_growth_while_full": target_entry(growth if full_at else None, "<=", RSS_GROWTH, 3),
               "disk_bytes_per_stored_event": target_entry(per_event, "<=", DISK_PER_EVENT)}
    print_targets(targets)
    if args.json:
        emit_json({"benchmark": "soak", "hours": args.hours_of_traffic, "orders_per_day": args.orders_per_day,
                   "stations": args.stations, "outbox_bound": args.outbox_bound, "idle_rss_mib": idle_rss,
                   "series": series, "totals": totals, "disk_bytes": disk_end, "disk_peak_bytes": disk_peak, "parcels": packed,
                   "machine": machine(), "targets": targets})
    return 0


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


__all__ = ["main"]
