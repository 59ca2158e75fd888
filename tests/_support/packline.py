"""A pack line over real parts for tests: a TCP scanner, a ZPL printer and an ISAPI NVR
(``devices.simulators``) and the gateway in-process with a real store (see ``run_line``)."""

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
from tests._support import signed, write_config

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


async def run_line(tmp_path: Any, body: Any, extra: str = "", printer_setup: Any = None,
                   catalog: str | None = None, rules_dir: Any = None, tail: str = "") -> PrinterSimulator:
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
            config = write_config(tmp_path, line_config(scanner_port, printer_port, nvr, extra))
            if tail:  # more tables at the end of the file, e.g. [stations.A1.scale]
                config.write_text(config.read_text(encoding="utf-8") + tail, encoding="utf-8")
            if rules_dir is not None:
                text = config.read_text(encoding="utf-8")
                config.write_text(text.replace("rules_dir = '", f"rules_dir = '{rules_dir}'  # ", 1), encoding="utf-8")
            settings = load_settings(config)
            shutdown = trio.Event()
            async with trio.open_nursery() as gateway:
                services = await gateway.start(serve_gateway, settings, shutdown)
                async with httpx.AsyncClient(base_url=services.bound[0], timeout=10) as client:
                    await scanner.wait_connected()
                    line = Line(services, client, scanner)
                    await line.catalog(CATALOG if catalog is None else catalog)
                    await body(line, printer)
                shutdown.set()
            nursery.cancel_scope.cancel()  # the simulators
    return printer
