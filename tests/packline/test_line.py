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

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import trio

from devices.simulators.nvr import NvrSimulator
from devices.simulators.printer import PrinterSimulator
from devices.simulators.scanner import TcpScannerServer, frame
from gateway._daemon import serve_gateway
from gateway._settings import load_settings
from tests._support import erp_event, signed, write_config

ITEM = "4006381333931"      # SKU A1
GIFT_BOX = "9780306406157"  # SKU GIFTBOX-1
CATALOG = (
    "sku,name,kind,barcodes,weight_g,parts,serialised,stock\n"
    f"A1,面霜 Cream,item,{ITEM},200,,,\n"
    f"GIFTBOX-1,礼盒 Gift box,gift_box,{GIFT_BOX},50,,,20\n"
)


def line_config(scanner_port: int, printer_port: int, nvr: NvrSimulator, extra: str = "") -> str:
    return f"""
[packline]
tenant = "t1"
{extra}

[nvrs.main]
url = "{nvr.url}"
username = "{nvr.auth.username}"
password = "{nvr.auth.password}"
timeout_s = 2.0

[stations.A1]
nvr = "main"
nvr_channel = 1

[[stations.A1.scanners]]
kind = "tcp_client"
host = "127.0.0.1"
port = {scanner_port}
name = "fixed-mount-1"

[stations.A1.printer]
host = "127.0.0.1"
port = {printer_port}
timeout_s = 2.0
"""


class Line:
    """The running gateway as a test sees it: post orders, scan, read what the station shows."""

    def __init__(self, services: Any, client: httpx.AsyncClient, scanner: TcpScannerServer) -> None:
        self.services = services
        self.client = client
        self.scanner = scanner
        self.auth = {"Authorization": f"Bearer {services.api_token}"}

    async def post(self, *events: dict[str, Any]) -> None:
        body, headers = signed(list(events))
        reply = await self.client.post("/webhooks/erp/t1", content=body, headers=headers)
        assert reply.status_code == 200, reply.text

    async def catalog(self, text: str) -> None:
        reply = await self.client.post("/api/v1/tenants/t1/catalog?format=csv", content=text.encode(),
                                       headers=self.auth)
        assert reply.status_code == 200, reply.text

    def view(self) -> dict[str, Any]:
        return self.services.display.current("A1") or {}

    async def scan(self, code: str, expect: str | None = None) -> dict[str, Any]:
        seq = self.view().get("seq", 0)
        await self.scanner.send(frame(code, aim="]E0" if code.isdigit() and len(code) == 13 else ""))
        with trio.fail_after(10):
            while True:
                view = self.view()
                if view.get("seq", 0) > seq and view.get("last") and view["last"].get("code") in (code, None, ""):
                    break
                await trio.sleep(0.01)
        if expect is not None:
            assert view["last"]["verdict"] == expect, view["last"]
        return view

    async def until(self, predicate: Any, limit_s: float = 15) -> Any:
        with trio.fail_after(limit_s):
            while True:
                value = predicate()
                if value:
                    return value
                await trio.sleep(0.02)


def outbox(store: Any) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for _, raw in store.read_outbox(10_000, 1 << 30)]


async def run_line(tmp_path: Any, body: Any, extra: str = "", printer_setup: Any = None) -> PrinterSimulator:
    scanner = TcpScannerServer()
    printer = PrinterSimulator()
    now = datetime.now(UTC)
    with NvrSimulator(clock_offset_s=40.0) as nvr:
        nvr.add_recording(1, now - timedelta(minutes=10), now + timedelta(minutes=10))
        async with trio.open_nursery() as nursery:
            scanner_port = await nursery.start(scanner.serve)
            printer_port = await nursery.start(printer.serve_tcp)
            if printer_setup:
                printer_setup(printer)
            settings = load_settings(write_config(tmp_path, line_config(scanner_port, printer_port, nvr, extra)))
            shutdown = trio.Event()
            async with trio.open_nursery() as gateway:
                services = await gateway.start(serve_gateway, settings, shutdown)
                async with httpx.AsyncClient(base_url=services.bound[0], timeout=10) as client:
                    await scanner.wait_connected()
                    line = Line(services, client, scanner)
                    await line.catalog(CATALOG)
                    await body(line, printer)
                shutdown.set()
            nursery.cancel_scope.cancel()  # the simulators
    return printer


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
