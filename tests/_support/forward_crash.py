"""Crash campaign for store-and-forward: a real ``gateway run`` process SIGKILLed under load.

Used by ``tests/forward/test_forward_crash.py`` (20 kills in CI) and by the soak script
``python -m tests.soak_forward --kills 1000``.

The actors, all real:

* the gateway: ``python -m gateway run`` on a tmp data dir, one port kept across restarts;
* sources: this process posts signed ERP batches (new orders and the next status of open
  orders) and behaves like a platform: a batch without a 2xx is retried, the same
  delivery, until it gets one (after the restart);
* the upstream ERP: ``tests._support.upstream.Upstream`` on 127.0.0.1 (a thread of this process,
  so it outlives every kill), sometimes answering 500 so backlogs and retries happen;
* a killer thread: SIGKILLs the gateway after a random 0.05-1.2 s of load.

The oracle keeps the ledger (every event sent, every event acknowledged with the
``event_id`` the gateway returned, every event the upstream acknowledged) and checks, after
a last clean start has drained the outbox:

1. every acknowledged event reached the upstream at least once;
2. the upstream saw no event that no source acknowledged (nothing invented), and each
   ``event_id`` names one (order, source status) pair;
3. de-duplicated by ``event_id``, each acknowledged event counts exactly once;
4. per order, first arrivals come in increasing ``seq``.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests._support import erp_event, signed, write_config
from tests._support.upstream import Scripted, Upstream, in_per_order_order, upstream_config

ROOT = Path(__file__).resolve().parents[2]
BATCH = 40  # [upstream] batch_max_events of the campaign
FLOW = ["CREATED", "PAID", "WAIT_AUDIT", "AUDITED", "PICKING", "PACKED", "SENT", "SIGNED"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Ledger:
    """What the sources know: every event sent and the event_id of each acknowledged one."""

    sent: dict[str, tuple[str, str]] = field(default_factory=dict)  # source event id -> (order, status)
    acked: dict[str, str] = field(default_factory=dict)  # gateway event_id -> source event id
    posts: int = 0
    failed_posts: int = 0


@dataclass
class Report:
    kills: int
    acknowledged: int
    upstream_receipts: int
    upstream_unique: int
    resent: int
    problems: list[str]


class Sources:
    """The platforms: batches of new orders and next statuses, retried until acknowledged."""

    def __init__(self, seed: int, ledger: Ledger) -> None:
        self.random = random.Random(seed)
        self.ledger = ledger
        self.counter = 0
        self.orders = 0
        self.open: dict[str, int] = {}  # order_no -> next FLOW index
        self.pending: list[dict[str, Any]] | None = None  # the batch to retry

    def next_batch(self) -> list[dict[str, Any]]:
        if self.pending is not None:
            return self.pending
        events = []
        for _ in range(self.random.randint(1, 3)):
            self.orders += 1
            self.open[f"DY{self.orders:08d}"] = 0
        for order_no in self.random.sample(sorted(self.open), min(len(self.open), self.random.randint(1, 12))):
            step = self.open[order_no]
            self.counter += 1
            event = erp_event(self.counter, FLOW[step], order=order_no)
            event["event_id"] = f"crash-{self.counter}"
            self.ledger.sent[event["event_id"]] = (f"douyin|{order_no}", FLOW[step])
            events.append(event)
            if step + 1 == len(FLOW):
                del self.open[order_no]
            else:
                self.open[order_no] = step + 1
        self.pending = events
        return events

    def post(self, client: httpx.Client, url: str) -> bool:
        """Post the current batch once; True when acknowledged."""
        events = self.next_batch()
        body, headers = signed(events)
        self.ledger.posts += 1
        try:
            reply = client.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            self.ledger.failed_posts += 1
            return False
        if reply.status_code != 200:
            self.ledger.failed_posts += 1
            return False
        for event, result in zip(events, reply.json()["results"], strict=True):
            self.ledger.acked[result["event_id"]] = event["event_id"]
        self.pending = None
        return True


class Gateway:
    """``python -m gateway run`` as a child process."""

    def __init__(self, config: Path, port: int, data: Path) -> None:
        self.config, self.port, self.data = config, port, data
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / "gateway.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, client: httpx.Client) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.config), "--no-demo",
                 "--port", str(self.port), "--log-level", "WARNING"],
                cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}; see {self.log}")
            try:
                if client.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"gateway did not start; see {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def outbox(self, client: httpx.Client) -> dict[str, Any]:
        token = (self.data / "api-token").read_text().strip()
        reply = client.get(self.base + "/api/v1/outbox", headers={"Authorization": f"Bearer {token}"})
        result: dict[str, Any] = reply.json()
        return result


def run_campaign(workdir: Path, kills: int, seed: int = 1,
                 progress: Callable[[str], None] | None = None) -> Report:
    """Kill the gateway ``kills`` times under load, drain, and check the ledger."""
    rnd = random.Random(seed)
    upstream = Upstream().start()
    data = workdir / "data"
    config = write_config(workdir, upstream_config(upstream, batch_max_events=BATCH, retry_max_s=0.2,
                                                   progress_every_s=0))
    gateway = Gateway(config, free_port(), data)
    ledger = Ledger()
    sources = Sources(seed, ledger)
    url_path = "/webhooks/erp/t1"
    try:
        with httpx.Client(timeout=5) as client:
            for kill in range(kills):
                gateway.start(client)
                if rnd.random() < 0.3:  # an upstream hiccup: a backlog builds, retries happen
                    upstream.script = [Scripted(500)] * rnd.randint(1, 4)
                killer = threading.Timer(rnd.uniform(0.05, 1.2), gateway.kill)
                killer.start()
                while gateway.proc is not None and gateway.proc.poll() is None:
                    sources.post(client, gateway.base + url_path)
                killer.join()
                if progress:
                    progress(f"kill {kill + 1}/{kills}: {len(ledger.acked)} events acknowledged, "
                             f"{len(upstream.events())} upstream receipts")
            gateway.start(client)  # the last, clean run: sources finish, the outbox drains
            while not sources.post(client, gateway.base + url_path):
                time.sleep(0.05)
            deadline = time.monotonic() + 120
            while gateway.outbox(client)["backlog_events"] and time.monotonic() < deadline:
                time.sleep(0.05)
            gateway.stop()
    finally:
        gateway.kill()
        upstream.stop()
    return check(ledger, upstream, kills)


def check(ledger: Ledger, upstream: Upstream, kills: int) -> Report:
    problems: list[str] = []
    receipts = upstream.events()
    unique = upstream.unique_events()
    missing = [eid for eid in ledger.acked if eid not in unique]
    if missing:
        problems.append(f"{len(missing)} acknowledged events never reached the upstream, e.g. {missing[:3]}")
    invented = [eid for eid in unique if eid not in ledger.acked]
    if invented:
        problems.append(f"{len(invented)} upstream events no source acknowledged, e.g. {invented[:3]}")
    for event_id, event in unique.items():
        source_id = ledger.acked.get(event_id)
        if source_id is not None and ledger.sent[source_id][0] != event["order_id"]:
            problems.append(f"event {event_id} arrived for {event['order_id']}, sent for {ledger.sent[source_id][0]}")
    for event in receipts:
        if unique[event["event_id"]] != event:
            problems.append(f"event {event['event_id']} arrived twice with different content")
            break
    if not in_per_order_order(receipts):
        problems.append("per-order order violated: a later seq arrived before an earlier one")
    return Report(kills, len(ledger.acked), len(receipts), len(unique), len(receipts) - len(unique), problems)
