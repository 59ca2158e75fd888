"""The daemon end to end: real HTTP on 127.0.0.1, real RocksDB, real signatures."""

from __future__ import annotations

import httpx
import orjson
import pytest
import trio

from gateway._daemon import serve_gateway
from gateway._settings import load_settings
from gateway._store import open_store, store_settings
from tests._support import erp_event, signed, write_config


@pytest.fixture
async def gateway(tmp_path, nursery):
    settings = load_settings(write_config(tmp_path))
    shutdown = trio.Event()
    services = await nursery.start(serve_gateway, settings, shutdown)
    base = services.bound[0]
    base = base if "://" in base else f"http://{base}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        client.services = services
        client.shutdown = shutdown
        client.auth_headers = {"Authorization": f"Bearer {services.api_token}"}
        yield client
    shutdown.set()


async def post(client, events, tenant="t1", **kw):
    body, headers = signed(events, tenant, **kw)
    return await client.post(f"/webhooks/erp/{tenant}", content=body, headers=headers)


def event_log(client, tenant="t1"):
    return list(client.services.store.iter_events(tenant))


async def test_healthz_reports_core_and_rules(gateway):
    reply = (await gateway.get("/healthz")).json()
    assert reply["status"] == "ok"
    assert reply["core"] in ("cython", "python")
    assert "erp" in reply["rules"]["sources"]


async def test_livez_answers_without_a_token(gateway):
    response = await gateway.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "live"}
    assert response.headers["content-type"] == "application/json"


async def test_erp_batch_lands_with_audit_and_outbox(gateway):
    response = await post(gateway, [erp_event(1, "WAIT_AUDIT"), erp_event(2, "PAID")])
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["ok"] and reply["accepted"] == 2
    assert [r["outcome"] for r in reply["results"]] == ["new", "new"]
    store = gateway.services.store
    order = store.get_order("t1", "douyin|DY00000001")
    assert order is not None and order.status.value == "PENDING_REVIEW"
    assert len(list(store.iter_audit("t1"))) == 2
    assert store.verify_audit_chain("t1").ok
    assert store.outbox_stats().count == 2
    outbox = list(store.iter_outbox())
    assert {o["order_id"] for o in outbox} == {"douyin|DY00000001", "douyin|DY00000002"}
    assert len(event_log(gateway)) == 2


async def test_same_delivery_twice_is_one_event(gateway):
    events = [erp_event(1)]
    assert (await post(gateway, events)).json()["counts"] == {"new": 1}
    again = await post(gateway, events)
    assert again.status_code == 200
    assert again.json()["counts"] == {"duplicate": 1}
    assert len(event_log(gateway)) == 1


async def test_bad_signature_is_401_and_changes_nothing(gateway):
    response = await post(gateway, [erp_event(1)], secret="wrong-secret")
    assert response.status_code == 401
    assert "secret" not in response.text.lower() or "wrong-secret" not in response.text
    assert event_log(gateway) == []
    assert gateway.services.store.get_order("t1", "douyin|DY00000001") is None


async def test_tampered_body_is_401(gateway):
    body, headers = signed([erp_event(1)])
    tampered = body.replace(b"WAIT_AUDIT", b"SIGNED")
    response = await gateway.post("/webhooks/erp/t1", content=tampered, headers=headers)
    assert response.status_code == 401
    assert event_log(gateway) == []


async def test_one_tenants_secret_never_verifies_another_tenant(gateway):
    body, headers = signed([erp_event(1)], "t1")
    response = await gateway.post("/webhooks/erp/t2", content=body, headers=headers)
    assert response.status_code == 401
    assert event_log(gateway, "t2") == [] and event_log(gateway, "t1") == []


async def test_replayed_old_timestamp_is_401(gateway):
    response = await post(gateway, [erp_event(1)], timestamp=1_000_000_000)
    assert response.status_code == 401
    assert "replay window" in response.json()["error"]


async def test_unknown_tenant_and_source(gateway):
    body, headers = signed([erp_event(1)], "t1")
    assert (await gateway.post("/webhooks/erp/nobody", content=body, headers=headers)).status_code == 401
    assert (await gateway.post("/webhooks/nosuch/t1", content=body, headers=headers)).status_code == 404


async def test_malformed_bodies_are_400_and_store_nothing(gateway):
    assert (await post(gateway, b"{not json")).status_code == 400
    assert (await post(gateway, b'{"events": 3}')).status_code == 400
    missing_id = erp_event(2)
    del missing_id["event_id"]
    response = await post(gateway, [erp_event(1), missing_id])
    assert response.status_code == 400
    assert "[1]" in response.json()["error"]
    assert event_log(gateway) == []  # the good event of a refused batch is not half-accepted


async def test_oversize_body_is_413(gateway):
    big = [erp_event(1, note="x" * (5 * 1024 * 1024))]
    response = await post(gateway, big)
    assert response.status_code == 413
    assert event_log(gateway) == []


async def test_unknown_status_is_quarantined_and_listed(gateway):
    response = await post(gateway, [erp_event(1, "WAITING_FOR_GODOT")])
    assert response.status_code == 200
    assert response.json()["results"][0]["outcome"] == "quarantined"
    listed = await gateway.get("/api/v1/tenants/t1/quarantine", headers=gateway.auth_headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 1
    assert body["items"][0]["raw_status"] == "WAITING_FOR_GODOT"
    assert body["items"][0]["reason"] == "unknown_status"
    metrics = await gateway.get("/metrics", headers=gateway.auth_headers)
    assert "gateway_quarantined 1.0" in metrics.text


async def test_late_event_is_reported_and_order_kept(gateway):
    await post(gateway, [erp_event(1, "SIGNED")])
    response = await post(gateway, [erp_event(2, "WAIT_AUDIT", order="DY00000001")])
    assert response.json()["results"][0]["outcome"] == "late"
    order = gateway.services.store.get_order("t1", "douyin|DY00000001")
    assert order.status.value == "DELIVERED" and order.late_events == 1


async def test_api_needs_the_token(gateway):
    assert (await gateway.get("/api/v1/rules")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await gateway.get("/api/v1/rules", headers=wrong)).status_code == 401
    rules = await gateway.get("/api/v1/rules", headers=gateway.auth_headers)
    assert rules.status_code == 200 and "douyin" in rules.json()["sources"]
    assert (await gateway.get("/metrics")).status_code == 401


async def test_order_api_shows_the_audit_trail(gateway):
    await post(gateway, [erp_event(1, "PAID"), erp_event(2, "WAIT_AUDIT", order="DY00000001")])
    response = await gateway.get("/api/v1/tenants/t1/orders/douyin|DY00000001", headers=gateway.auth_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["order"]["status"] == "PENDING_REVIEW"
    changes = [c for record in body["audit"] for c in record["changes"] if c["field"] == "status"]
    assert [(c["old"], c["new"]) for c in changes] == [(None, "PAID"), ("PAID", "PENDING_REVIEW")]
    verify = await gateway.get("/api/v1/tenants/t1/audit/verify", headers=gateway.auth_headers)
    assert verify.json()["ok"] is True


async def test_concurrent_requests_share_group_commits(gateway):
    async def one(n):
        response = await post(gateway, [erp_event(n * 10 + i) for i in range(10)])
        assert response.status_code == 200

    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(one, n)
    assert len(event_log(gateway)) == 200
    assert gateway.services.pipeline.groups_committed <= 20


async def test_graceful_shutdown_closes_the_store(tmp_path):
    settings = load_settings(write_config(tmp_path))
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        base = services.bound[0]
        async with httpx.AsyncClient(base_url=base if "://" in base else f"http://{base}") as client:
            body, headers = signed([erp_event(1)])
            assert (await client.post("/webhooks/erp/t1", content=body, headers=headers)).status_code == 200
        shutdown.set()
    with open_store(store_settings(settings)) as store:  # the lock was released
        assert store.get_order("t1", "douyin|DY00000001") is not None
        assert orjson.dumps(store.outbox_stats().count) == b"1"


async def test_rule_reload_over_the_api_is_counted_in_metrics(gateway):
    response = await gateway.post("/api/v1/rules/reload", headers=gateway.auth_headers)
    assert response.status_code == 200 and response.json()["ok"] is True
    metrics = (await gateway.get("/metrics", headers=gateway.auth_headers)).text
    assert 'gateway_rules_reloads_total{result="ok"} 1.0' in metrics
    assert "gateway_core_implementation_info" in metrics


async def test_demo_feeder_drives_orders_through_the_real_endpoint(tmp_path):
    extra = "[demo]\nenabled = true\ninterval_s = 0.05\ntenant = 't1'\n"
    settings = load_settings(write_config(tmp_path, extra))
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        with trio.fail_after(20):
            while not any(o["outcome"] == "applied" for o in services.store.iter_events("t1")):  # noqa: ASYNC110  (the store has no event to wait on)
                await trio.sleep(0.05)
            # with no [upstream] url the demo forwards to its own /demo/upstream route
            while not services.forwarder.status.delivered_events:  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert services.forwarder.settings.url.endswith("/demo/upstream")
        shutdown.set()
    with open_store(store_settings(settings)) as store:
        assert store.verify_audit_chain("t1").ok


async def test_full_outbox_means_503_with_retry_after_and_nothing_stored(tmp_path):
    settings = load_settings(write_config(tmp_path, "[store]\noutbox_max_events = 2\n"))
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        base = services.bound[0]
        async with httpx.AsyncClient(base_url=base if "://" in base else f"http://{base}") as client:
            body, headers = signed([erp_event(1), erp_event(2)])
            assert (await client.post("/webhooks/erp/t1", content=body, headers=headers)).status_code == 200
            body, headers = signed([erp_event(3)])
            refused = await client.post("/webhooks/erp/t1", content=body, headers=headers)
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) > 0
            assert "outbox full" in refused.json()["error"]
        assert len(list(services.store.iter_events("t1"))) == 2
        shutdown.set()


def test_a_low_open_files_limit_is_raised_for_max_connections():
    import resource

    from gateway._daemon import FILES_BESIDES_CONNECTIONS, raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 1000 + FILES_BESIDES_CONNECTIONS
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard limit here ({hard}) is below {needed}")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert raise_open_files_limit(1000) == needed
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == needed
        assert raise_open_files_limit(10) == needed  # high enough already: left alone
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_the_shipped_demo_runs_a_station_with_simulated_devices(tmp_path):
    """``make run``'s config: station demo-1's scanner, printer and NVR are simulators on 127.0.0.1."""
    from gateway._settings import default_config_path, with_overrides

    settings = with_overrides(load_settings(default_config_path()), gateway={"data_dir": str(tmp_path / "data")},
                              http={"port": 0}, demo={"interval_s": 0.1})
    assert settings.demo.devices and "demo-1" in settings.stations
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        with trio.fail_after(20):
            while not (len(services.devices) == 6 and all(d.state == "up" for d in services.devices)  # noqa: ASYNC110
                       and services.devices.get("demo-1", "demo-scanner").events >= 3):
                await trio.sleep(0.05)
        assert services.devices.get("demo-1", "tcp:127.0.0.1:18792").detail == "ready"
        shutdown.set()
