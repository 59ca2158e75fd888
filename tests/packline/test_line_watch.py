"""What the pack line does after commits and on timers (``gateway._packline.line_watch``), over
real parts: the waybill alert after the timeout, gift stock checked before packing (a
shortfall holds the parcel before anyone packs it), the 299 gift rule unlocking only over
its threshold, and the intercept watch list for a parcel labelled before its refund."""

from __future__ import annotations

from typing import Any

import trio

from devices.simulators.printer import PrinterSimulator
from tests._support import RULES, copy_tree, erp_event
from tests._support.packline import GIFT_BOX, ITEM, Line, run_line

GIFT_RULE = """
[gifts]
version = 1
description = "test campaign"

[[gift]]
name = "box-299"
tenant = "t1"
gift_sku = "GIFTBOX-1"
scope = "group"
min_total = 299.0
"""


def alerts_of(line: Line, kind: str) -> list[dict[str, Any]]:
    store = line.services.store
    found = [a for _, _, a in store.iter_records("alert", "t1") if a["kind"] == kind]
    found += [a for _, _, a in store.iter_records("alert_sent", "t1") if a.get("kind") == kind]
    return found


async def test_a_packed_parcel_without_a_waybill_raises_one_alert_after_the_timeout(tmp_path):
    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(50, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}]),
                        erp_event(51, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}]))
        await line.scan("OP-0001", "SIGNED_IN")
        await line.scan("DY00000050", "OPENED")
        await line.scan(ITEM, "CLOSED")
        await line.scan("DY00000051", "OPENED")
        await line.scan(ITEM, "CLOSED")
        await line.post(erp_event(52, "SHIPPED", order="DY00000051", waybill="SF5100000001"))  # in time
        alert = (await line.until(lambda: alerts_of(line, "waybill_timeout"), limit_s=10))[0]
        assert alert["order_ids"] == ["douyin|DY00000050"]
        await trio.sleep(1.0)  # checked again and again: still one alert, none for the parcel with a waybill
        assert len(alerts_of(line, "waybill_timeout")) == 1
        store = line.services.store
        parcel = store.get_record("t1", "parcel", "douyin|DY00000051")
        assert parcel["waybill"] == "SF5100000001"
        # The after-sales view reads each component's status from the session: shipped, with its waybill.
        shipped = await line.until(
            lambda: (store.get_record("t1", "session", parcel["session_id"]) or {}).get("shipped_at_ms"))
        assert shipped
        session = store.get_record("t1", "session", parcel["session_id"])
        assert [(c["sku"], c["status"], c["waybill"]) for c in session["bill"]["components"]] == [
            ("A1", "shipped", "SF5100000001")]
        unshipped = store.get_record("t1", "session", store.get_record("t1", "parcel", "douyin|DY00000050")["session_id"])
        assert [(c["status"], c["waybill"]) for c in unshipped["bill"]["components"]] == [("packed", "")]

    await run_line(tmp_path, body, extra="waybill_timeout_s = 1.5")


async def test_gift_stock_short_holds_the_parcel_before_anyone_packs_it(tmp_path):
    catalog = ("sku,name,kind,barcodes,weight_g,parts,serialised,stock\n"
               f"A1,面霜 Cream,item,{ITEM},200,,,\n"
               f"GIFTBOX-1,礼盒 Gift box,gift_box,{GIFT_BOX},50,,,0\n")

    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(60, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}], gift_box="GIFTBOX-1"))
        store = line.services.store
        hold = await line.until(lambda: store.get_record("t1", "hold", "douyin|DY00000060"))
        assert hold["reason"] == "STOP_NO_STOCK" and hold["shortfalls"] == {"GIFTBOX-1": 1}
        assert alerts_of(line, "gift_stock_shortfall")
        await line.scan("OP-0001", "SIGNED_IN")
        view = await line.scan("DY00000060", "STOP_NO_STOCK")
        assert view["last"]["alarm"] is True
        await line.scan(ITEM, "STOP_NO_STOCK")
        assert printer.printed() == []

    await run_line(tmp_path, body, catalog=catalog)


async def test_the_299_gift_box_unlocks_only_at_299_and_is_tied_to_its_order(tmp_path):
    rules = copy_tree(RULES, tmp_path / "rules")
    (rules / "gifts").mkdir(exist_ok=True)
    for old in (rules / "gifts").glob("*.toml"):
        old.unlink()
    (rules / "gifts" / "campaign.toml").write_text(GIFT_RULE, encoding="utf-8")

    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(70, "READY_TO_PACK", amount=298.99, lines=[{"sku": "A1", "qty": 1}]),
                        erp_event(71, "READY_TO_PACK", amount=299.0, lines=[{"sku": "A1", "qty": 1}]))
        await line.scan("OP-0001", "SIGNED_IN")
        below = await line.scan("DY00000070", "OPENED")
        assert [c["sku"] for c in below["session"]["components"]] == ["A1"]
        await line.scan(ITEM, "CLOSED")
        at = await line.scan("DY00000071", "OPENED")
        gift = [c for c in at["session"]["components"] if c["sku"] == "GIFTBOX-1"]
        assert len(gift) == 1 and gift[0]["order_id"] == "douyin|DY00000071" and gift[0]["kind"] == "gift_box"
        await line.scan(ITEM, "OK")
        await line.scan("#CLOSE", "MISSING")
        await line.scan(GIFT_BOX, "CLOSED")

    await run_line(tmp_path, body, rules_dir=rules)


async def test_a_refund_after_the_label_puts_the_parcel_on_the_intercept_watch_list(tmp_path):
    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(80, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}]))
        await line.scan("OP-0001", "SIGNED_IN")
        await line.scan("DY00000080", "OPENED")
        await line.scan(ITEM, "CLOSED")
        await line.until(lambda: printer.printed())
        await line.post(erp_event(81, "REFUND_INITIATED", order="DY00000080"))
        store = line.services.store
        watch = await line.until(lambda: store.get_record("t1", "intercept", "douyin|DY00000080"))
        assert watch["pickup_state"] == "awaiting_pickup"  # packed, not picked up: the last chance to pull it
        assert alerts_of(line, "carrier_intercept")

    await run_line(tmp_path, body)


async def test_a_waybill_reported_for_a_second_order_raises_an_alert(tmp_path):
    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(90, "SHIPPED", waybill="SF9000000001"))
        await line.post(erp_event(91, "SHIPPED", waybill="SF9000000001"))
        alert = (await line.until(lambda: alerts_of(line, "waybill_reused")))[0]
        assert sorted(alert["order_ids"]) == ["douyin|DY00000090", "douyin|DY00000091"]
        assert line.services.store.order_for_waybill("t1", "SF9000000001") == "douyin|DY00000090"

    await run_line(tmp_path, body)
