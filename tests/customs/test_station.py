"""End to end on real parts: the daemon with a real store in tmp_path, a TCP scanner, a ZPL
printer, an NVR simulator and a real upstream ERP on 127.0.0.1.

A cross-border order whose collagen product's supplier has not declared animal extracts is on
the pre-declaration board (naming supplier SUP-A's record) and the anomaly board, and is held
at the station (``DECLARATION_INCOMPLETE``); a CSV import of the supplier's declaration
completes it: the declaration is forwarded upstream as its own ``declaration`` event, the
anomaly clears and the next scan of the order packs it normally.
"""

from __future__ import annotations

import trio

from gateway._ops import BoardSettings, record_anomalies
from tests._support import erp_event
from tests._support.packline import ITEM, Line, run_line
from tests._support.upstream import Upstream, upstream_config
from tests.customs.support import PRODUCTS_CSV, SUPPLIERS_CSV, seed_copy

ORDER = "douyin|DY00000001"


async def _post_file(line: Line, kind: str, text: str, name: str) -> dict:
    reply = await line.client.post(f"/api/v1/tenants/t1/customs/{kind}", params={"filename": name},
                                   content=text.encode(), headers=line.auth)
    assert reply.status_code in (200, 422), reply.text
    return {"status": reply.status_code, **reply.json()}


def _anomalies(line: Line) -> list[str]:
    return [a.anomaly_id for a in record_anomalies(line.services.store, "t1", BoardSettings(), 0)
            if a.kind == "declaration_incomplete"]


async def test_an_incomplete_cross_border_order_is_held_and_released_by_a_csv_import(tmp_path):
    seed_copy(tmp_path / "customs")
    upstream = Upstream().start()
    try:
        async def body(line: Line, printer) -> None:
            assert (await _post_file(line, "suppliers", SUPPLIERS_CSV, "suppliers.csv"))["rows"] == 1
            assert (await _post_file(line, "products", PRODUCTS_CSV, "products.csv"))["rows"] == 1
            await line.post(erp_event(1, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}], warehouse="BONDED-NB"))
            await line.post(erp_event(2, "READY_TO_PACK", order="DY00000002", lines=[{"sku": "A1", "qty": 1}]))

            # The page, its script, the attributes and one order's declaration.
            page = await line.client.get("/customs")
            assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
            assert '<script src="/customs/_static/customs.js">' in page.text and 'lang="zh-CN"' in page.text
            assert (await line.client.get("/customs/_static/customs.js")).status_code == 200
            assert (await line.client.get("/customs/_static/other.js")).status_code == 404
            reply = await line.client.get("/api/v1/tenants/t1/customs/attributes", headers=line.auth)
            assert len(reply.json()["attributes"]) == 12
            assert reply.json()["cross_border"]["codes"] == {"biz": ["21", "22", "23", "102"]}
            reply = await line.client.get(f"/api/v1/tenants/t1/customs/orders/{ORDER}", headers=line.auth)
            assert reply.json()["cross_border"] is True and reply.json()["complete"] is False
            reply = await line.client.get("/api/v1/tenants/t1/customs/orders/douyin|DY00000002", headers=line.auth)
            assert reply.json()["cross_border"] is False

            # The board names the order, the attribute and the supplier record that fills it.
            reply = await line.client.get("/api/v1/tenants/t1/customs/board", headers=line.auth)
            [entry] = reply.json()["orders"]
            assert entry["order_id"] == ORDER and entry["cross_border_because"] == "warehouse:BONDED-NB"
            [need] = entry["missing"]
            assert need["attribute"] == "contains_animal_extract"
            assert need["fill"] == {"target": "supplier", "id": "SUP-A", "field": "contains_animal_extract",
                                    "rule": "collagen-animal-extract"}
            fill = (await line.client.get("/api/v1/tenants/t1/customs/board", params={"format": "csv"},
                                          headers=line.auth)).content.decode("utf-8-sig")
            assert "supplier,SUP-A,,contains_animal_extract,," in fill
            await line.until(lambda: _anomalies(line) == [f"declaration_incomplete:{ORDER}"])

            # Held at the station; a supervisor cannot wave it through.
            await line.scan("OP-0007", "SIGNED_IN")
            view = await line.scan("DY00000001", "DECLARATION_INCOMPLETE")
            assert view["session"]["state"] == "held"
            assert "SUP-A" in view["last"]["message_zh"]
            await line.scan(ITEM, "DECLARATION_INCOMPLETE")
            await line.scan("DY00000001", "DECLARATION_INCOMPLETE")

            # A bad fill file is refused with row and column; nothing changes.
            bad = await _post_file(line, "values", "target,id,sku,attribute,value\n"
                                   "supplier,SUP-A,,contains_animal_extract,maybe\n", "fill.csv")
            assert bad["status"] == 422
            assert [(e["row"], e["column"]) for e in bad["errors"]] == [(2, "value")]

            # The supplier's declaration, imported from the board's fill file, completes it.
            done = await _post_file(line, "values", fill.replace(",contains_animal_extract,,",
                                                                 ",contains_animal_extract,是,"), "fill.csv")
            assert done["status"] == 200 and done["completed"] == [ORDER]
            await line.until(lambda: any(e["type"] == "declaration" for e in upstream.events()))
            [event] = [e for e in upstream.events() if e["type"] == "declaration"]
            assert event["order_id"] == ORDER and event["status"] == "READY_TO_PACK"
            [declared] = event["detail"]["declaration"]["lines"]
            assert declared["values"]["contains_animal_extract"] is True
            assert declared["sources"]["contains_animal_extract"].startswith("supplier:SUP-A")
            assert _anomalies(line) == []

            # Released: the next scan of the order opens it, and it packs normally.
            view = await line.scan("DY00000001", "OPENED")
            assert view["session"]["state"] == "open"
            await line.scan(ITEM, "CLOSED")  # complete: closed at once, the label prints
            # The domestic order needs no declaration.
            await line.scan("DY00000002", "OPENED")
            await trio.sleep(0.2)
            assert len([e for e in upstream.events() if e["type"] == "declaration"]) == 1  # forwarded once

        await run_line(tmp_path, body, tail="\n" + upstream_config(upstream))
    finally:
        upstream.stop()
