"""The Pinduoduo message client against a local PDD-like WebSocket server, with real parts.

A real RocksDB store in tmp_path, a real Pipeline committing in the test's nursery, the
shipped rules through a real RuleHolder, and ``tests._pdd_ws_server`` on 127.0.0.1. Waits
are event-driven (``server.wait_until``); ``trio.fail_after`` is only a hang guard and
nothing asserts on durations.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import trio

from gateway._daemon import serve_gateway
from gateway._metrics import Metrics
from gateway._pdd_ws import PinduoduoClient, serve_pinduoduo_client, serve_pinduoduo_clients
from gateway._pipeline import Pipeline
from gateway._reload import RuleHolder
from gateway._settings import PipelineSection, Secret, load_settings
from gateway._store import StoreSettings, open_store
from tests._pdd_ws_server import PddMessageServer, common_frame
from tests._support import RULES, write_config

CLIENT_ID = "pdd-app-7f3a"
SECRET = "pdd-client-secret-e2c1"
TENANT = "t1"
HANG_GUARD_S = 30


@asynccontextmanager
async def real_parts(tmp_path: Any, **store_settings: Any) -> AsyncIterator[SimpleNamespace]:
    store = open_store(StoreSettings(path=tmp_path / "db", **store_settings))
    metrics = Metrics()
    pipeline = Pipeline(store, PipelineSection(), metrics)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            yield SimpleNamespace(store=store, pipeline=pipeline, metrics=metrics, rules=RuleHolder(RULES))
            pipeline.close()
    finally:
        store.close()


@pytest.fixture
async def parts(tmp_path):
    async with real_parts(tmp_path) as value:
        yield value


@pytest.fixture
async def server(nursery):
    return await nursery.start(PddMessageServer(CLIENT_ID, SECRET).serve)


@asynccontextmanager
async def running_client(parts: SimpleNamespace, server: PddMessageServer, *, secret: str = SECRET,
                         **options: Any) -> AsyncIterator[PinduoduoClient]:
    options = {"backoff_initial_s": 0.01, "backoff_max_s": 0.2, "heartbeat_interval_s": 0, **options}
    async with trio.open_nursery() as nursery:
        client = await nursery.start(partial(
            serve_pinduoduo_client, server.url_base, TENANT, CLIENT_ID, Secret(secret), parts.rules,
            parts.pipeline, parts.metrics, **options))
        yield client
        nursery.cancel_scope.cancel()


def stored_ids(store, tenant: str = TENANT) -> list[str]:
    return [record["source_event_id"] for record in store.iter_events(tenant)]


def order_status(store, tid: str) -> str | None:
    order = store.get_order(TENANT, f"pinduoduo|{tid}")
    return order.status.value if order is not None and order.status is not None else None


def confirmed(frame_id: int, tid: str) -> str:
    return common_frame(frame_id, "pdd_trade_TradeConfirmed",
                        {"tid": tid, "mall_id": 9001, "order_status": 1, "refund_status": 1})


async def test_messages_are_durable_before_their_ack(parts, server):
    durable_at_ack: list[bool] = []
    server.on_ack = lambda ack: durable_at_ack.append(str(ack["id"]) in stored_ids(parts.store))
    with trio.fail_after(HANG_GUARD_S):
        async with running_client(parts, server) as client:
            for n in (1, 2, 3):
                server.push(confirmed(n, f"251125-00{n}"))
            await server.wait_until(lambda: len(server.acks) == 3)
    assert durable_at_ack == [True, True, True]
    assert sorted(server.acked_ids()) == [1, 2, 3]
    ack = server.acks[0]
    assert ack["commandType"] == "Ack" and ack["type"] == "pdd_trade_TradeConfirmed" and ack["mallID"] == 9001
    assert order_status(parts.store, "251125-001") == "PENDING_REVIEW"
    assert client.stats.acked == 3 and client.stats.events_stored == 3 and client.stats.connects == 1


async def test_refund_frame_after_trade_confirmed_is_refund_initiated(parts, server):
    refund = common_frame(2, "pdd_refund_RefundCreated",  # PDD's thin refund frame: no order_status
                          {"tid": "251125-777", "mall_id": 9001, "refund_id": 88001, "refund_status": 2})
    with trio.fail_after(HANG_GUARD_S):
        async with running_client(parts, server):
            server.push(confirmed(1, "251125-777"))
            await server.wait_until(lambda: server.acked_ids() == [1])
            assert order_status(parts.store, "251125-777") == "PENDING_REVIEW"
            server.push(refund)
            await server.wait_until(lambda: server.acked_ids() == [1, 2])
            assert order_status(parts.store, "251125-777") == "REFUND_INITIATED"
            server.push(common_frame(3, "pdd_refund_RefundClosed",
                                     {"tid": "251125-777", "refund_id": 88001, "refund_status": 1}))
            await server.wait_until(lambda: server.acked_ids() == [1, 2, 3])
    assert order_status(parts.store, "251125-777") == "PENDING_REVIEW"  # @resume
    order = parts.store.get_order(TENANT, "pinduoduo|251125-777")
    assert order.data.get("refund_id") == 88001


async def test_wrong_secret_is_refused_and_retried_with_growing_backoff(parts, server, caplog):
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(HANG_GUARD_S):
        async with running_client(parts, server, secret="not-the-secret", backoff_initial_s=0.001,
                                  backoff_max_s=0.016) as client:
            await server.wait_until(lambda: server.handshakes_refused >= 7)
            stats = client.stats
            assert stats.state in ("connecting", "waiting")  # still trying, not crashed
    assert stats.connects == 0 and stats.connect_failures >= 6
    bases = list(stats.reconnect_bases)
    assert bases[:6] == [0.001, 0.002, 0.004, 0.008, 0.016, 0.016]  # doubles, then capped
    assert all(delay <= 0.016 for delay in stats.reconnect_delays)
    assert "401" in stats.last_error
    assert server.acks == [] and stored_ids(parts.store) == []
    logged = caplog.text
    assert "not-the-secret" not in logged and SECRET not in logged
    assert "Connecting to" in logged  # trio-websocket's own DEBUG line is there, with the sign blanked
    assert re.search(rf"/message/{CLIENT_ID}/\d+/(?!\*\*\*)", logged) is None


async def test_drop_mid_stream_reconnects_redelivers_and_stores_each_event_once(parts, server):
    server.lose_ack_of = {3}  # the Ack of frame 3 is "lost" and the connection dies with it
    with trio.fail_after(HANG_GUARD_S):
        async with running_client(parts, server) as client:
            for n in range(1, 6):
                server.push(confirmed(n, f"251125-10{n}"))
            await server.wait_until(lambda: server.lost_acks != [])
            for n in (6, 7):  # sent while we may be disconnected: delivered on reconnect
                server.push(confirmed(n, f"251125-10{n}"))
            await server.wait_until(lambda: not server.pending and server.connections >= 2)
    assert sorted(stored_ids(parts.store), key=int) == [str(n) for n in range(1, 8)]  # each once
    assert sorted(set(server.acked_ids())) == list(range(1, 8))
    assert 3 in server.acked_ids()  # the redelivered, already stored frame was acked again
    assert client.stats.duplicates >= 1 and client.stats.connects >= 2 and client.stats.disconnects >= 1
    assert parts.metrics.channel_reconnects.labels("pinduoduo", TENANT)._value.get() >= 1


async def test_server_closing_the_connection_is_survived(parts, server):
    with trio.fail_after(HANG_GUARD_S):
        async with running_client(parts, server) as client:
            await server.wait_until(lambda: server.connected)
            server.drop()
            await server.wait_until(lambda: server.connections >= 2 and server.connected)
            server.push(confirmed(1, "251125-201"))
            await server.wait_until(lambda: server.acked_ids() == [1])
    assert client.stats.disconnects >= 1
    assert stored_ids(parts.store) == ["1"]


async def test_backpressure_withholds_the_ack_until_the_outbox_has_room(tmp_path, server):
    # outbox_max_events=2: webhook-priority submissions are refused at 2 - min(reserve, 2 // 2) = 1
    async with real_parts(tmp_path, outbox_max_events=2) as parts:
        with trio.fail_after(HANG_GUARD_S):
            async with running_client(parts, server) as client:
                server.push(confirmed(1, "251125-301"))
                await server.wait_until(lambda: server.acked_ids() == [1])
                server.push(confirmed(2, "251125-302"))
                await client.wait_until(lambda stats: stats.submit_retries >= 2)
                assert server.acked_ids() == [1]  # frame 2 is not durable: no ack
                assert stored_ids(parts.store) == ["1"]
                parts.store.delete_outbox([row["outbox_seq"] for row in parts.store.iter_outbox()])
                await server.wait_until(lambda: server.acked_ids() == [1, 2])
        assert stored_ids(parts.store) == ["1", "2"]
        refused = parts.metrics.refused.labels("pinduoduo", "backpressure")._value.get()
        assert refused >= 2


async def test_server_heartbeats_are_answered(parts, server):
    with trio.fail_after(HANG_GUARD_S):
        async with running_client(parts, server, heartbeat_interval_s=0) as client:
            await server.wait_until(lambda: server.connected)
            server.send_heartbeat()
            await server.wait_until(lambda: len(server.heartbeats) >= 1)
    assert server.heartbeats[0]["commandType"] == "HeartBeat"
    assert client.stats.heartbeats_answered == 1 and client.stats.heartbeats_sent == 0


async def test_client_sends_heartbeats_and_pings_on_its_own(parts, server):
    with trio.fail_after(HANG_GUARD_S):
        async with running_client(parts, server, heartbeat_interval_s=0.01, ping_timeout_s=20) as client:
            await server.wait_until(lambda: len(server.heartbeats) >= 3)
    assert client.stats.heartbeats_sent >= 3
    assert client.stats.disconnects == 0  # every ping got its pong


async def test_malformed_frames_are_quarantined_then_acked(parts, server):
    bad_content = '{"id": 50, "commandType": "Common", "sendTime": 1, "message": ' \
                  '{"type": "pdd_trade_TradeConfirmed", "mallID": 9001, "content": "{not json"}}'
    no_tid = common_frame(51, "pdd_trade_TradeConfirmed", {"order_status": 1})
    with trio.fail_after(HANG_GUARD_S):
        async with running_client(parts, server) as client:
            await server.wait_until(lambda: server.connected)  # the id-less frame is sent only once
            server.push(bad_content)
            server.push("certainly not a frame")
            server.push(no_tid)
            server.push(confirmed(52, "251125-501"))
            await server.wait_until(lambda: sorted(server.acked_ids()) == [50, 51, 52])
            await client.wait_until(lambda stats: stats.malformed == 3 and stats.events_stored == 4)
    quarantined = list(parts.store.iter_quarantine(TENANT))
    assert len(quarantined) == 3
    assert {q["rule"] for q in quarantined} == {"pinduoduo-ws:malformed"}
    texts = {q["raw"]["frame"] for q in quarantined}
    assert "certainly not a frame" in texts and bad_content in texts
    assert all(q["raw"]["malformed"] for q in quarantined)
    assert order_status(parts.store, "251125-501") == "PENDING_REVIEW"  # good frames still flow
    assert parts.metrics.refused.labels("pinduoduo", "malformed")._value.get() == 3


@asynccontextmanager
async def clients_of(parts: SimpleNamespace, tmp_path: Any, extra: str) -> AsyncIterator[list[PinduoduoClient]]:
    """``serve_pinduoduo_clients`` on a config with ``extra`` tenants, over ``parts``; the
    clients are shut down when the block ends."""
    settings = load_settings(write_config(tmp_path, extra=extra))
    shutdown = trio.Event()
    with trio.fail_after(HANG_GUARD_S):
        async with trio.open_nursery() as nursery:
            yield await nursery.start(serve_pinduoduo_clients, settings, parts.rules, parts.pipeline,
                                      parts.metrics, shutdown)
            shutdown.set()  # serve_pinduoduo_clients returns: the nursery can close


async def test_serve_pinduoduo_clients_starts_one_client_per_tenant_with_an_app_key(tmp_path, server):
    extra = (f"[tenants.t1.pinduoduo]\nsecret = '{SECRET}'\napp_key = '{CLIENT_ID}'\n"
             f"ws_url = '{server.url_base}'\n"
             "[tenants.t2.pinduoduo]\nsecret = 'relay-only-secret'\n")
    async with real_parts(tmp_path) as parts:
        async with clients_of(parts, tmp_path, extra) as clients:
            assert [(c.tenant, c.client_id) for c in clients] == [("t1", CLIENT_ID)]
            server.push(confirmed(1, "251125-601"))
            await server.wait_until(lambda: server.acked_ids() == [1])
        assert stored_ids(parts.store, "t1") == ["1"]


async def test_one_apps_websocket_shared_by_two_tenants_is_routed_by_shop(tmp_path, server):
    extra = "".join(f"[tenants.{t}.pinduoduo]\nsecret = '{SECRET}'\napp_key = '{CLIENT_ID}'\n"
                    f"ws_url = '{server.url_base}'\nmall_ids = [{mall}]\n" for t, mall in (("t1", 9001), ("t2", 9002)))
    async with real_parts(tmp_path) as parts:
        async with clients_of(parts, tmp_path, extra) as clients:
            assert [(c.tenant, c.client_id) for c in clients] == [("t1+t2", CLIENT_ID)]  # one connection
            for frame_id, mall in ((1, 9001), (2, 9002), (3, 9003), (4, 9001)):
                server.push(common_frame(frame_id, "pdd_trade_TradeConfirmed",
                                         {"tid": f"251125-90{frame_id}", "order_status": 1}, mall_id=mall))
            await server.wait_until(lambda: sorted(server.acked_ids()) == [1, 2, 4])
            await clients[0].wait_until(lambda stats: stats.unroutable == 1)
            server.push("{not json")  # no shop to go by: kept in the first tenant's quarantine
            await clients[0].wait_until(lambda stats: stats.malformed == 1)
        assert [i for i in stored_ids(parts.store, "t1") if not i.startswith("noid-")] == ["1", "4"]
        assert stored_ids(parts.store, "t2") == ["2"]
        assert 3 not in server.acked_ids()  # the unknown shop's message is not acked: PDD delivers it again
        assert parts.store.get_order("t2", "pinduoduo|251125-902") is not None
        assert parts.store.get_order("t1", "pinduoduo|251125-902") is None  # never under the other tenant
        assert (parts.store.quarantine_count("t1"), parts.store.quarantine_count("t2")) == (1, 0)


async def test_unreachable_endpoint_is_retried_without_crashing(parts):
    with trio.socket.socket() as probe:  # a port nobody listens on
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with trio.fail_after(HANG_GUARD_S):
        async with trio.open_nursery() as nursery:
            client = await nursery.start(partial(
                serve_pinduoduo_client, f"ws://127.0.0.1:{port}/message", TENANT, CLIENT_ID, Secret(SECRET),
                parts.rules, parts.pipeline, parts.metrics, backoff_initial_s=0.001, backoff_max_s=0.01))
            await client.wait_until(lambda stats: stats.connect_failures >= 3)
            nursery.cancel_scope.cancel()
    assert client.stats.connects == 0
    assert "HandshakeError" in client.stats.last_error


async def test_fail_frames_are_logged_not_acked_and_the_stream_goes_on(parts, server, caplog):
    fail = '{"commandType": "Fail", "time": 1, "message": {"content": "mall not authorised"}}'
    with trio.fail_after(HANG_GUARD_S):
        async with running_client(parts, server) as client:
            await server.wait_until(lambda: server.connected)
            server.push(fail)
            server.push(confirmed(1, "251125-701"))
            await server.wait_until(lambda: server.acked_ids() == [1])
    assert client.stats.fails == 1 and client.stats.acked == 1
    assert "mall not authorised" in caplog.text
    assert stored_ids(parts.store) == ["1"]


async def test_the_daemon_opens_the_websocket_of_a_tenant_that_configures_one(tmp_path, server):
    extra = (f"[tenants.t1.pinduoduo]\nsecret = '{SECRET}'\napp_key = '{CLIENT_ID}'\n"
             f"ws_url = '{server.url_base}'\n")
    settings = load_settings(write_config(tmp_path, extra=extra))
    shutdown = trio.Event()
    with trio.fail_after(HANG_GUARD_S):
        async with trio.open_nursery() as nursery:
            services = await nursery.start(serve_gateway, settings, shutdown)
            server.push(confirmed(1, "251125-901"))
            await server.wait_until(lambda: server.acked_ids() == [1])
            order = services.store.get_order(TENANT, "pinduoduo|251125-901")
            assert order is not None and order.status.value == "PENDING_REVIEW"
            auth = {"Authorization": f"Bearer {services.api_token}"}
            async with httpx.AsyncClient(base_url=services.bound[0]) as client:
                [channel] = (await client.get("/api/v1/channels", headers=auth)).json()["channels"]
                assert (channel["tenant"], channel["state"], channel["acked"]) == ("t1", "connected", 1)
                assert SECRET not in str(channel)
                assert (await client.get("/healthz")).json()["channels"] == {"pinduoduo:t1": "connected"}
                metrics = (await client.get("/metrics", headers=auth)).text
                assert 'gateway_channel_connected{source="pinduoduo",tenant="t1"} 1.0' in metrics
            shutdown.set()
