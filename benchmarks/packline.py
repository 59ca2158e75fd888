"""The pack line under load: scan-to-verdict latency at 32 stations while webhooks arrive.

``python -m benchmarks packline [--stations 32] [--rate 1000] [--webhook-rate 500] [--seconds 10]
[--items-per-parcel 0] [--commit-delay-ms MS] [--json]``

What the packer waits for, end to end, in the real gateway (``serve_gateway`` in THIS trio
process, a real RocksDB store in a tmp dir, ``[store] sync = "group"``, the shipped rules):

* ``--stations`` stations ``bench-01`` ... each with one **serial scanner on a real pty**
  (``devices.simulators.scanner.PtyScanner``; ``[[stations.S.scanners]] kind = "serial"``),
  no printer, no NVR: nothing but the verdict path. Each station signs in a badge and opens
  its own ``READY_TO_PACK`` order (one line of SKU ``B1``, a quantity the run never reaches),
  so every measured scan is ``OK``: read -> verdict -> the scan's event, the session and
  station records committed durably through the pipeline (one synced group commit shared
  with the webhooks) -> published on ``services.display``.
* The scanners together send ``--rate`` EAN-13 reads/s for ``--seconds``, each station at
  ``rate / stations``, staggered evenly, written on the ptys' master sides by ANOTHER process
  (``benchmarks._pty_writer``: a real scanner's sending costs the gateway nothing; writing from
  the gateway's loop charged it the kernel's tty work of every write). **Latency** = from just before the ``write`` on the
  pty's master side to the verdict being published for that station (a wrapper around
  ``services.display.publish``: the moment a screen could show it; it is durable by then).
  The first 10 % of each station's scans are warm-up and not counted.
* Meanwhile signed single-event ERP webhooks for OTHER orders (``benchmarks.ingest``'s events:
  new orders and their status updates) arrive at ``--webhook-rate``/s from a paced
  raw-socket client in ANOTHER process (16 keep-alive connections; each request's latency is
  from its scheduled time, so a stall is not hidden by the pacing).
* ``--items-per-parcel K`` (not the issue's workload; for comparison): parcels of K items
  instead, the K-th scan closes the parcel (``CLOSED``, a label queued for the missing
  printer) and the next scan opens the station's next order (``OPENED``); every scan's
  latency counts, by verdict. ``--webhook-rate 0``: no webhooks (the scans' own cost).
* Baselines in the same run, before the gateway starts: the **raw pty round trip** (the
  same frames, ptys and pacing; ``wait_readable`` + ``read`` on the slave side, as in
  ``benchmarks devices``), and the machine's speed (a no-op Python loop, before and after),
  because these VMs differ up to 3x from day to day.

**Where the time goes** (printed always, most useful when p99 misses): every measured scan is
timestamped from outside the pack line at write -> dispatch (the line hands the scan to its
station's inbox: a proxy around ``StationRunner.inbox_send``) -> submit (``Pipeline.submit``
with the station's records) -> commit start / end (``Store.commit`` in its worker thread:
encoding, the write batch, the WAL fsync) -> durable (``Pipeline.add_listener``) -> published.
Each stage's p50/p99, and its mean over the slowest 1 % of scans, are shown (a stage whose
hook did not see exactly one moment per scan, e.g. the two commits of a closing scan, is
merged into the next); so is p50/p99 by tenth of each station's scans, and what the session
handling costs per scan at the start and at the end (the working copy copies the list of the
session's timeline entries, which grows with every scan; the records a scan writes are the
session's head and its one new entry: a drift shows here).

CPU: ``time.process_time`` of this process (the gateway, its RocksDB threads and the
scanners' far ends, which are cheap) and ``time.thread_time`` of the event-loop thread, per
second of the measured window.

Targets (issue 13), in ``targets`` of ``--json``: ``scan_to_verdict_p99_ms`` <= 5.0;
``scans_per_s`` >= 99 % of ``--rate``; ``webhooks_per_s`` >= 99 % of ``--webhook-rate``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from benchmarks._common import emit_json, machine, parser, print_targets, target_entry
from benchmarks._paced_client import percentile, start_webhook_client
from benchmarks._packline_stamps import GcPauses, Stamps, analyse, install_hooks
from benchmarks._pty_writer import go, lateness, stamps_of, start_pty_writer, write_all
from benchmarks.devices import measure, summary
from benchmarks.ingest import RULES, SECRET, TENANT, free_port
from devices.simulators.scanner import PtyScanner, frame
from gateway._daemon import serve_gateway, tune_gc
from gateway._settings import load_settings
from gateway._signing import sign

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 5.0
TARGET_SHARE = 0.99
ITEM = "4006381333931"  # SKU B1, EAN-13
SKU = "B1"


#: The webhook client's report when ``--webhook-rate 0`` runs none.
NO_WEBHOOKS = orjson.dumps({"sent": 0, "ok": 0, "statuses": {}, "elapsed_s": 0.0, "per_s": 0.0, "p50_ms": None,
                            "p99_ms": None, "max_late_ms": None, "reconnects": 0, "client_cpu_per_s": 0.0}).decode()


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def loop_rate() -> float:
    """Millions of iterations/s of an empty Python loop, best of 3: the machine's speed now."""
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(2_000_000):
            pass
        best = max(best, 2.0 / (time.perf_counter() - started))
    return best


# -- the gateway's configuration ------------------------------------------------------


def write_config(workdir: Path, port: int, stations: list[str], paths: list[str],
                 commit_delay_ms: float | None = None) -> Path:
    text = [f"[gateway]\nid = 'bench'\ndata_dir = '{workdir / 'data'}'\nrules_dir = '{RULES}'\n"
            f"rules_poll_s = 0\n[http]\nhost = '127.0.0.1'\nport = {port}\n[store]\nsync = 'group'\n"
            f"[demo]\nenabled = false\n[tenants.{TENANT}.erp]\nsecret = '{SECRET}'\n"
            f"[packline]\ntenant = '{TENANT}'\n"
            + (f"[pipeline]\ncommit_delay_ms = {commit_delay_ms}\n" if commit_delay_ms is not None else "")]
    for name, path in zip(stations, paths, strict=True):
        text.append(f"[stations.{name}]\n[[stations.{name}.scanners]]\nkind = 'serial'\npath = '{path}'\n")
    config = workdir / "gateway.toml"
    config.write_text("".join(text), encoding="utf-8")
    return config


def order_no(station: int, parcel: int) -> str:
    return f"PK{station:03d}{parcel:05d}"


def pack_orders(stations: int, parcels: int, quantity: int) -> list[dict[str, Any]]:
    """``parcels`` READY_TO_PACK orders per station, each of its own buyer (no merged pack groups)."""
    return [{"event_id": f"pack-{n}-{k}", "platform": "douyin", "order_no": order_no(n, k), "status": "READY_TO_PACK",
             "occurred_at": "2026-12-04T10:00:00+08:00", "buyer": {"phone": f"137{n:03d}{k:05d}"}, "amount": 99.0,
             "lines": [{"sku": SKU, "qty": quantity}]} for n in range(stations) for k in range(parcels)]


def scan_frames(station: int, count: int, items_per_parcel: int) -> list[bytes]:
    """The measured reads of one station: item scans only (0: the parcel never closes), or
    ``items_per_parcel`` items (the last one closes the parcel) then the next order, and so on."""
    item = frame(ITEM, aim="]E0")
    if not items_per_parcel:
        return [item] * count
    frames: list[bytes] = []
    parcel = 0
    while len(frames) < count:
        frames += [item] * items_per_parcel
        parcel += 1
        frames.append(frame(order_no(station, parcel), aim="]C0"))
    return frames[:count]


# -- the measured run -------------------------------------------------------------------


async def _until(predicate: Callable[[], object], limit_s: float, what: str) -> None:
    """Poll ``predicate`` (state the gateway has no event for) until it holds."""
    with trio.move_on_after(limit_s):
        while True:
            if predicate():
                return
            await trio.sleep(0.02)
    raise RuntimeError(f"no {what} within {limit_s:g} s")


async def _verdict(services: Any, station: str, fd: int, data: bytes, expect: str) -> None:
    """Scan one set-up code and wait for its verdict (before the measured phase)."""
    seq = (services.display.current(station) or {}).get("seq", 0)
    await write_all(fd, data)
    with trio.fail_after(20):
        while True:
            view = services.display.current(station) or {}
            if view.get("seq", 0) > seq and view.get("last"):
                break
            await trio.sleep(0.005)
    if view["last"]["verdict"] != expect:
        raise RuntimeError(f"{station}: set-up scan got {view['last']['verdict']}, not {expect}: {view['last']}")


async def _setup(services: Any, stations: list[str], ptys: list[PtyScanner], parcels: int, quantity: int) -> None:
    token = {"Authorization": f"Bearer {services.api_token}"}
    catalog = f"sku,name,kind,barcodes,weight_g,parts,serialised,stock\n{SKU},Bench item,item,{ITEM},100,,,\n"
    body = orjson.dumps({"events": pack_orders(len(stations), parcels, quantity)})
    stamp = str(int(time.time()))
    async with httpx.AsyncClient(base_url=services.bound[0], timeout=30) as client:
        reply = await client.post(f"/api/v1/tenants/{TENANT}/catalog?format=csv", content=catalog.encode(),
                                  headers=token)
        reply.raise_for_status()
        reply = await client.post(f"/webhooks/erp/{TENANT}", content=body, headers={
            "Content-Type": "application/json", "X-Gateway-Timestamp": stamp,
            "X-Gateway-Signature": sign(SECRET.encode(), stamp, body)})
        reply.raise_for_status()
    # pyserial flushes a port's input when it opens it: scan only once every scanner is up
    await _until(lambda: all(services.devices.report(name) and all(
        d["state"] == "up" for d in services.devices.report(name)) for name in stations), 30, "scanners up")
    async with trio.open_nursery() as nursery:
        for n, (name, pty) in enumerate(zip(stations, ptys, strict=True)):
            fd = pty.master_fd
            assert fd is not None

            async def station(name: str = name, fd: int = fd, n: int = n) -> None:
                await _verdict(services, name, fd, frame(f"OP-{n + 1:04d}", aim="]C0"), "SIGNED_IN")
                await _verdict(services, name, fd, frame(order_no(n, 0), aim="]C0"), "OPENED")

            nursery.start_soon(station)


async def gateway_phase(stations: list[str], per_station: int, items_per_parcel: int, interval_s: float,
                        webhook_rate: float, seconds: float, workdir: Path,
                        commit_delay_ms: float | None = None) -> dict[str, Any]:
    """The measured run: returns the stamps, the CPU figures and the webhook client's report."""
    ptys = [PtyScanner() for _ in stations]
    paths = [pty.plug() for pty in ptys]
    port = free_port()
    settings = load_settings(write_config(workdir, port, stations, paths, commit_delay_ms))
    stamps = Stamps(stations, expected=per_station * len(stations))
    shutdown = trio.Event()
    client: subprocess.Popen[str] | None = None
    writer: subprocess.Popen[str] | None = None
    try:
        async with trio.open_nursery() as nursery:
            services = await nursery.start(serve_gateway, settings, shutdown)
            try:
                progress(f"gateway up on {services.bound[0]}; {len(stations)} stations sign in and open their orders")
                await _until(lambda: services.packline is not None, 60, "the pack line running")
                if items_per_parcel:
                    await _setup(services, stations, ptys, per_station // (items_per_parcel + 1) + 2, items_per_parcel)
                else:
                    await _setup(services, stations, ptys, 1, per_station * 4 + 100)
                cost_before = session_cost(services)
                install_hooks(services, stamps)
                fds = [pty.master_fd for pty in ptys if pty.master_fd is not None]
                writer = start_pty_writer(fds, [scan_frames(i, per_station, items_per_parcel)
                                                for i in range(len(ptys))], interval_s)
                if webhook_rate > 0:
                    client = start_webhook_client(port, webhook_rate, seconds)
                    assert client.stdin is not None and client.stdout is not None
                    ready = await trio.to_thread.run_sync(client.stdout.readline)
                    if ready.strip() != "ready":
                        raise RuntimeError(f"the webhook client did not start: {ready!r}")
                progress(f"measuring: {len(stations)} x {per_station} scans at {len(stations) / interval_s:,.0f}/s "
                         f"and {webhook_rate:,.0f} webhooks/s for {seconds:g} s")
                stamps.on = True
                gc_pauses = GcPauses().install()
                cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
                if client is not None and client.stdin is not None:
                    client.stdin.write("go\n")
                    client.stdin.flush()
                first_write = time.perf_counter() + 0.01
                go(writer, first_write)
                written = await trio.to_thread.run_sync(stamps_of, writer)
                late = lateness(written, first_write, interval_s)
                writer_late = {"p50_ms": percentile(late, 0.5) * 1000, "p99_ms": percentile(late, 0.99) * 1000}
                for i, times in enumerate(written):
                    stamps.lists["write"][i][:0] = times
                limit_s = max(120.0, 12 * seconds)  # an overloaded line drains its backlog: that is the figure
                with trio.move_on_after(limit_s):
                    await stamps.done.wait()
                end = time.perf_counter()
                cpu_s, loop_s = time.process_time() - cpu, time.thread_time() - loop_cpu
                gc_pauses.remove()
                stamps.on = False
                if not stamps.done.is_set():
                    progress(f"only {stamps.published:,} of {stamps.expected:,} verdicts within {limit_s:g} s")
                report = NO_WEBHOOKS
                if client is not None and client.stdout is not None:
                    report = await trio.to_thread.run_sync(client.stdout.readline)
                cost_after = session_cost(services)
            finally:
                shutdown.set()
    finally:
        for child in (client, writer):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
        for pty in ptys:
            pty.unplug()
    return {"stamps": stamps, "wall_s": end - wall, "cpu_s": cpu_s, "loop_cpu_s": loop_s,
            "gc": gc_pauses.summary(), "writer_late": writer_late, "webhooks": orjson.loads(report), "session_before": cost_before, "session_after": cost_after}


def session_cost(services: Any) -> dict[str, Any] | None:
    """What the pack line's per-scan session handling costs now, on the longest open session:
    the working copy (``PackSession.copy``) and the records one scan writes (the head and the
    newest timeline entry, ``session_records.session_writes``, JSON-encoded), best of 5. The
    copy grows with the scans in the session (a list of shared entries); the records do not."""
    from gateway._packline.session import PackSession
    from gateway._packline.session_records import session_writes

    sessions = [getattr(r, "session", None) for r in getattr(services.packline, "stations", {}).values()]
    live = [s for s in sessions if isinstance(s, PackSession)]
    if not live:
        return None
    session = max(live, key=lambda s: len(s.timeline))
    copy_s = record_s = float("inf")
    size = 0
    for _ in range(5):
        started = time.perf_counter()
        session.copy()
        middle = time.perf_counter()
        size = sum(len(orjson.dumps(value)) for *_, value in session_writes(session, len(session.timeline) - 1))
        copy_s, record_s = min(copy_s, middle - started), min(record_s, time.perf_counter() - middle)
    return {"timeline_entries": len(session.timeline), "record_bytes": size, "copy_ms": copy_s * 1000,
            "record_ms": record_s * 1000}


def main(argv: list[str]) -> int:
    p = parser("packline", __doc__.strip().splitlines()[0])
    p.add_argument("--stations", type=int, default=32, help="pack stations, one pty scanner each (default 32)")
    p.add_argument("--rate", type=float, default=1_000, help="item scans/s of all stations together (default 1,000)")
    p.add_argument("--webhook-rate", type=float, default=500, help="signed webhooks/s, another process (default 500)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the measured phase (default 10)")
    p.add_argument("--items-per-parcel", type=int, default=0,
                   help="0: one parcel per station for the whole run, every scan OK (default); K: parcels of K "
                        "items, the K-th scan closes it (CLOSED, label queued), the next order opens the next")
    p.add_argument("--commit-delay-ms", type=float, default=None,
                   help="[pipeline] commit_delay_ms of the gateway (default: the gateway's default, 2)")
    args = p.parse_args(argv)
    tune_gc()  # the gateway process's collector thresholds
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    logging.getLogger("gateway._packline.printing").setLevel(logging.ERROR)  # no printer, by design
    stations = [f"bench-{n + 1:02d}" for n in range(max(1, args.stations))]
    per_station = max(10, round(args.rate * args.seconds / len(stations)))
    interval_s = len(stations) / args.rate
    speed_before = loop_rate()
    progress(f"raw pty round trip: {len(stations)} ptys, same frames and pacing, {args.seconds:g} s")
    raw = summary(trio.run(measure, "serial", "raw", len(stations), [[frame(ITEM, aim="]E0")] * per_station
                                                                      for _ in stations], interval_s))
    workdir = Path(tempfile.mkdtemp(prefix="bench-packline-"))
    try:
        run = trio.run(gateway_phase, stations, per_station, max(0, args.items_per_parcel), interval_s,
                       args.webhook_rate, args.seconds, workdir, args.commit_delay_ms)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    speed_after = loop_rate()
    f = analyse(run["stamps"], per_station)
    hooks = run["webhooks"]
    wall = run["wall_s"]
    print(f"packline benchmark: {len(stations)} stations (serial scanners on ptys, no printer, no NVR), "
          f"{args.rate:,.0f} scans/s paced, {args.webhook_rate:,.0f} signed webhooks/s from another process, "
          f"{args.seconds:g} s")
    print(f"  machine: empty loop {speed_before:.1f} M iterations/s before, {speed_after:.1f} after; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  raw pty round trip       p50 {raw['p50_ms']:7.3f} ms  p99 {raw['p99_ms']:7.3f} ms  "
          f"max {raw['max_ms']:7.3f} ms  ({raw['scans_per_s']:,.0f} reads/s)")
    print(f"  scan -> verdict shown    p50 {f['p50_ms']:7.3f} ms  p99 {f['p99_ms']:7.3f} ms  "
          f"max {f['max_ms']:7.3f} ms  ({f['scans_per_s']:,.1f} scans/s, verdicts {f['verdicts']})")
    print(f"  webhooks                 {hooks['per_s']:,.1f}/s  (ok {hooks['ok']:,} of {hooks['sent']:,}, "
          f"statuses {hooks['statuses']}; p50 {hooks['p50_ms'] or 0:.2f} ms, p99 {hooks['p99_ms'] or 0:.2f} ms; "
          f"client CPU {hooks['client_cpu_per_s']:.0%})")
    print(f"  gateway process CPU      {run['cpu_s'] / wall:.2f} s/s (event-loop thread {run['loop_cpu_s'] / wall:.2f} s/s)"
          f"; {f['commits']:,} group commits ({f['commits'] / wall:,.0f}/s, {f['commit_ms_mean'] or 0:.2f} ms each)")
    print(f"  the scanners' writer process ended its writes p50 {run['writer_late']['p50_ms']:.3f} ms, p99 "
          f"{run['writer_late']['p99_ms']:.3f} ms after their schedule (latency counts from the write's end)")
    print("  garbage collector pauses " + "; ".join(
        f"{gen}: {g['count']:,} x, {g['total_ms']:.1f} ms in all, max {g['max_ms']:.2f} ms" for gen, g in run["gc"].items()))
    if len(f["by_verdict"]) > 1:
        print("  by verdict: " + "; ".join(f"{v} x{d['count']:,} p50 {d['p50_ms']:.2f} ms p99 {d['p99_ms']:.2f} ms"
                                          for v, d in f["by_verdict"].items()))
    if f["lost"]:
        print(f"  {f['lost']:,} scans got no verdict within the time limit")
    print(f"  by tenth of each station's scans (the session grows), p50 ms: {f['p50_ms_by_tenth']}")
    print(f"  {'':57}p99 ms: {f['p99_ms_by_tenth']}")
    for when, cost in (("after sign-in and open", run["session_before"]), ("at the end", run["session_after"])):
        if cost:
            print(f"  session handling per scan {when}: {cost['timeline_entries']} timeline entries, "
                  f"{cost['record_bytes']:,} bytes written per scan; working copy {cost['copy_ms']:.3f} ms + record "
                  f"{cost['record_ms']:.3f} ms (x {args.rate:,.0f} scans/s = "
                  f"{(cost['copy_ms'] + cost['record_ms']) * args.rate / 1000:.2f} s of CPU per s)")
    if f["stages"]:
        print(f"  where the time goes{'':54}{'p50 ms':>11}{'p99 ms':>11}{'slowest 1%':>12}")
        for name, stage in f["stages"].items():
            print(f"    {name:<70}{stage['p50_ms']:>11.3f}{stage['p99_ms']:>11.3f}{stage['slowest_1pct_mean_ms']:>12.3f}")
    else:
        print("  where the time goes: the write or publish moment was not stamped for every scan; no breakdown")
    targets = {
        "scan_to_verdict_p99_ms": target_entry(f["p99_ms"], "<=", TARGET_P99_MS, 2),
        "scans_per_s": target_entry(f["scans_per_s"], ">=", args.rate * TARGET_SHARE),
        "webhooks_per_s": target_entry(hooks["per_s"], ">=", args.webhook_rate * TARGET_SHARE),
    }
    print_targets(targets)
    if args.json:
        emit_json({
            "benchmark": "packline", "stations": len(stations), "rate": args.rate, "webhook_rate": args.webhook_rate,
            "seconds": args.seconds, "scans_per_station": per_station, "items_per_parcel": args.items_per_parcel,
            **{key: value for key, value in f.items()},
            "raw_pty": raw, "webhooks": hooks, "wall_s": wall, "gc_pauses": run["gc"], "writer_late": run["writer_late"],
            "gateway_cpu_per_s": run["cpu_s"] / wall, "event_loop_cpu_per_s": run["loop_cpu_s"] / wall,
            "session_before": run["session_before"], "session_after": run["session_after"],
            "loop_mips_before": speed_before, "loop_mips_after": speed_after,
            "targets": targets, **machine(),
        })
    return 0
