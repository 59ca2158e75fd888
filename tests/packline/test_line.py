"""The pack line end to end over real parts: a TCP scanner, a ZPL printer and an ISAPI NVR
(the simulators of ``devices.simulators``), the gateway in-process with a real store, ERP
orders arriving as signed webhooks.

The seed's checks at a station: the gift box missing at close is caught, and the label
prints only once the parcel is complete; a refund arriving mid-pack stops the parcel at
once (no scan needed) and sends ``cancel_shipment``; every verdict is durable, audited with
the operator and forwarded; the evidence of a packed order names the clip and the second
of each scan.
"""

from __future__ import annotations

import orjson

from devices.simulators.printer import PrinterSimulator
from tests._support import erp_event
from tests._support.packline import GIFT_BOX, ITEM, Line, outbox, run_line


async def test_a_missing_gift_box_is_caught_at_close_and_the_label_prints_only_when_complete(tmp_path):
    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(1, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 2}], gift_box="GIFTBOX-1"))
        await line.scan(ITEM, "NOT_SIGNED_IN")
        await line.scan("OP-0007", "SIGNED_IN")
        view = await line.scan("DY00000001", "OPENED")
        kinds = sorted((c["sku"], c["kind"], c["quantity"]) for c in view["session"]["components"])
        assert kinds == [("A1", "item", 2), ("GIFTBOX-1", "gift_box", 1)]
        assert all(c["order_id"] == "douyin|DY00000001" for c in view["session"]["components"])
        await line.scan(ITEM, "OK")
        await line.scan(ITEM, "OK")
        await line.scan(ITEM, "EXTRA")
        view = await line.scan("#CLOSE", "MISSING")
        assert "GIFTBOX-1" in orjson.dumps(view["last"]).decode()
        assert printer.printed() == []  # no label for an incomplete parcel
        view = await line.scan(GIFT_BOX)
        assert view["last"]["verdict"] == "CLOSED"  # auto close after the last expected scan
        labels = await line.until(lambda: printer.printed())
        assert "DY00000001" in labels[0].text if hasattr(labels[0], "text") else True
        store = line.services.store
        order = store.get_order("t1", "douyin|DY00000001")
        assert order.status.value == "PACKED"
        audit = [a for a in store.iter_audit("t1", "douyin|DY00000001") if "verdict" in a.get("detail", {})]
        assert audit and all(a["actor"] == "operator:OP-0007@station:A1" for a in audit)
        assert [a["detail"]["verdict"] for a in audit] == ["OPENED", "OK", "OK", "EXTRA", "MISSING", "OK", "CLOSED"]
        entries = [e for e in outbox(store) if e["order_id"] == "douyin|DY00000001" and e["source"] == "station"]
        assert [e["type"] for e in entries][0] == "pack_open" and entries[-1]["type"] == "packed"
        assert any(e["type"] == "pack_exception" and e["detail"]["verdict"] == "MISSING" for e in entries)
        evidence = await line.until(lambda: list(store.iter_records("evidence", "t1")))
        (_, record_id, reference), = evidence
        assert record_id.startswith("douyin|DY00000001|A1-")
        assert reference["clip"]["complete"] is True
        offsets = [s["offset_s"] for s in reference["scans"] if s.get("code") == ITEM]
        assert offsets and all(o >= 4.9 for o in offsets)  # the clip starts 5 s before the session opened
        assert reference["snapshot"]["sha256"]
        decisions = {a["decision"] for a in store.iter_audit("t1", "douyin|DY00000001")}
        assert {"label_printed", "evidence"} <= decisions
        stock = store.get_record("t1", "stock", "GIFTBOX-1")
        assert stock["quantity"] == 19  # the gift box left the shelf
        metrics = (await line.client.get("/metrics", headers=line.auth)).text
        # verdicts shown: the gift box's scan closed the parcel, so it showed CLOSED, not OK
        for verdict, count in (("OK", 2), ("EXTRA", 1), ("MISSING", 1), ("CLOSED", 1), ("NOT_SIGNED_IN", 1)):
            assert f'gateway_verdicts_total{{station="A1",verdict="{verdict}"}} {count}.0' in metrics, verdict
        assert 'gateway_device_up{device="fixed-mount-1",kind="scanner",station="A1"} 1.0' in metrics

    await run_line(tmp_path, body)


async def test_a_refund_mid_pack_stops_the_parcel_at_once_and_sends_cancel_shipment(tmp_path):
    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(2, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 2}]))
        await line.scan("OP-0007", "SIGNED_IN")
        await line.scan("DY00000002", "OPENED")
        view = await line.scan(ITEM, "OK")
        seq = view["seq"]
        await line.post(erp_event(3, "REFUND_INITIATED", order="DY00000002"))
        view = await line.until(lambda: line.view() if line.view()["seq"] > seq else None)
        assert view["last"]["verdict"] == "STOP_REFUND" and view["last"]["alarm"] is True
        assert view["session"]["state"] == "stopped"
        await line.scan(ITEM, "STOP_REFUND")
        await line.scan("#CLOSE", "STOP_REFUND")
        entries = outbox(line.services.store)
        cancel = [e for e in entries if e["type"] == "cancel_shipment"]
        assert len(cancel) == 1 and cancel[0]["order_id"] == "douyin|DY00000002"
        assert cancel[0]["detail"]["instruction"] == "cancel_shipment"
        assert printer.printed() == []
        alerts = list(line.services.store.iter_records("alert", "t1"))
        assert any(a["kind"] == "refund_stop" for _, _, a in alerts) or any(
            r["kind"] == "refund_stop" for _, _, r in line.services.store.iter_records("alert_sent", "t1"))

    await run_line(tmp_path, body)
