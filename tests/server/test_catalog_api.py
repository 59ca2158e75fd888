"""The catalog routes over real HTTP: file imports, lookups, stock, and the ERP's signed updates.

The server is the gateway's own (``serve_http1`` on 127.0.0.1, port 0) serving ``build_app``
with ``catalog_routes`` added, over a real store and pipeline, as ``serve_gateway`` wires them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import trio

from gateway._metrics import Metrics
from gateway._packline.catalog import load_catalog, load_stock
from gateway._pipeline import Pipeline
from gateway._rules import RuleHolder
from gateway._server import Services, build_app, load_or_create_token, serve_http1
from gateway._server.catalog_api import catalog_routes
from gateway._server.http import bearer_guard
from gateway._settings import Settings, load_settings
from gateway._store import open_store, store_settings
from tests._support import signed, write_config

EAN13 = "4006381333931"
UPC_A = "036000291452"
CSV = (f"sku,name,kind,barcodes,weight_g,parts,serialised,stock\n"
       f"A1,保温杯,item,{EAN13}|A1-INT,420,,1,\n"
       f"GIFT-BAG,帆布袋,gift,{UPC_A},80,,,250\n"
       f"SET-1,套装,item,,,A1*1|GIFT-BAG*2,,\n").encode()


@asynccontextmanager
async def catalog_gateway(settings: Settings) -> AsyncIterator[SimpleNamespace]:
    """The gateway's HTTP face with the catalog routes, over a real store and pipeline;
    the token file is written as the daemon writes it (the CLI finds it there)."""
    store = open_store(store_settings(settings))
    try:
        pipeline = Pipeline(store, settings.pipeline, Metrics())
        services = Services(settings=settings, store=store, pipeline=pipeline, rules=RuleHolder(settings.rules_path),
                            metrics=pipeline.metrics, api_token=load_or_create_token(settings.token_path))
        app = build_app(services, catalog_routes(services, bearer_guard(services.api_token)))
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            bound = await nursery.start(lambda task_status: serve_http1(
                app, [("127.0.0.1", 0)], shutdown_trigger=stop.wait, task_status=task_status))
            services.bound = list(bound)
            try:
                yield SimpleNamespace(services=services, store=store, base=bound[0],
                                      auth={"Authorization": f"Bearer {services.api_token}"})
            finally:
                stop.set()
                pipeline.close()
    finally:
        store.close()


def settings_in(tmp_path: Path) -> Settings:
    return load_settings(write_config(tmp_path))


def erp_body(**event) -> tuple[bytes, dict[str, str]]:
    return signed(orjson.dumps(event))


async def test_import_show_and_stock(tmp_path):
    async with catalog_gateway(settings_in(tmp_path)) as gw, httpx.AsyncClient(base_url=gw.base) as client:
        url = "/api/v1/tenants/t1/catalog"
        assert (await client.post(url, content=CSV)).status_code == 401  # the API token is required
        reply = await client.post(url, content=CSV, params={"dry_run": "1"}, headers=gw.auth)
        assert reply.status_code == 200 and reply.json()["dry_run"] is True and reply.json()["new"] == 3
        assert len(load_catalog(gw.store, "t1")) == 0  # a dry run stores nothing
        reply = await client.post(url, content=CSV, params={"format": "csv", "filename": "c.csv"},
                                  headers={**gw.auth, "X-Gateway-Actor": "cli:ops"})
        assert reply.json() == {"ok": True, "dry_run": False, "products": 3, "new": 3, "updated": 0, "unchanged": 0,
                                "kits": 1, "barcodes": 3, "stock": 1}
        again = await client.post(url, content=CSV.replace(b"\xe5\xb8\x86\xe5\xb8\x83\xe8\xa2\x8b", b"bag"),
                                  headers=gw.auth)
        assert (again.json()["updated"], again.json()["unchanged"]) == (1, 2)

        listing = (await client.get(url, headers=gw.auth)).json()
        assert listing["count"] == 3 and [p["sku"] for p in listing["products"]] == ["A1", "GIFT-BAG", "SET-1"]
        page = (await client.get(url, params={"limit": 2}, headers=gw.auth)).json()
        assert [p["sku"] for p in page["products"]] == ["A1", "GIFT-BAG"] and page["next"] == "GIFT-BAG"
        rest = (await client.get(url, params={"after": "GIFT-BAG"}, headers=gw.auth)).json()
        assert [p["sku"] for p in rest["products"]] == ["SET-1"] and rest["next"] is None
        one = (await client.get(url, params={"sku": "SET-1"}, headers=gw.auth)).json()["product"]
        assert one["parts"] == [{"sku": "A1", "quantity": 1}, {"sku": "GIFT-BAG", "quantity": 2}]
        scanned = (await client.get(url, params={"barcode": "0" + EAN13}, headers=gw.auth)).json()["product"]
        assert scanned["sku"] == "A1" and scanned["serialised"] is True
        assert (await client.get(url, params={"sku": "NOPE"}, headers=gw.auth)).status_code == 404
        assert (await client.get(url, params={"barcode": "NOPE"}, headers=gw.auth)).status_code == 404

        stock = (await client.get("/api/v1/tenants/t1/stock", headers=gw.auth)).json()["stock"]
        assert [(s["sku"], s["quantity"], s["source"]) for s in stock] == [("GIFT-BAG", 250, "import")]
        assert 0 <= stock[0]["age_s"] < 60
        audit = list(gw.store.iter_audit("t1"))
        assert [(a["decision"], a["actor"]) for a in audit] == [("catalog_import", "api:cli:ops"),
                                                               ("catalog_import", "api")]
        assert audit[0]["note"] == "import c.csv: 3 products, 1 stock levels"


async def test_a_bad_file_is_422_with_every_problem_and_nothing_stored(tmp_path):
    async with catalog_gateway(settings_in(tmp_path)) as gw, httpx.AsyncClient(base_url=gw.base) as client:
        url = "/api/v1/tenants/t1/catalog"
        bad = b"sku,kind,barcodes,parts\nA1,thing,4006381333932,\nK1,item,,NOPE*2\n"
        reply = await client.post(url, content=bad, params={"filename": "bad.csv"}, headers=gw.auth)
        assert reply.status_code == 422
        errors = reply.json()["errors"]
        assert [(e["file"], e["row"], e["column"]) for e in errors] == [
            ("bad.csv", 2, "kind"), ("bad.csv", 2, "barcodes"), ("bad.csv", 3, "parts")]
        assert "part NOPE is neither in this file nor in the catalog" in errors[2]["message_en"]
        json_reply = await client.post(url, content=b'[{"sku": "A", "weight_g": -1}]', params={"format": "json"},
                                       headers=gw.auth)
        assert json_reply.json()["errors"][0]["row"] == 0 and json_reply.json()["errors"][0]["column"] == "weight_g"
        assert (await client.post(url, content=CSV, params={"format": "xml"}, headers=gw.auth)).status_code == 400
        assert (await client.post("/api/v1/tenants/bad%20name/catalog", content=CSV,
                                  headers=gw.auth)).status_code == 400
        assert len(load_catalog(gw.store, "t1")) == 0 and not list(gw.store.iter_audit("t1"))


async def test_erp_updates_are_signed_deduplicated_and_absolute(tmp_path):
    async with catalog_gateway(settings_in(tmp_path)) as gw, httpx.AsyncClient(base_url=gw.base) as client:
        await client.post("/api/v1/tenants/t1/catalog", content=CSV, headers=gw.auth)
        url = "/webhooks/erp/t1/catalog"
        product = {"event_id": "cat-1", "type": "product",
                   "products": [{"sku": "A2", "name": "新杯", "barcodes": [EAN13]}]}  # A1's barcode moves to A2
        body, headers = erp_body(**product)
        forged = {**headers, "X-Gateway-Signature": "sha256=" + "0" * 64}
        refused = await client.post(url, content=body, headers=forged)
        assert refused.status_code == 401 and refused.json()["ok"] is False
        other_tenant = await client.post("/webhooks/erp/t2/catalog", content=body, headers=headers)
        assert other_tenant.status_code == 401  # signed with t1's secret
        assert (await client.post("/webhooks/erp/nobody/catalog", content=body, headers=headers)).status_code == 401
        assert load_catalog(gw.store, "t1").product("A2") is None

        reply = await client.post(url, content=body, headers=headers)
        assert reply.status_code == 200
        assert reply.json()["results"] == [{"event_id": "cat-1", "outcome": "applied", "products": 2, "stock": 0,
                                            "stale": []}]
        catalog = load_catalog(gw.store, "t1")
        assert catalog.by_barcode(EAN13).sku == "A2" and catalog.product("A1").barcodes == ("A1-INT",)
        audits = len(list(gw.store.iter_audit("t1")))
        retry = await client.post(url, content=body, headers=headers)
        assert retry.status_code == 200 and retry.json()["results"] == [{"event_id": "cat-1", "outcome": "duplicate"}]
        assert len(list(gw.store.iter_audit("t1"))) == audits  # not re-applied

        counted_ms = time.time_ns() // 1_000_000 + 5_000  # the ERP counted after the file was imported
        stock = {"event_id": "st-1", "type": "stock", "occurred_at": counted_ms,
                 "stock": [{"sku": "GIFT-BAG", "quantity": 40}]}
        older = {"event_id": "st-0", "type": "stock",  # delivered late: an older count
                 "stock": [{"sku": "GIFT-BAG", "quantity": 99, "updated_at": counted_ms - 3_600_000}]}
        body, headers = signed(orjson.dumps({"events": [stock, older, stock]}))
        batch = (await client.post(url, content=body, headers=headers)).json()
        assert [r["outcome"] for r in batch["results"]] == ["applied", "applied", "duplicate"]
        assert batch["results"][1]["stale"] == ["GIFT-BAG"]
        level = load_stock(gw.store, "t1")["GIFT-BAG"]
        assert (level.quantity, level.source, level.updated_at_ms) == (40, "erp", counted_ms)
        listed = (await client.get("/api/v1/tenants/t1/stock", headers=gw.auth)).json()["stock"][0]
        assert listed["age_s"] == 0  # counted "in the future" by a fast ERP clock: never a negative age

        body, headers = erp_body(event_id="bad-1", type="product",
                                 products=[{"sku": "K9", "parts": [{"sku": "NOPE", "quantity": 1}]}])
        invalid = await client.post(url, content=body, headers=headers)
        assert invalid.status_code == 422
        assert invalid.json()["errors"][0]["column"] == "products[0].parts"
        assert gw.store.get_record("t1", "catalog_event", "bad-1") is None  # a fixed retry will be applied
        good = {"event_id": "cat-2", "type": "product", "products": [{"sku": "A3"}]}
        body, headers = signed(orjson.dumps([good, {"event_id": "bad-2", "type": "stock", "stock": [{"sku": "A3"}]}]))
        all_or_nothing = await client.post(url, content=body, headers=headers)  # a bare array is a batch too
        assert all_or_nothing.status_code == 422
        assert [(e["file"], e["column"]) for e in all_or_nothing.json()["errors"]] == [
            ("events[1] event bad-2", "stock[0].quantity")]
        assert load_catalog(gw.store, "t1").product("A3") is None
        assert gw.store.get_record("t1", "catalog_event", "cat-2") is None
        body, headers = signed(b"{not json")
        assert (await client.post(url, content=body, headers=headers)).status_code == 400
        assert gw.store.verify_audit_chain("t1").ok
