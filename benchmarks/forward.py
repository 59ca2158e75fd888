"""Backlog drain: the forwarder emptying a big outbox to a loopback upstream.

``python -m benchmarks forward [--events N] [--batch B] [--baseline-events M] [--json]``
(``--sink nats``: the same drain into a NATS JetStream cluster, ``benchmarks/forward_nats.py``)

1. Builds a backlog of N outbox records (default 1,000,000; ~300-byte records shaped like
   the ones ``plan_step`` writes) in a real RocksDB store.
2. Starts the upstream: ``benchmarks/_sink.py``, a keep-alive HTTP server in its OWN
   process that counts events without decoding them.
3. Baseline, same run: a plain httpx client under trio POSTs pre-built bodies of the same
   batches (same size, same bytes) to the same upstream, one after another — the rate the
   upstream and the HTTP client allow with no store work at all.
4. Drain: the real ``Forwarder`` with the real ``HttpSink`` (signed, Idempotency-Key)
   reads the outbox in order, POSTs, and deletes each acknowledged batch durably
   (``sync="group"``: one fsync per batch). Progress on stderr every second: events left,
   rate, RSS.

Targets (issue 3), in the ``targets`` object of ``--json`` (``benchmarks._common``):

* ``drain_eps`` >= 100,000: the forwarder's drain rate, events/s;
* ``baseline_over_drain_ratio`` <= 3.0: the plain client's rate over the drain rate.

RSS should stay flat while draining: start, peak and end are reported (no numeric target).
The sink's own count is checked against N, so a fast but lossy drain cannot pass: the run
then exits 1.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from benchmarks._common import Progress, emit_json, machine, parser, print_targets, target_entry
from gateway._forward import Forwarder, HttpSink, build_batch
from gateway._settings import Secret, UpstreamSection
from gateway._store import StepWrite, Store, StoreSettings, open_store

SECRET = Secret("bench-upstream-secret")
_CHUNK = 50_000
TARGET_DRAIN_EPS = 100_000
TARGET_BASELINE_RATIO = 3.0


def rss_mib() -> float:
    """Resident set size of this process now, MiB (from /proc; peak RSS where unavailable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def record(n: int) -> dict[str, Any]:
    return {
        "tenant": "bench", "event_id": f"{n * 2654435761 % 2**64:016x}", "order_id": f"douyin|DY{n // 4:010d}",
        "seq": n % 4 + 1, "type": "order", "source": "erp", "status": "PENDING_REVIEW", "prev_status": "PAID",
        "occurred_at": "2026-11-25T02:00:00.000Z",
        "data": {"data.amount": 129.0, "data.lines": [{"sku": "SKU-1", "qty": 1}, {"sku": "GIFT-9", "qty": 1}]},
    }


def build_backlog(store: Store, events: int) -> None:
    progress = Progress("building the backlog", events)
    for start in range(0, events, _CHUNK):
        store.commit(StepWrite(outbox=[record(n) for n in range(start, min(events, start + _CHUNK))]))
        progress.update(min(events, start + _CHUNK))


def start_sink(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = workdir / "sink.port"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks._sink", str(port_file)])
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the benchmark sink did not start")
        time.sleep(0.02)
    return proc, f"http://127.0.0.1:{port_file.read_text()}"


async def sink_count(base: str) -> int:
    async with httpx.AsyncClient() as client:
        count: int = (await client.get(base + "/count")).json()["events"]
        return count


async def baseline(store: Store, base: str, batch: int, events: int) -> float:
    """Events/s of a plain httpx client POSTing the same batches, pre-built, to the same sink."""
    bodies: list[bytes] = []
    after = 0
    while len(bodies) * batch < events:
        records = store.read_outbox(batch, 1 << 30, after_seq=after)
        if not records:
            break
        bodies.append(build_batch("bench", records).body)
        after = records[-1][0]
    progress = Progress("baseline: plain httpx client", len(bodies) * batch)
    async with httpx.AsyncClient() as client:
        await client.post(base + "/erp", content=bodies[0])  # connect outside the timing
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            reply = await client.post(base + "/erp", content=body, headers={"Content-Type": "application/json"})
            reply.raise_for_status()
            progress.update((i + 1) * batch)
        elapsed = time.perf_counter() - started
    return len(bodies) * batch / elapsed


async def drain(store: Store, base: str, batch: int, events: int) -> dict[str, Any]:
    settings = UpstreamSection(url=base + "/erp", secret=SECRET, batch_max_events=batch,
                               batch_max_bytes=64 * 1024**2, linger_s=0, progress_every_s=0)
    forwarder = Forwarder(store, HttpSink(settings.url, SECRET, "bench", 30.0), settings, "bench")
    rss = [rss_mib()]
    progress = Progress("drain: forwarder -> upstream", events, every_s=1.0)
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        nursery.start_soon(forwarder.serve)
        last_sample = started
        while store.outbox_stats().count:
            await trio.sleep(0.05)
            progress.update(events - store.outbox_stats().count)
            if time.perf_counter() - last_sample >= 1.0:
                last_sample = time.perf_counter()
                rss.append(rss_mib())
                print(f"  RSS {rss[-1]:.0f} MiB", end="", file=sys.stderr, flush=True)
        elapsed = time.perf_counter() - started
        rss.append(rss_mib())
        progress.update(events, force=True)
        nursery.cancel_scope.cancel()
    return {"events_per_s": events / elapsed, "seconds": elapsed, "rss_start_mib": rss[0],
            "rss_peak_mib": max(rss), "rss_end_mib": rss[-1], "batches": forwarder.status.delivered_batches}


def main(argv: list[str]) -> int:
    if "--sink" in argv and argv.index("--sink") + 1 < len(argv):  # --sink nats: benchmarks/forward_nats.py
        at = argv.index("--sink")
        if argv[at + 1] == "nats":
            from benchmarks.forward_nats import main as nats_main

            return nats_main(argv[:at] + argv[at + 2:])
        argv = argv[:at] + argv[at + 2:]
    p = parser("forward", __doc__.splitlines()[0])
    p.add_argument("--sink", choices=["http", "nats"], default="http",
                   help="http: this benchmark; nats: a 3-node JetStream cluster (benchmarks/forward_nats.py)")
    p.add_argument("--events", type=int, default=1_000_000, help="backlog size [1,000,000]")
    p.add_argument("--batch", type=int, default=500, help="events per POST, both runs [500]")
    p.add_argument("--baseline-events", type=int, default=200_000, help="events the plain client sends [200,000]")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-forward-"))
    sink, base = start_sink(workdir)
    try:
        with open_store(StoreSettings(path=workdir / "db", outbox_max_events=10**9, outbox_max_bytes=1 << 40)) as store:
            build_backlog(store, args.events)
            raw_rate = trio.run(baseline, store, base, args.batch, min(args.baseline_events, args.events))
            before = trio.run(sink_count, base)
            result = trio.run(drain, store, base, args.batch, args.events)
            received = trio.run(sink_count, base) - before
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    rate = result["events_per_s"]
    ratio = raw_rate / rate
    growth = result["rss_peak_mib"] - result["rss_start_mib"]
    targets = {
        "drain_eps": target_entry(rate, ">=", TARGET_DRAIN_EPS),
        "baseline_over_drain_ratio": target_entry(ratio, "<=", TARGET_BASELINE_RATIO, 2),
    }
    print(f"backlog drain, {args.events:,} events in batches of {args.batch} to a loopback upstream "
          f"(separate process)")
    print(f"  plain httpx client, pre-built batches : {raw_rate:>10,.0f} events/s  (baseline)")
    print(f"  forwarder (read, sign, POST, delete)  : {rate:>10,.0f} events/s  in {result['seconds']:.1f} s, "
          f"{result['batches']} batches")
    print(f"  upstream received                     : {received:>10,} events (backlog {args.events:,})")
    print(f"  baseline / forwarder                  : {ratio:>10.2f}x")
    print(f"  RSS while draining                    : start {result['rss_start_mib']:.0f} MiB, peak "
          f"{result['rss_peak_mib']:.0f} MiB, end {result['rss_end_mib']:.0f} MiB (growth {growth:+.0f} MiB)")
    print_targets(targets)
    ok = received == args.events
    if not ok:
        print(f"  ERROR: the upstream received {received:,} events, not {args.events:,}")
    if args.json:
        emit_json({"benchmark": "forward", "machine": machine(), "events": args.events, "batch": args.batch,
                   "baseline_events_per_s": raw_rate, "received": received, "ratio": ratio, **result,
                   "targets": targets})
    return 0 if ok else 1
