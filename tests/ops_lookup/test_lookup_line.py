"""The after-sales lookup and the packing proof over a real pack line (``tests._support.packline``).

One buyer (phone 138 0013 8000) has: a Douyin order packed at station A1 on camera (main
item and trial kit in parcel 1, a gift box that ships later, a pre-sale item of batch 2) and
then shipped with waybill SF123; a Youzan order not packed yet; and a Tmall order first seen
40 days ago (committed through the real processing step with the clock 40 days back). Another
buyer has an order too. The lookup by phone, order id and waybill lists the two recent orders
only, each component with its status and the clip second of its scan; ``礼盒`` highlights the
gift box; the proof carries the hash ``Store.iter_audit`` shows; the routes answer on a real
server on 127.0.0.1.
"""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import trio
from PIL import Image
from starlette.applications import Starlette

from devices.simulators.printer import PrinterSimulator
from gateway._ops_lookup import find_buyer, load_snapshot, proof_data, proof_html, proof_png
from gateway._pipeline import plan_step
from gateway._rules import load_rules, normalise_batch
from gateway._server import build_app, serve_http1
from gateway._server.http import bearer_guard
from gateway._server.lookup_api import lookup_routes
from gateway._store import StoreSettings, open_store
from tests._support import RULES, erp_event
from tests._support.packline import GIFT_BOX, ITEM, Line, run_line

TRIAL = "5901234123457"
PRESALE = "4012345678901"
CATALOG = (
    "sku,name,kind,barcodes,weight_g,parts,serialised,stock\n"
    f"A1,面霜 Cream,item,{ITEM},200,,,\n"
    f"GIFTBOX-1,礼盒 Gift box,gift_box,{GIFT_BOX},50,,,20\n"
    f"TRIAL-1,试用装 Trial kit,trial,{TRIAL},20,,,\n"
    f"PRE-1,预售精华 Pre-sale serum,item,{PRESALE},80,,,\n"
)
PHONE = "138 0013 8000"
DAY_MS = 86_400_000
MAIN = "douyin|DY00000001"
SECOND = "youzan|YZ00000002"
OLD = "tmall|TM00000003"
#: The Douyin order's lines, as the ERP sends them with every status.
MAIN_ORDER: dict[str, Any] = {
    "lines": [{"sku": "A1", "qty": 1}, {"sku": "TRIAL-1", "qty": 1}, {"sku": "PRE-1", "qty": 1, "parcel": 2}],
    "gift_box": {"sku": "GIFTBOX-1", "ship": "later"},
}


def seed_old_order(tmp_path: Any, now_ms: int) -> None:
    """A Tmall order of the same buyer first seen 40 days ago, through the real processing step."""
    event = erp_event(900, "PAID", "TM00000003", platform="tmall", buyer={"phone": "+86 138-0013-8000"})
    erp = load_rules(RULES).get("erp")
    assert erp is not None
    then = now_ms - 40 * DAY_MS
    with open_store(StoreSettings(path=tmp_path / "data" / "rocksdb")) as store:
        events = normalise_batch(erp, "t1", [event], then)
        plan = plan_step(events, store.get_order, store.seen_fingerprint, store.order_for_waybill,
                         store.orders_for_buyer, then)
        store.commit(plan.write)


async def pack_and_ship(line: Line) -> None:
    await line.post(erp_event(1, "READY_TO_PACK", "DY00000001", **MAIN_ORDER))
    await line.scan("OP-0007", "SIGNED_IN")
    view = await line.scan("DY00000001", "OPENED")
    parcels = sorted((c["sku"], c["parcel"]) for c in view["session"]["components"])
    assert parcels == [("A1", 1), ("GIFTBOX-1", 3), ("PRE-1", 2), ("TRIAL-1", 1)]
    await line.scan(ITEM, "OK")
    await trio.sleep(1.1)  # the two scans fall on different seconds of the clip
    view = await line.scan(TRIAL)
    assert view["last"]["verdict"] == "CLOSED"
    store = line.services.store
    await line.until(lambda: list(store.iter_records("evidence", "t1")))
    await line.until(lambda: any(j.get("state") == "printed" for _, _, j in store.iter_records("print", "t1")))
    await line.post(erp_event(2, "SHIPPED", "DY00000001", waybill="SF123", carrier="SF", **MAIN_ORDER))
    await line.until(lambda: (store.get_record("t1", "parcel", MAIN) or {}).get("waybill") == "SF123")
    await line.post(erp_event(3, "PAID", "YZ00000002", platform="youzan", amount=39.0))
    await line.post(erp_event(4, "PAID", "DY00000009", buyer={"phone": "139 0000 1111"}))


def by_id(found: Any) -> dict[str, Any]:
    return {order.order_id: order for order in found.orders}


def check_lookup(line: Line) -> None:
    store = line.services.store
    found = find_buyer(store, "t1", phone=PHONE, keyword="礼盒")
    assert [o.order_id for o in found.orders] == [SECOND, MAIN]  # newest first; the 40-day-old one is not there
    assert found.query == "138****8000" and found.matched_by == "phone"
    assert {o.channel for o in found.orders} == {"douyin", "youzan"}
    main = by_id(found)[MAIN]
    assert main.status == "SHIPPED" and main.waybills == ("SF123",) and main.amounts == {"amount": 129.0}
    parts = {c.sku: c for c in main.components}
    assert parts["TRIAL-1"].state == "shipped" and parts["TRIAL-1"].text_zh == "试用装 Trial kit 已随 SF123 发出"
    assert parts["TRIAL-1"].text_en == "试用装 Trial kit shipped with SF123"
    assert parts["A1"].state == "shipped"
    assert parts["GIFTBOX-1"].state == "pending" and "待发" in parts["GIFTBOX-1"].text_zh
    assert parts["PRE-1"].state == "pending" and "预售第 2 批" in parts["PRE-1"].text_zh
    assert "pre-sale batch 2" in parts["PRE-1"].text_en
    assert [c.sku for c in main.components if c.highlight] == ["GIFTBOX-1"] and found.highlighted == 1
    for sku in ("A1", "TRIAL-1"):
        scan, = parts[sku].scans
        assert scan.station == "A1" and scan.operator == "OP-0007"
        assert scan.offset_s is not None and scan.offset_s >= 4.9  # the clip starts 5 s before the session
        assert scan.playback_uri and scan.clip_at_uri and "starttime=" in scan.clip_at_uri
        assert parts[sku].snapshot and parts[sku].snapshot["sha256"]
    assert parts["TRIAL-1"].scans[0].offset_s > parts["A1"].scans[0].offset_s + 1
    assert parts["A1"].scans[0].clip_at_uri != parts["TRIAL-1"].scans[0].clip_at_uri
    session, = main.sessions
    assert session.evidence == "found" and session.verdict == "CLOSED" and session.clip["complete"] is True
    second = by_id(found)[SECOND]
    assert [(c.sku, c.state, c.text_zh) for c in second.components] == [("A1", "pending", "面霜 Cream 待打包")]
    assert second.sessions == () and second.components[0].scans == ()
    for kwargs in ({"order_id": MAIN}, {"order_id": "DY00000001"}, {"waybill": "SF123"}, {"order_id": SECOND}):
        again = find_buyer(store, "t1", **kwargs)  # type: ignore[arg-type]
        assert [o.order_id for o in again.orders] == [SECOND, MAIN], kwargs
    old = find_buyer(store, "t1", order_id=OLD)
    assert OLD in by_id(old) and any("30" in note for note in old.notes_en)  # asked for by id: shown, flagged
    shown = str(found.to_dict())
    assert "DY00000009" not in shown and "0000 1111" not in shown  # the other buyer's order is not there
    assert "13800138000" not in str(found.to_dict()) and "138 0013 8000" not in str(found.to_dict())
    none = find_buyer(store, "t1", phone="138 0000 0000")
    assert none.orders == () and none.notes_en


def check_proof(line: Line, out: Any) -> None:
    store = line.services.store
    proof = proof_data(store, "t1", MAIN)
    assert proof is not None and proof.session is not None
    audit = list(store.iter_audit("t1", MAIN))
    assert proof.stamp is not None and proof.stamp.hash == audit[-1]["hash"] and proof.stamp.seq == audit[-1]["seq"]
    data = proof.to_dict()
    assert data["station"] == "A1" and data["operator"] == "OP-0007" and data["clip"]["segments"]
    assert data["snapshot"]["sha256"] and data["stamp"]["hash"] == audit[-1]["hash"]
    snapshot = load_snapshot(proof)
    assert snapshot is not None and snapshot[:2] == b"\xff\xd8"  # the JPEG the NVR gave at close
    page = proof_html(proof, snapshot=snapshot)
    assert 'lang="zh-CN"' in page and "打包凭证" in page and "已随 SF123 发出" in page
    assert audit[-1]["hash"] in page and "data:image/jpeg;base64," in page
    english = proof_html(proof, lang="en", snapshot=snapshot)
    assert "Packing proof" in english and "shipped with SF123" in english and "打包凭证" not in english
    png = proof_png(proof, snapshot=snapshot)
    (out / "proof-zh.png").write_bytes(png)  # kept for a look: pytest --basetemp=DIR
    (out / "proof-en.png").write_bytes(proof_png(proof, lang="en", snapshot=snapshot))
    (out / "proof-zh.html").write_text(page, encoding="utf-8")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width == 1080 and 400 < image.height < 4000


async def check_routes(line: Line) -> None:
    services = line.services
    protected = bearer_guard(services.api_token)
    # Registered before the app's own routes, as build_app must (see lookup_api's docstring).
    app = Starlette(routes=[*lookup_routes(services, protected), *build_app(services).routes])
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(lambda task_status: serve_http1(
            app, [("127.0.0.1", 0)], shutdown_trigger=stop.wait, task_status=task_status))
        auth = {"Authorization": f"Bearer {services.api_token}"}
        base = f"{bound[0]}/api/v1/tenants/t1"
        async with httpx.AsyncClient(timeout=10) as client:
            reply = await client.get(f"{base}/buyers/lookup", params={"phone": PHONE, "keyword": "gift box"},
                                     headers=auth)
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert [o["order_id"] for o in body["orders"]] == [SECOND, MAIN] and body["highlighted"] == 1
            for params in ({"waybill": "SF123"}, {"order_id": MAIN}, {"nick": "nobody"}, {}, {"phone": "12"},
                           {"phone": PHONE, "waybill": "SF123"}):
                reply = await client.get(f"{base}/buyers/lookup", params=params, headers=auth)
                expected = 200 if params in ({"waybill": "SF123"}, {"order_id": MAIN}, {"nick": "nobody"}) else 400
                assert reply.status_code == expected, (params, reply.text)
                if params == {"nick": "nobody"}:  # nothing found: no orders, and the notes say why
                    assert reply.json()["orders"] == [] and reply.json()["notes_en"]
                if expected != 200:
                    assert reply.json()["code"] and reply.json()["message_zh"]
            assert (await client.get(f"{base}/buyers/lookup", params={"phone": PHONE})).status_code == 401
            path = f"{base}/orders/{MAIN}"
            reply = await client.get(f"{path}/proof", headers=auth)
            assert reply.status_code == 200, reply.text
            assert reply.json()["stamp"]["hash"] == list(services.store.iter_audit("t1", MAIN))[-1]["hash"]
            page = await client.get(f"{path}/proof.html", headers=auth)
            assert page.status_code == 200 and "打包凭证" in page.text and page.headers["content-language"] == "zh-CN"
            page = await client.get(f"{path}/proof.html", params={"lang": "en"}, headers=auth)
            assert "Packing proof" in page.text and "打包凭证" not in page.text
            png = await client.get(f"{path}/proof.png", headers=auth)
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
            missing = await client.get(f"{base}/orders/douyin|NOPE/proof", headers=auth)
            assert missing.status_code == 404 and missing.json()["code"] == "not_found"
            order = await client.get(f"{base}/orders/{MAIN}", headers=auth)  # the order route still answers
            assert order.status_code == 200
        stop.set()


async def test_lookup_and_proof_over_a_real_pack_line(tmp_path):
    seed_old_order(tmp_path, time.time_ns() // 1_000_000)

    async def body(line: Line, printer: PrinterSimulator) -> None:
        await pack_and_ship(line)
        await trio.to_thread.run_sync(check_lookup, line)
        await trio.to_thread.run_sync(check_proof, line, tmp_path)
        await check_routes(line)

    await run_line(tmp_path, body, catalog=CATALOG)
