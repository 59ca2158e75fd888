"""The operators' routes over real HTTP (``serve_http1`` on 127.0.0.1 serving ``build_app`` with
``ops_routes``), over a real store and pipeline: the board pages by cursor, an ack is durable
and audited, the OCI and its drill-down, errors as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import trio

from gateway._metrics import Metrics
from gateway._ops import OpsMetrics, OpsState, serve_ops
from gateway._pipeline import Pipeline
from gateway._rules import RuleHolder
from gateway._server import Services, build_app, load_or_create_token, serve_http1
from gateway._server.http import bearer_guard
from gateway._server.ops_api import ops_routes
from gateway._settings import load_settings
from gateway._store import open_store, store_settings
from tests._support import write_config
from tests.ops.seed import NOW, Seeder
from tests.ops.test_board import seed_every_kind
from tests.ops.test_oci import seed_mix


@asynccontextmanager
async def ops_gateway(tmp_path, seed, *, with_task: bool = False, lazy: bool = False) -> AsyncIterator[SimpleNamespace]:
    """``lazy``: no ``services.ops``: the routes make their own state (real clock)."""
    settings = load_settings(write_config(tmp_path))
    store = open_store(store_settings(settings))
    try:
        seed(store)
        pipeline = Pipeline(store, settings.pipeline, Metrics())
        services = Services(settings=settings, store=store, pipeline=pipeline, rules=RuleHolder(settings.rules_path),
                            metrics=pipeline.metrics, api_token=load_or_create_token(settings.token_path))
        if not lazy:
            async def commit(write):
                return await pipeline.submit([], "webhook", extra=write)
            services.ops = OpsState(store, lambda: services.rules.current, commit=commit,  # type: ignore[attr-defined]
                                    metrics=OpsMetrics(services.metrics.registry), clock=lambda: NOW)
        app = build_app(services, ops_routes(services, bearer_guard(services.api_token)))
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            if with_task:
                await nursery.start(serve_ops, services.ops)
            bound = await nursery.start(lambda task_status: serve_http1(
                app, [("127.0.0.1", 0)], shutdown_trigger=stop.wait, task_status=task_status))
            auth = {"Authorization": f"Bearer {services.api_token}"}
            async with httpx.AsyncClient(base_url=bound[0], headers=auth, timeout=10) as client:
                try:
                    yield SimpleNamespace(services=services, store=store, client=client)
                finally:
                    stop.set()
                    pipeline.close()
                    nursery.cancel_scope.cancel()
    finally:
        store.close()


async def test_the_board_pages_by_cursor_and_an_ack_is_recorded(tmp_path):
    async with ops_gateway(tmp_path, seed_every_kind) as gw:
        api = gw.client
        whole = (await api.get("/api/v1/tenants/t1/anomalies")).json()
        assert len(whole["items"]) == 12 and whole["next_cursor"] is None
        assert whole["counts"]["held"] == {"total": 2, "unacked": 2}
        walked, cursor = [], None
        while True:
            reply = await api.get("/api/v1/tenants/t1/anomalies", params={"limit": 4, **({"cursor": cursor} if cursor
                                                                                          else {})})
            assert reply.status_code == 200, reply.text
            walked.extend(item["id"] for item in reply.json()["items"])
            cursor = reply.json()["next_cursor"]
            if cursor is None:
                break
        assert walked == [item["id"] for item in whole["items"]]
        intercepts = (await api.get("/api/v1/tenants/t1/anomalies?kind=intercept")).json()["items"]
        (item,) = intercepts
        assert item["link"] == "/api/v1/tenants/t1/orders/douyin%7Crefunded"
        order = await api.get(item["link"])
        assert order.status_code == 200 and order.json()["order"]["order_id"] == "douyin|refunded"
        acked = await api.post(f"/api/v1/tenants/t1/anomalies/{item['id']}/ack", json={"by": "王主管"})
        assert acked.status_code == 200, acked.text
        assert acked.json()["anomaly"]["ack"]["by"] == "王主管"
        again = (await api.get("/api/v1/tenants/t1/anomalies?kind=intercept")).json()["items"][0]
        assert again["ack"]["by"] == "王主管" and again["ack"]["at_ms"] > 0
        assert [i["id"] for i in (await api.get("/api/v1/tenants/t1/anomalies?acked=true")).json()["items"]] \
            == [item["id"]]
        audit = [a for a in gw.store.iter_audit("t1", "douyin|refunded") if a["decision"] == "anomaly_ack"]
        assert audit and audit[0]["actor"] == "api:王主管"


async def test_errors_say_what_is_wrong_with_a_code(tmp_path):
    async with ops_gateway(tmp_path, seed_every_kind) as gw:
        api = gw.client
        cases = [
            (api.get("/api/v1/tenants/t1/anomalies?kind=nope"), 400, "bad_kind"),
            (api.get("/api/v1/tenants/t1/anomalies?limit=0"), 400, "bad_limit"),
            (api.get("/api/v1/tenants/t1/anomalies?cursor=%%%"), 400, "bad_cursor"),
            (api.get("/api/v1/tenants/t1/anomalies?acked=maybe"), 400, "bad_acked"),
            (api.post("/api/v1/tenants/t1/anomalies/intercept:douyin%7Crefunded/ack", json={}), 400, "bad_body"),
            (api.post("/api/v1/tenants/t1/anomalies/intercept:douyin%7Crefunded/ack", content=b"{"), 400, "bad_body"),
            (api.post("/api/v1/tenants/t1/anomalies/nope/ack", json={"by": "x"}), 404, "no_such_anomaly"),
            (api.get("/api/v1/tenants/t1/oci/speed/orders"), 404, "unknown_part"),
            (api.get("/api/v1/tenants/t1/oci?hours=100000"), 400, "bad_hours"),
        ]
        for request, status, code in cases:
            reply = await request
            assert reply.status_code == status, reply.text
            error = reply.json()
            assert error["code"] == code and error["error"] and error["message_zh"]
        assert (await api.get("/api/v1/tenants/t1/anomalies", headers={"Authorization": ""})).status_code == 401
        empty = (await api.get("/api/v1/tenants/nobody/anomalies")).json()
        assert empty["items"] == [] and empty["next_cursor"] is None


async def test_the_oci_now_its_trend_and_the_drilldown(tmp_path):
    async with ops_gateway(tmp_path, seed_mix, with_task=True) as gw:
        api = gw.client
        body = (await api.get("/api/v1/tenants/t1/oci")).json()
        now = body["now"]
        assert (now["freshness"], now["consistency"], now["traceability"]) == (0.8, 0.9, 0.9)
        assert body["weights"] == {"freshness": 1.0, "consistency": 1.0, "traceability": 1.0}
        assert body["freshness_s"] == 90.0 and "score" in body["formula"]
        assert [p["hour_ms"] for p in body["trend"]] == [NOW - NOW % 3_600_000]
        first = (await api.get("/api/v1/tenants/t1/oci/freshness/orders?limit=1")).json()
        assert [i["order_id"] for i in first["items"]] == ["douyin|3"] and first["total"] == 2
        rest = (await api.get("/api/v1/tenants/t1/oci/freshness/orders",
                              params={"cursor": first["next_cursor"]})).json()
        assert [i["order_id"] for i in rest["items"]] == ["douyin|7"] and rest["next_cursor"] is None
        consistency = (await api.get("/api/v1/tenants/t1/oci/consistency/orders")).json()["items"]
        assert [(i["order_id"], i["link"]) for i in consistency] == [("douyin|5", "/api/v1/tenants/t1/orders/douyin%7C5")]
        wrong = await api.get("/api/v1/tenants/t1/oci/consistency/orders", params={"cursor": first["next_cursor"]})
        assert wrong.status_code == 400 and wrong.json()["code"] == "bad_cursor"
        metrics = (await api.get("/metrics")).text
        assert 'gateway_oci{part="freshness",tenant="t1"} 0.8' in metrics
        assert 'gateway_anomalies{kind="status_disagrees",tenant="t1"} 1.0' in metrics


async def test_the_board_of_a_tenant_is_not_seen_by_another(tmp_path):
    def seed(store):
        Seeder(store, "t2").event("douyin|t2", None, occurred=NOW, processed=NOW, unknown="X")
        seed_every_kind(store)

    async with ops_gateway(tmp_path, seed, lazy=True) as gw:
        t2 = (await gw.client.get("/api/v1/tenants/t2/anomalies")).json()["items"]
        assert [i["order_id"] for i in t2] == ["douyin|t2"]
        refused = await gw.client.post("/api/v1/tenants/t2/anomalies/intercept:douyin%7Crefunded/ack",
                                       json={"by": "x"})
        assert refused.status_code == 404
