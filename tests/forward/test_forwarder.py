"""The forwarder against a real upstream on 127.0.0.1: outages, 5xx, 429, poison, hangs.

The gateway runs in-process (real HTTP, real RocksDB); the upstream is ``tests._support.upstream``.
Events enter through the signed ERP webhook exactly as in production.
"""

from __future__ import annotations

import email.utils
import time

import httpx
import orjson
import pytest
import trio

from gateway._daemon import serve_gateway
from gateway._forward.sink import build_batch, classify, parse_retry_after
from gateway._settings import load_settings
from tests._support import erp_event, signed, write_config
from tests._support.upstream import Scripted, Upstream, in_per_order_order, upstream_config

FLOW = ["CREATED", "PAID", "WAIT_AUDIT", "AUDITED", "PICKING"]


@pytest.fixture
def upstream():
    server = Upstream().start()
    yield server
    server.stop()


async def start_gateway(nursery, tmp_path, upstream, **overrides):
    settings = load_settings(write_config(tmp_path, upstream_config(upstream, **overrides)))
    shutdown = trio.Event()
    services = await nursery.start(serve_gateway, settings, shutdown)
    base = services.bound[0]
    client = httpx.AsyncClient(base_url=base if "://" in base else f"http://{base}", timeout=10)
    return services, shutdown, client


async def post_flow(client, orders: int, first: int = 0) -> int:
    """Post every order through FLOW, one status per request per order; return events accepted."""
    n = first * len(FLOW)
    for status in FLOW:
        events = []
        for order in range(first, first + orders):
            n += 1
            events.append(erp_event(n, status, order=f"DY{order:08d}"))
        body, headers = signed(events)
        reply = await client.post("/webhooks/erp/t1", content=body, headers=headers)
        assert reply.status_code == 200, reply.text
    return orders * len(FLOW)


async def wait_for(predicate, limit_s=30):
    with trio.fail_after(limit_s):
        while not predicate():  # noqa: ASYNC110  (the store has no event to wait on)
            await trio.sleep(0.02)


def drained(services):
    return lambda: services.store.outbox_stats().count == 0


async def test_every_event_arrives_in_per_order_order(tmp_path, upstream, nursery):
    services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, batch_max_events=7)
    sent = await post_flow(client, 12)
    await wait_for(drained(services))
    unique = upstream.unique_events()
    assert len(unique) == sent
    assert in_per_order_order(upstream.events())
    assert upstream.bad_signatures == 0
    batch = upstream.batches[0]
    assert batch["gateway_id"] == "test-gw" and batch["batch_id"].startswith("test-gw-")
    event = batch["events"][0]
    for name in ("event_id", "tenant", "order_id", "seq", "type", "status", "prev_status", "occurred_at", "data"):
        assert name in event
    assert all(key for _, key, _ in upstream.attempts)  # every POST carried an Idempotency-Key
    shutdown.set()


async def test_upstream_down_then_back_loses_nothing(tmp_path, upstream, nursery):
    upstream.stop()
    services, shutdown, client = await start_gateway(nursery, tmp_path, upstream)
    sent = await post_flow(client, 10)
    await wait_for(lambda: services.forwarder.status.consecutive_failures >= 3)
    report = (await client.get("/api/v1/outbox", headers=auth(services))).json()
    assert report["backlog_events"] == sent
    assert report["state"] == "backoff" or report["consecutive_failures"] >= 3
    assert report["last_error"] and "Connect" in report["last_error"]
    assert report["oldest_age_s"] is not None
    upstream.start()
    await wait_for(drained(services))
    assert len(upstream.unique_events()) == sent
    assert in_per_order_order(upstream.events())
    shutdown.set()


def auth(services):
    return {"Authorization": f"Bearer {services.api_token}"}


async def test_500_and_429_are_retried_honouring_retry_after(tmp_path, upstream, nursery):
    upstream.script = [Scripted(500), Scripted(503), Scripted(429, {"Retry-After": "1"})]
    services, shutdown, client = await start_gateway(nursery, tmp_path, upstream)
    sent = await post_flow(client, 3)
    await wait_for(drained(services))
    assert [status for status, _, _ in upstream.attempts[:3]] == [500, 503, 429]
    assert len(upstream.unique_events()) == sent
    assert in_per_order_order(upstream.events())
    assert services.forwarder.status.retries >= 3
    assert services.store.dead_count() == 0  # retryable answers never dead-letter
    metrics = (await client.get("/metrics", headers=auth(services))).text
    assert 'gateway_forward_batches_total{result="retry"}' in metrics
    shutdown.set()


async def test_a_poisoned_event_is_isolated_dead_lettered_and_requeueable(tmp_path, upstream, nursery):
    poisoned = "douyin|DY00000004"
    upstream.poison = lambda event: event["order_id"] == poisoned and event["status"] == "PAID"
    services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, batch_max_events=50)
    sent = await post_flow(client, 10)
    await wait_for(lambda: drained(services)() and services.store.dead_count() == 1)
    arrived = upstream.unique_events()
    assert len(arrived) == sent - 1  # everything but the poisoned event went through
    assert not any(upstream.poison(e) for e in arrived.values())
    dead = (await client.get("/api/v1/outbox/dead", headers=auth(services))).json()
    assert dead["count"] == 1
    [letter] = dead["items"]
    assert letter["event"]["order_id"] == poisoned and letter["status"] == 400
    assert "unknown sku" in letter["response"]
    report = (await client.get("/api/v1/outbox", headers=auth(services))).json()
    assert report["dead_letters"] == 1 and "dead-lettered" in report["last_error"]

    upstream.poison = None  # the ERP fixed its master data: requeue
    refused = await client.post("/api/v1/outbox/requeue", content=b'{"ids": "x"}', headers=auth(services))
    assert refused.status_code == 400
    reply = await client.post("/api/v1/outbox/requeue", json={"ids": [letter["outbox_seq"]]},
                              headers=auth(services))
    assert reply.json()["requeued"] == 1
    await wait_for(lambda: len(upstream.unique_events()) == sent)
    assert services.store.dead_count() == 0
    shutdown.set()


async def test_a_hanging_upstream_times_out_and_is_retried(tmp_path, upstream, nursery):
    upstream.script = [Scripted(200, hang_s=1.5)]
    services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, timeout_s=0.3)
    sent = await post_flow(client, 2)
    await wait_for(drained(services))
    await wait_for(lambda: len(upstream.unique_events()) == sent)
    assert "timeout" in services.forwarder.status.last_error
    shutdown.set()


async def test_wrong_upstream_secret_keeps_everything_queued(tmp_path, upstream, nursery):
    services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, secret="not-the-erp-secret")
    sent = await post_flow(client, 2)
    await wait_for(lambda: upstream.bad_signatures >= 2)
    assert services.store.outbox_stats().count == sent  # 401 is the channel's fault: never dead-letter
    assert services.store.dead_count() == 0
    assert "HTTP 401" in services.forwarder.status.last_error
    shutdown.set()


async def test_graceful_restart_with_a_large_backlog_resumes_and_resends_nothing(tmp_path, upstream):
    upstream.stop()
    async with trio.open_nursery() as nursery:
        services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, batch_max_events=100)
        sent = await post_flow(client, 4000)  # 20,000 events queued while the upstream is down
        shutdown.set()
    upstream.start()
    upstream.delay_s = 0.02  # a slow ERP: the drain outlasts the shutdown grace (2 s)
    async with trio.open_nursery() as nursery:  # drains part of the backlog, then stops
        services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, batch_max_events=100)
        await wait_for(lambda: len(upstream.batches) >= 5)
        shutdown.set()
    delivered_first = len(upstream.events())
    assert 0 < delivered_first < sent  # stopped in the middle of the backlog
    upstream.delay_s = 0.0
    async with trio.open_nursery() as nursery:
        services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, batch_max_events=100)
        await wait_for(drained(services))
        shutdown.set()
    events = upstream.events()
    assert len(events) == sent  # nothing acknowledged was sent twice
    assert len(upstream.unique_events()) == sent
    assert in_per_order_order(events)


def test_classify_and_retry_after():
    assert classify(200) == classify(204) == "ok"
    assert {classify(s) for s in (408, 429, 500, 502, 503, 504, 401, 403, 404, 301)} == {"retry"}
    assert {classify(s) for s in (400, 409, 413, 422)} == {"reject"}
    assert parse_retry_after("7", 0) == 7.0
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(date, now) <= 31
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_batch_body_is_the_stored_bytes_wrapped():
    records = [(5, b'{"event_id":"a","n":1}'), (6, b'{"event_id":"b","n":2}')]
    batch = build_batch("gw-1", records)
    assert batch.batch_id == "gw-1-5-6" and batch.seqs == [5, 6]
    assert orjson.loads(batch.body) == {"gateway_id": "gw-1", "batch_id": "gw-1-5-6",
                                        "events": [{"event_id": "a", "n": 1}, {"event_id": "b", "n": 2}]}


async def test_a_backlog_drain_logs_progress_and_metrics_count_it(tmp_path, upstream, nursery, caplog):
    caplog.set_level("INFO", logger="gateway._forward.forwarder")
    upstream.stop()
    services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, batch_max_events=5,
                                                     progress_every_s=0.001)
    sent = await post_flow(client, 20)
    upstream.start()
    await wait_for(drained(services))
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("outbox drain:")]
    assert progress and "events/s" in progress[0] and "ETA" in progress[0]
    metrics = (await client.get("/metrics", headers=auth(services))).text
    assert f"gateway_forwarded_events_total {float(sent)}" in metrics
    assert "gateway_outbox_events 0.0" in metrics and "gateway_dead_letters 0.0" in metrics
    assert "gateway_upstream_last_success_timestamp_seconds" in metrics
    shutdown.set()


async def test_shutdown_while_the_upstream_is_down_keeps_the_backlog(tmp_path, upstream):
    upstream.stop()
    with trio.fail_after(30):  # a hang guard, not a timing assert
        async with trio.open_nursery() as nursery:
            services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, retry_initial_s=5.0,
                                                             retry_max_s=30.0)
            sent = await post_flow(client, 4)
            await wait_for(lambda: services.forwarder.status.state == "backoff")
            shutdown.set()  # the forwarder is sleeping in a long backoff: stop must cut it short
    assert services.forwarder.stopped.is_set()
    upstream.start()
    async with trio.open_nursery() as nursery:
        services, shutdown, client = await start_gateway(nursery, tmp_path, upstream)
        await wait_for(drained(services))
        shutdown.set()
    assert len(upstream.events()) == len(upstream.unique_events()) == sent


async def test_the_seed_case_reaches_the_erp_as_a_merge_pack_instruction(tmp_path, upstream, nursery):
    services, shutdown, client = await start_gateway(nursery, tmp_path, upstream)
    buyer = {"phone": "139 0000 1234"}
    main = erp_event(1, "PAID", order="DY-MAIN-1", buyer=buyer, occurred_at="2026-11-25T10:00:00+08:00",
                     lines=[{"sku": "SERUM-50", "qty": 1}, {"sku": "TRIAL-KIT", "qty": 1}])
    gift_box = erp_event(2, "PAID", order="MP-GIFT-7", platform="youzan", buyer=buyer,  # the mini-program shop
                         occurred_at="2026-11-25T10:02:00+08:00", lines=[{"sku": "GIFT-BOX", "qty": 1}])
    for event in (main, gift_box):
        body, headers = signed([event])
        assert (await client.post("/webhooks/erp/t1", content=body, headers=headers)).status_code == 200
    await wait_for(lambda: any(e["type"] == "merge_pack" for e in upstream.events()))
    [merge] = [e for e in upstream.events() if e["type"] == "merge_pack"]
    assert merge["data"]["orders"] == ["douyin|DY-MAIN-1", "youzan|MP-GIFT-7"]
    assert merge["order_id"] == merge["data"]["pack_group"] == "douyin|DY-MAIN-1"
    assert services.store.get_order("t1", "youzan|MP-GIFT-7").pack_group == "douyin|DY-MAIN-1"
    shutdown.set()
