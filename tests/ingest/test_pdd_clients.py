"""Which Pinduoduo message clients a configuration runs (``gateway._ingest.pdd_clients``).

``channels`` is checked on loaded settings alone; the clients themselves run against the
local PDD-like WebSocket server (``tests._support.pdd_ws_server``) on 127.0.0.1 with real parts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import trio

from gateway._daemon import serve_gateway
from gateway._ingest import PinduoduoClient
from gateway._ingest.pdd_clients import channels, serve_pinduoduo_clients
from gateway._settings import load_settings
from tests._support import write_config
from tests._support.pdd import CLIENT_ID, HANG_GUARD_S, SECRET, TENANT, confirmed, real_parts, stored_ids
from tests._support.pdd_ws_server import PddMessageServer, common_frame


@pytest.fixture
async def server(nursery):
    return await nursery.start(PddMessageServer(CLIENT_ID, SECRET).serve)


def pdd(tenant: str, *, app_key: str = CLIENT_ID, ws_url: str = "wss://pdd.example/message",
        malls: str = "", secret: str = SECRET) -> str:
    text = f"[tenants.{tenant}.pinduoduo]\nsecret = '{secret}'\n"
    if app_key:
        text += f"app_key = '{app_key}'\n"
    if ws_url:
        text += f"ws_url = '{ws_url}'\n"
    if malls:
        text += f"mall_ids = [{malls}]\n"
    return text


def test_a_tenant_without_ws_url_takes_relayed_webhooks_only(tmp_path):
    settings = load_settings(write_config(tmp_path, extra=pdd("t1") + pdd("t2", ws_url="", secret="relay")))
    [channel] = channels(settings)
    assert (channel.label, channel.client_id, channel.ws_url, channel.routes) == (
        "t1", CLIENT_ID, "wss://pdd.example/message", {})
    assert channel.secret.reveal() == SECRET.encode()


def test_tenants_sharing_an_app_share_one_channel_routed_by_shop(tmp_path):
    extra = (pdd("shop_b", malls="9002, 9003") + pdd("shop_a", ws_url="wss://pdd.example/message/", malls="9001")
             + pdd("other", app_key="another-app"))
    found = {channel.label: channel for channel in channels(load_settings(write_config(tmp_path, extra=extra)))}
    assert sorted(found) == ["other", "shop_a+shop_b"]  # the trailing "/" names the same endpoint
    assert found["shop_a+shop_b"].routes == {"9001": "shop_a", "9002": "shop_b", "9003": "shop_b"}
    assert found["other"].client_id == "another-app" and found["other"].routes == {}


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
