"""The Pinduoduo message client against a local PDD-like WebSocket server, with real parts.

A real RocksDB store in tmp_path, a real Pipeline committing in the test's nursery, the
shipped rules through a real RuleHolder, and ``tests._support.pdd_ws_server`` on 127.0.0.1. Waits
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

import pytest
import trio

from gateway._ingest import PinduoduoClient
from gateway._ingest.pdd_clients import serve_pinduoduo_client
from gateway._settings import Secret
from tests._support.pdd import (
    CLIENT_ID,
    HANG_GUARD_S,
    SECRET,
    TENANT,
    confirmed,
    order_status,
    real_parts,
    stored_ids,
)
from tests._support.pdd_ws_server import PddMessageServer, common_frame


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
