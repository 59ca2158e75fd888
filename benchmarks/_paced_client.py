"""The paced webhook client of ``benchmarks packline``: signed single-event ERP webhooks at a fixed
rate from another process, so its CPU is not the gateway's.

Request k is due at ``start + k / rate``; the latency of each is measured from its due time
(a late send counts against the gateway, not hidden). It waits for a line on stdin before it
starts, and prints one JSON line with what it measured::

    python -m benchmarks._paced_client PORT RATE SECONDS
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

from benchmarks.ingest import erp_events, signed_requests

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 16


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank); NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def start_webhook_client(port: int, rate: float, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "benchmarks._paced_client", str(port), str(rate), str(seconds)],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def webhook_client(port: int, rate: float, seconds: float) -> None:
    """Paced signed webhooks: request k is due at ``start + k / rate``; prints one JSON line."""
    import selectors

    from benchmarks._load import _Connection

    count = max(1, round(rate * seconds))
    bodies = [orjson.dumps({"events": [event]}) for event in erp_events(count, "plw", 70_000_000)]
    requests = signed_requests(port, bodies)
    selector = selectors.DefaultSelector()
    free = [_Connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    for conn in free:
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    print("ready", flush=True)
    sys.stdin.readline()
    cpu, start = time.process_time(), time.perf_counter()
    due: dict[int, float] = {}
    latencies, late, statuses = [], [], Counter[int]()
    sent = busy = reconnects = closed_idle = 0
    inflight: set[int] = set()  # connections with a request out (an idle one the server closes is not resent)
    last = start
    deadline = start + seconds + 60  # a stalled gateway: report what was answered
    while (sent < count or busy) and time.perf_counter() < deadline:
        now = time.perf_counter()
        while sent < count and free and start + sent / rate <= now:
            conn = free.pop()
            inflight.add(id(conn))
            conn.begin(requests[sent])
            due[id(conn)] = start + sent / rate
            late.append(now - due[id(conn)])
            events = selectors.EVENT_READ if conn.send_some() else selectors.EVENT_READ | selectors.EVENT_WRITE
            selector.modify(conn.sock, events, conn)
            sent, busy = sent + 1, busy + 1
        wait = max(0.0, start + sent / rate - time.perf_counter()) if sent < count and free else 1.0
        for key, mask in selector.select(wait):
            conn = key.data
            if mask & selectors.EVENT_WRITE and conn.send_some():
                selector.modify(conn.sock, selectors.EVENT_READ, conn)
            if not mask & selectors.EVENT_READ:
                continue
            state = conn.receive()
            if state is None:  # closed by the server: a new connection, and the request in flight again
                selector.unregister(conn.sock)
                reconnects += 1
                conn.reconnect()
                if id(conn) not in inflight:  # an idle keep-alive connection timed out: it stays free
                    selector.register(conn.sock, selectors.EVENT_READ, conn)
                    closed_idle += 1
                    continue
                request = bytes(conn.out)
                selector.register(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
                conn.begin(request)
                continue
            if state:
                inflight.discard(id(conn))
                last = time.perf_counter()
                latencies.append(last - due[id(conn)])
                statuses[conn.reply()[0]] += 1
                busy -= 1
                free.append(conn)
    elapsed = last - start
    print(orjson.dumps({
        "sent": sent, "ok": statuses[200], "statuses": {str(k): v for k, v in statuses.items()},
        "elapsed_s": elapsed, "per_s": statuses[200] / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_late_ms": max(late) * 1000, "reconnects": reconnects, "closed_idle": closed_idle,
        "client_cpu_per_s": (time.process_time() - cpu) / elapsed if elapsed > 0 else None,
    }).decode(), flush=True)


if __name__ == "__main__":
    webhook_client(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))
