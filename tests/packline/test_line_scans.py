"""Scans at a station over real parts (``gateway._packline.line_scans``): a merged pack group
packs into one parcel, a printer out of paper at close, a scanner unplugged mid-session,
fuzzed barcodes, and a gateway killed with SIGKILL mid-session that resumes it."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import httpx
import trio

from devices.simulators.printer import PrinterSimulator
from devices.simulators.scanner import TcpScannerServer, frame
from gateway._settings import load_settings
from tests._support import erp_event, signed, write_config
from tests._support.forward_crash import Gateway, free_port
from tests._support.packline import CATALOG, GIFT_BOX, ITEM, Line, line_config, run_line


async def test_a_merged_douyin_and_mini_program_group_packs_into_one_parcel(tmp_path):
    async def body(line: Line, printer: PrinterSimulator) -> None:
        buyer = {"phone": "139 0000 1111"}
        await line.post(erp_event(10, "READY_TO_PACK", buyer=buyer, lines=[{"sku": "A1", "qty": 1}]),
                        erp_event(11, "READY_TO_PACK", platform="youzan", order="YZ11", buyer=buyer,
                                  lines=[{"sku": "A1", "qty": 1}], gift_box="GIFTBOX-1"))
        order = line.services.store.get_order("t1", "douyin|DY00000010")
        assert order.pack_group, "the two orders of one buyer form a pack group"
        await line.scan("OP-0001", "SIGNED_IN")
        view = await line.scan("YZ11", "OPENED")  # either order opens the group's parcel
        session = view["session"]
        assert sorted(session["orders"]) == ["douyin|DY00000010", "youzan|YZ11"]
        owners = sorted((c["order_id"], c["sku"]) for c in session["components"])
        assert owners == [("douyin|DY00000010", "A1"), ("youzan|YZ11", "A1"), ("youzan|YZ11", "GIFTBOX-1")]
        await line.scan(ITEM, "OK")
        await line.scan(ITEM, "OK")
        await line.scan(GIFT_BOX, "CLOSED")
        await line.until(lambda: printer.printed())
        assert len(printer.printed()) == 1  # one parcel, one label
        store = line.services.store
        assert store.get_order("t1", "douyin|DY00000010").status.value == "PACKED"
        assert store.get_order("t1", "youzan|YZ11").status.value == "PACKED"
        await line.scan("DY00000010", "ALREADY_PACKED")  # the duplicate-pack alarm

    await run_line(tmp_path, body)


async def test_a_printer_out_of_paper_keeps_the_label_queued_and_prints_it_when_paper_is_back(tmp_path):
    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(20, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}]))
        printer.paper_out = True
        await line.scan("OP-0001", "SIGNED_IN")
        await line.scan("DY00000020", "OPENED")
        await line.scan(ITEM, "CLOSED")
        view = await line.until(lambda: line.view() if (line.view().get("label") or {}).get("state") == "refused"
                                else None)
        assert "paper" in view["label"]["reason"]
        assert printer.printed() == []
        printer.paper_out = False
        await line.until(lambda: printer.printed(), limit_s=15)
        view = await line.until(lambda: line.view() if line.view()["label"]["state"] == "printed" else None)
        (_, _, job), = line.services.store.iter_records("print", "t1")
        assert job["state"] == "printed" and job["attempts"] >= 1

    await run_line(tmp_path, body)


async def test_a_scanner_unplugged_mid_session_resumes_it_and_fuzz_never_breaks_a_station(tmp_path):
    rnd = random.Random(7)

    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(30, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 2}]))
        await line.scan("OP-0001", "SIGNED_IN")
        await line.scan("DY00000030", "OPENED")
        await line.scan(ITEM, "OK")
        await line.scanner.reset()  # the cable is pulled and plugged back: the driver reconnects
        await line.scanner.wait_connected()
        junk = [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 40))).replace(b"\r", b"") for _ in range(150)]
        junk += [b"]C1" + b"0" * 20, b"]E0" + b"123", b"]Q", b"\x1d\x1d", "订单".encode(), b"]d2" + b"01" + b"9" * 14]
        await line.scanner.send(b"".join(item + b"\r" for item in junk))
        await trio.sleep(0.5)
        view = await line.scan(ITEM, "CLOSED")  # the same session, still answering: its last item
        assert view["session"]["state"] == "closed"
        assert line.services.store.get_order("t1", "douyin|DY00000030").status.value == "PACKED"

    await run_line(tmp_path, body)


async def test_a_gateway_killed_mid_session_resumes_it_after_restart(tmp_path):
    scanner = TcpScannerServer()
    printer = PrinterSimulator()
    port = free_port()

    async def view(client: httpx.AsyncClient) -> dict[str, Any]:
        reply = await client.get(f"http://127.0.0.1:{port}/stations/A1/view")
        return dict(reply.json())

    async def scan(client: httpx.AsyncClient, code: str, expect: str) -> dict[str, Any]:
        seq = (await view(client)).get("seq", 0)
        await scanner.send(frame(code, aim="]E0" if len(code) == 13 and code.isdigit() else ""))
        with trio.fail_after(10):
            while True:
                current = await view(client)
                if current.get("seq", 0) > seq and (current.get("last") or {}).get("code") == code:
                    break
                await trio.sleep(0.02)
        assert current["last"]["verdict"] == expect, current["last"]
        return current

    async with trio.open_nursery() as nursery:
        scanner_port = await nursery.start(scanner.serve)
        printer_port = await nursery.start(printer.serve_tcp)
        from devices.simulators.nvr import NvrSimulator

        with NvrSimulator() as nvr:
            config = write_config(tmp_path, line_config(scanner_port, printer_port, nvr), port=port)
            settings = load_settings(config)
            gateway = Gateway(config, port, settings.data_path)
            with httpx.Client(timeout=5) as sync_client:
                await trio.to_thread.run_sync(gateway.start, sync_client)
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    token = settings.token_path.read_text().strip()
                    reply = await client.post(f"http://127.0.0.1:{port}/api/v1/tenants/t1/catalog?format=csv",
                                              content=CATALOG.encode(), headers={"Authorization": f"Bearer {token}"})
                    assert reply.status_code == 200, reply.text
                    body, headers = signed([erp_event(40, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 2}],
                                                      gift_box="GIFTBOX-1")])
                    reply = await client.post(f"http://127.0.0.1:{port}/webhooks/erp/t1", content=body,
                                              headers=headers)
                    assert reply.status_code == 200
                    await scanner.wait_connected()
                    await scan(client, "OP-0009", "SIGNED_IN")
                    opened = await scan(client, "DY00000040", "OPENED")
                    await scan(client, ITEM, "OK")
                    gateway.kill()  # SIGKILL: no shutdown, no flush
                    with httpx.Client(timeout=5) as sync_client:
                        await trio.to_thread.run_sync(gateway.start, sync_client)
                    await scanner.wait_connected()
                    with trio.fail_after(10):  # the station restores its session as it starts
                        while not (resumed := await view(client)).get("session"):  # noqa: ASYNC110  (polling, as a screen does)
                            await trio.sleep(0.02)
                    assert resumed["operator"] == "OP-0009"
                    assert resumed["session"]["session_id"] == opened["session"]["session_id"]
                    packed = {c["sku"]: c["packed"] for c in resumed["session"]["components"]}
                    assert packed == {"A1": 1, "GIFTBOX-1": 0}
                    await scan(client, ITEM, "OK")
                    await scan(client, GIFT_BOX, "CLOSED")
                    with trio.fail_after(15):
                        while not printer.printed():  # noqa: ASYNC110
                            await trio.sleep(0.05)
            finally:
                gateway.stop()
        nursery.cancel_scope.cancel()


async def test_a_parcel_off_its_catalog_weight_stays_open_until_it_weighs_right(tmp_path):
    from devices.simulators.scale import open_scale_simulator

    async with open_scale_simulator("1.234", "kg") as scale:
        async def body(line: Line, printer: PrinterSimulator) -> None:
            await line.post(erp_event(130, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}]))
            await line.scan("OP-0001", "SIGNED_IN")
            await line.scan("DY00000130", "OPENED")
            view = await line.scan(ITEM, "WEIGHT_MISMATCH")  # complete, but 1,234 g against 200 g
            assert view["session"]["state"] == "open" and "1234 g" in view["last"]["message_zh"]
            assert printer.printed() == []
            scale.weight = Decimal("0.215")  # the stray item is taken out
            await line.scan("#CLOSE", "CLOSED")
            await line.until(lambda: printer.printed())

        await run_line(tmp_path, body, extra="weight_tolerance_g = 30",
                       tail=f'\n[stations.A1.scale]\npath = "{scale.path}"\nprotocol = "sics"\n')
