"""The gateway SIGKILLed 20 times mid-publish to a three-node JetStream cluster: every
acknowledged event is in the stream exactly once (JetStream drops the re-sent ones by
``Nats-Msg-Id``), nothing is invented, and per order the events come in ``seq`` order.

The actors are those of ``tests/_support/forward_crash.py`` (a real ``gateway run`` process,
sources retrying until acknowledged, a killer thread) with a NATS cluster as the upstream.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests._support import write_config
from tests._support.forward_crash import Gateway, Ledger, Sources, free_port
from tests._support.nats_cluster import NatsCluster
from tests._support.nats_fleet import upstream_toml

KILLS = 20
BATCH = 40


def run_nats_campaign(workdir: Path, kills: int, seed: int) -> tuple[Ledger, list[tuple[int, str | None, bytes]]]:
    rnd = random.Random(seed)
    cluster = NatsCluster(workdir).start()
    try:
        cluster.create_stream()
        config = write_config(workdir, upstream_toml(cluster, upstream={"batch_max_events": BATCH},
                                                     nats={"heartbeat_bucket": ""}))
        gateway = Gateway(config, free_port(), workdir / "data")
        ledger = Ledger()
        sources = Sources(seed, ledger)
        url = "/webhooks/erp/t1"
        try:
            with httpx.Client(timeout=5) as client:
                for _ in range(kills):
                    gateway.start(client)
                    killer = threading.Timer(rnd.uniform(0.3, 1.5), gateway.kill)
                    killer.start()
                    while gateway.proc is not None and gateway.proc.poll() is None:
                        sources.post(client, gateway.base + url)
                    killer.join()
                gateway.start(client)  # the last, clean run: sources finish, the outbox drains
                while not sources.post(client, gateway.base + url):
                    time.sleep(0.05)
                deadline = time.monotonic() + 60
                while gateway.outbox(client)["backlog_events"] and time.monotonic() < deadline:
                    time.sleep(0.05)
                gateway.stop()
        finally:
            gateway.kill()
        return ledger, cluster.stream_messages()
    finally:
        cluster.stop()


@pytest.mark.slow
def test_sigkill_mid_publish_leaves_each_event_id_in_the_stream_exactly_once(tmp_path):
    ledger, messages = run_nats_campaign(tmp_path, KILLS, seed=20261205)
    assert len(ledger.acked) > 100  # the campaign did real work
    ids = [msg_id for _, msg_id, _ in messages]
    assert len(ids) == len(set(ids)), "an event_id is in the stream twice"
    assert set(ids) == set(ledger.acked), "missing or invented events"
    last: dict[str, int] = {}
    for _, msg_id, payload in messages:
        event = orjson.loads(payload)
        assert event["event_id"] == msg_id
        assert ledger.sent[ledger.acked[msg_id]][0] == event["order_id"]
        assert event["seq"] > last.get(event["order_id"], 0), "per-order order violated"
        last[event["order_id"]] = event["seq"]
