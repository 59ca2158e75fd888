"""The NATS sink through failures of the cluster (three real nats-server processes):

* one server SIGKILLed mid-drain (the one the gateway is connected to): publishing goes on
  through the others, every event is in the stream, each once;
* the whole cluster down: the outbox holds everything, webhooks meet backpressure (503 with
  Retry-After) at the outbox bound, and everything drains once the cluster is back.
"""

from __future__ import annotations

import httpx
import pytest
import trio

from gateway._daemon import serve_gateway
from gateway._forward.nats_sink import NatsSink
from gateway._settings import load_settings
from gateway._store import StoreSettings, open_store
from tests._support import erp_event, signed, write_config
from tests._support.nats_cluster import NatsCluster
from tests._support.nats_fleet import (
    check_stream,
    fill_outbox,
    nats_forwarder,
    upstream_settings,
    upstream_toml,
    wait_drained,
)

KILL_DRAIN_EVENTS = 40_000  # enough for ~3 s of publishing around the kill


@pytest.fixture
def cluster(tmp_path):
    nodes = NatsCluster(tmp_path).start()
    nodes.create_stream()
    yield nodes
    nodes.stop()


@pytest.mark.slow
async def test_one_server_killed_mid_drain_loses_nothing(cluster, tmp_path):
    with open_store(StoreSettings(path=tmp_path / "db", outbox_max_events=10**7, outbox_max_bytes=1 << 34)) as store:
        fill_outbox(store, 0, KILL_DRAIN_EVENTS)
        forwarder = nats_forwarder(store, upstream_settings(cluster, batch=200, timeout_s=2.0))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(forwarder.serve)
            with trio.fail_after(60):
                while forwarder.status.delivered_events < KILL_DRAIN_EVENTS // 4:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            sink = forwarder.sink
            assert isinstance(sink, NatsSink) and sink._nc is not None and sink._nc.connected_url is not None
            victim = cluster.client_ports.index(sink._nc.connected_url.port)
            cluster.kill(victim)
            delivered_at_kill = forwarder.status.delivered_events
            await wait_drained(store, 90)
            forwarder.request_stop()
        assert delivered_at_kill < KILL_DRAIN_EVENTS  # the kill happened mid-drain
        assert forwarder.status.delivered_events >= KILL_DRAIN_EVENTS
    messages = await trio.to_thread.run_sync(cluster.stream_messages)
    problems = check_stream(messages, {f"ev-{n:08d}" for n in range(KILL_DRAIN_EVENTS)})
    assert problems == []


async def _post(client: httpx.AsyncClient, n: int) -> httpx.Response:
    body, headers = signed([erp_event(n, "PAID")])
    return await client.post("/webhooks/erp/t1", content=body, headers=headers)


@pytest.mark.slow
async def test_the_whole_cluster_down_holds_the_outbox_backpressures_and_drains_after(cluster, tmp_path, nursery):
    store_toml = "[store]\noutbox_max_events = 300\noutbox_reserve_events = 50\n"
    config = write_config(tmp_path, store_toml + upstream_toml(cluster, nats={"heartbeat_bucket": ""}))
    settings = load_settings(config)
    shutdown = trio.Event()
    services = await nursery.start(serve_gateway, settings, shutdown)
    client = httpx.AsyncClient(base_url=f"http://{services.bound[0].removeprefix('http://')}", timeout=10)
    accepted: list[str] = []
    for n in range(20):  # the cluster is up: these go through
        reply = await _post(client, n)
        assert reply.status_code == 200
        accepted.append(reply.json()["results"][0]["event_id"])
    with trio.fail_after(20):
        while services.store.outbox_stats().count:  # noqa: ASYNC110
            await trio.sleep(0.05)

    for index in range(cluster.size):
        cluster.kill(index)
    n, refused = 20, None
    with trio.fail_after(60):
        while refused is None:
            reply = await _post(client, n)
            if reply.status_code == 503:
                refused = reply
            else:
                assert reply.status_code == 200, reply.text
                accepted.append(reply.json()["results"][0]["event_id"])
            n += 1
    assert refused.headers.get("retry-after")
    backlog = services.store.outbox_stats().count
    assert backlog == len(accepted) - 20 == 250  # max 300 - reserve 50: nothing was dropped
    await trio.sleep(1.0)
    assert services.store.outbox_stats().count == backlog  # held while the cluster is down
    forwarder = services.forwarder
    assert forwarder is not None
    with trio.fail_after(20):
        while not forwarder.status.retries:  # noqa: ASYNC110
            await trio.sleep(0.05)
    assert "NATS" in forwarder.status.last_error

    for index in range(cluster.size):
        cluster.restart(index)
    await trio.to_thread.run_sync(cluster.wait_ready)
    with trio.fail_after(60):
        while services.store.outbox_stats().count:  # noqa: ASYNC110
            await trio.sleep(0.05)
    assert (await _post(client, n)).status_code == 200  # webhooks are welcome again
    shutdown.set()
    await client.aclose()
    messages = await trio.to_thread.run_sync(cluster.stream_messages)
    assert check_stream(messages[: len(accepted)], set(accepted)) == []
