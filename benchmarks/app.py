"""The gateway's own cost per webhook: the Starlette app driven in-process, no sockets.

``python -m benchmarks app [--webhooks N] [--noop N] [--connections C] [--instructions] [--json]``

Starts the gateway's services in this process (``serve_gateway`` on a tmp data dir, the
shipped rules, ``[store] sync = "group"``, the ``bench`` tenant's ERP secret) and calls its
ASGI app directly, ``C`` requests in flight (default 32), with pre-built scopes and bodies:

* ``GET /livez`` (the no-op route), then
* signed single-event ERP webhooks (``POST /webhooks/erp/bench``), each a distinct event
  committed durably before its reply (group commit and fsync included).

It prints, per request, the CPU of the process (the commit's worker thread included), of the
event-loop thread, and the wall time. With the HTTP server and the sockets out of the
picture, the difference between the two routes is the gateway's own work per webhook: the
figure to watch when changing the ingest path (``benchmarks ingest`` measures the whole
server, but this VM's timings differ by ~10 % from run to run).

``--instructions`` (needs ``valgrind``, Debian package ``valgrind``): runs the webhook phase
under callgrind twice, with ``N`` and with no webhooks, same seed, and prints the
difference per webhook: instructions executed in user space, deterministic to ~0.1 % here.
Kernel work (socket, fsync) is not counted and threads are serialised, so it measures CPU
work, not time. Under callgrind the run takes ~1 minute.

Baseline: the no-op route in the same run (CPU per request). No target is set here: the
``targets`` object of ``--json`` is empty (``{}``), kept so every benchmark has the same
shape (``benchmarks._common``); the webhook targets are judged by ``benchmarks ingest``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import trio

import core_ext
from benchmarks._common import Progress, emit_json, machine, parser, print_targets
from benchmarks.ingest import RULES, SECRET, TENANT, erp_events
from gateway._signing import sign

Scope = dict[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": headers, "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8700)}


def webhook_requests(count: int, prefix: str, first_buyer: int) -> list[tuple[Scope, bytes]]:
    """``count`` signed single-event webhooks (scope, body), distinct events."""
    timestamp = str(int(time.time()))
    requests = []
    for event in erp_events(count, prefix, first_buyer):
        body = orjson.dumps({"events": [event]})
        headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode()), (b"x-gateway-timestamp", timestamp.encode()),
                   (b"x-gateway-signature", sign(SECRET.encode(), timestamp, body).encode())]
        requests.append((_scope("POST", f"/webhooks/erp/{TENANT}", headers), body))
    return requests


async def _call(app: App, scope: Scope, body: bytes) -> int:
    """One request through ``app``; its status."""
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def drive(app: App, requests: list[tuple[Scope, bytes]], connections: int,
                label: str | None) -> dict[str, float]:
    """Send ``requests`` with ``connections`` in flight; CPU and wall time per request (us)."""
    pending = iter(requests)
    progress = Progress(label, len(requests)) if label else None
    done = 0

    async def worker() -> None:
        nonlocal done
        for scope, body in pending:
            status = await _call(app, scope, body)
            if status != 200:
                raise RuntimeError(f"{scope['path']} answered {status}")
            done += 1
            if progress:
                progress.update(done)

    cpu, loop, wall = time.process_time(), time.thread_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(worker)
    n = max(1, len(requests))
    return {"cpu_us": 1e6 * (time.process_time() - cpu) / n, "loop_us": 1e6 * (time.thread_time() - loop) / n,
            "wall_us": 1e6 * (time.perf_counter() - wall) / n}


async def run(webhooks: int, noop: int, connections: int, workdir: Path, quiet: bool = False) -> dict[str, Any]:
    """Both phases against a fresh gateway in ``workdir``; the figures."""
    from gateway._daemon import serve_gateway, tune_gc
    from gateway._server import build_app
    from gateway._settings import load_settings

    config = workdir / "gateway.toml"
    config.write_text(
        f"[gateway]\nid = 'bench'\ndata_dir = '{workdir / 'data'}'\nrules_dir = '{RULES}'\n"
        f"rules_poll_s = 0\nlog_level = 'WARNING'\n[http]\nhost = '127.0.0.1'\nport = 0\n"
        f"[store]\nsync = 'group'\n[demo]\nenabled = false\n[tenants.{TENANT}.erp]\nsecret = '{SECRET}'\n",
        encoding="utf-8")
    settings = load_settings(config)
    tune_gc()
    warm = webhook_requests(320, "warm", 90_000_000)
    measured = webhook_requests(webhooks, "wh", 50_000_000)
    livez = [(_scope("GET", "/livez", [(b"host", b"127.0.0.1")]), b"")]
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        app: App = build_app(services)
        await drive(app, warm, connections, None if quiet else "warm-up webhooks")
        groups = services.pipeline.groups_committed
        noop_figures = await drive(app, livez * noop, connections, None if quiet else "no-op GET /livez") if noop else {}
        single = await drive(app, measured, connections, None if quiet else "single-event webhooks")
        groups = services.pipeline.groups_committed - groups
        shutdown.set()
    return {"noop": noop_figures, "single": single, "group_commits": groups}


def _instructions(webhooks: int, connections: int) -> float:
    """Instructions per webhook: callgrind totals with ``webhooks`` minus with none."""
    totals = []
    for count in (0, webhooks):
        label = f"callgrind, {count:,} webhooks"
        print(f"  {label}: running (~1 minute)...", file=sys.stderr, flush=True)
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m",
             "benchmarks.app", "--count-only", str(count), str(connections)],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
        found = re.search(r"Collected\s*:\s*([\d,]+)", out.stderr)
        if not found:
            raise RuntimeError(f"no callgrind total in: {out.stderr[-500:]}")
        totals.append(int(found.group(1).replace(",", "")))
    return (totals[1] - totals[0]) / webhooks


def _count_only(argv: list[str]) -> int:
    """The run valgrind measures: ``count`` webhooks, no no-op phase, no output."""
    count, connections = int(argv[0]), int(argv[1])
    workdir = Path(tempfile.mkdtemp(prefix="bench-app-"))
    try:
        trio.run(run, count, 0, connections, workdir, True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    p = parser("app", __doc__.splitlines()[0])
    p.add_argument("--webhooks", type=int, default=20_000, help="single-event webhooks (default 20000)")
    p.add_argument("--noop", type=int, default=20_000, help="GET /livez requests (default 20000)")
    p.add_argument("--connections", type=int, default=32, help="requests in flight (default 32)")
    p.add_argument("--instructions", action="store_true",
                   help="also count instructions per webhook under callgrind (needs valgrind)")
    args = p.parse_args(argv)
    if args.webhooks < 1 or args.noop < 1 or args.connections < 1:
        raise SystemExit("--webhooks, --noop and --connections must be at least 1")
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    print(f"app benchmark: the gateway's ASGI app in-process, core={core_ext.IMPLEMENTATION}, "
          f"sync=group, {args.connections} requests in flight", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-app-"))
    try:
        figures = trio.run(run, args.webhooks, args.noop, args.connections, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    noop, single = figures["noop"], figures["single"]
    for label, row in (("no-op GET /livez", noop), ("signed webhooks", single)):
        print(f"  {label:<18} CPU {row['cpu_us']:7.1f} us/request   event loop {row['loop_us']:7.1f} us   "
              f"wall {row['wall_us']:7.1f} us")
    own = single["cpu_us"] - noop["cpu_us"]
    per_group = args.webhooks / figures["group_commits"] if figures["group_commits"] else 0.0
    print(f"  the gateway's own CPU per webhook: {own:.1f} us  ({per_group:.1f} webhooks per group commit)")
    result: dict[str, Any] = {"benchmark": "app", "core": core_ext.IMPLEMENTATION, "connections": args.connections,
                              **figures, "own_cpu_us": round(own, 1), "targets": {}, "machine": machine()}
    if args.instructions:
        per_webhook = _instructions(min(args.webhooks, 1_600), args.connections)
        print(f"  instructions per webhook (callgrind): {per_webhook:,.0f}")
        result["instructions_per_webhook"] = round(per_webhook)
    print_targets(result["targets"])
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":  # python -m benchmarks.app --count-only N C: the run callgrind measures
    if sys.argv[1:2] == ["--count-only"]:
        sys.exit(_count_only(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
