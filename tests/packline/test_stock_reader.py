"""Gift stock read from the ERP's stock endpoint before packing (``gateway._packline.stock_reader``),
against a real HTTP server on 127.0.0.1 that checks the signature as an ERP would."""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devices.simulators.printer import PrinterSimulator
from gateway._packline.stock_reader import StockReader
from gateway._packline.values import StockLevel
from gateway._settings import Secret
from gateway._signing import sign
from tests._support import erp_event
from tests._support.packline import CATALOG, GIFT_BOX, ITEM, Line, run_line

SECRET = "erp-upstream-secret"


class FakeErp:
    """The ERP side: ``POST /stock`` answers from ``levels`` (or ``answer``/``status``/``delay_s``
    when a test sets them); any other POST (the forwarded batches) gets 200."""

    def __init__(self) -> None:
        self.levels: dict[str, dict[str, Any]] = {}
        self.answer: bytes | None = None
        self.status = 200
        self.delay_s = 0.0
        self.asked: list[dict[str, Any]] = []
        self.bad_signatures = 0
        erp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                expected = sign(SECRET.encode(), self.headers.get("x-gateway-timestamp", ""), body)
                if not hmac.compare_digest(expected, self.headers.get("x-gateway-signature", "")):
                    erp.bad_signatures += 1
                    self._send(401, b'{"error": "bad signature"}')
                    return
                if self.path != "/stock":
                    self._send(200, b'{"ok": true}')
                    return
                request = json.loads(body)
                erp.asked.append(request)
                time.sleep(erp.delay_s)
                answer = erp.answer if erp.answer is not None else json.dumps(
                    {"stock": [erp.levels[s] for s in request["skus"] if s in erp.levels]}).encode()
                self._send(erp.status, answer)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except BrokenPipeError:  # the reader gave up (the timeout case)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeErp:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def erp() -> Iterator[FakeErp]:
    with FakeErp() as server:
        yield server


def reader(erp: FakeErp, **kw: Any) -> StockReader:
    return StockReader(erp.url + "/stock", Secret(SECRET), **kw)


async def test_a_read_returns_the_erps_figures_signed_and_only_those_newer_than_stored(erp: FakeErp) -> None:
    erp.levels = {"GIFT": {"sku": "GIFT", "quantity": 7, "updated_at": 1_764_036_000_000},
                  "BOX": {"sku": "BOX", "quantity": 3, "updated_at": 1_764_000_000_000}}
    known = {"BOX": StockLevel("BOX", 9, 1_764_036_000_000)}  # newer than the ERP's answer
    stock = reader(erp)
    read = await stock.read("t1", ["GIFT", "BOX", "NONE"], known)
    assert read.error == "" and erp.bad_signatures == 0
    assert erp.asked == [{"tenant": "t1", "skus": ["GIFT", "BOX", "NONE"]}]
    assert read.levels == [StockLevel("GIFT", 7, 1_764_036_000_000, "erp")]
    await stock.aclose()


def test_only_missing_or_old_figures_are_asked_for() -> None:
    stock = StockReader("http://127.0.0.1:9/stock", Secret(SECRET), fresh_s=60)
    now = 1_000_000_000
    known = {"FRESH": StockLevel("FRESH", 1, now - 59_000), "OLD": StockLevel("OLD", 1, now - 61_000)}
    assert stock.stale(["FRESH", "OLD", "NEW", "NEW"], known, now) == ["NEW", "OLD"]


@pytest.mark.parametrize("setup, error", [
    (lambda e: setattr(e, "status", 503), "HTTP 503"),
    (lambda e: setattr(e, "answer", b"<html>"), "not JSON"),
    (lambda e: setattr(e, "answer", b'{"stock": [{"sku": "GIFT", "quantity": "many"}]}'), "not a stock list"),
    (lambda e: setattr(e, "delay_s", 1.0), "Timeout"),
])
async def test_an_erp_that_fails_gives_an_error_never_an_exception(erp: FakeErp, setup: Any, error: str) -> None:
    setup(erp)
    stock = reader(erp, timeout_s=0.3)
    read = await stock.read("t1", ["GIFT"], {})
    assert error in read.error and read.levels == []
    assert stock.stats.failures == 1 and stock.stats.last_error == read.error
    await stock.aclose()


async def test_a_refused_connection_is_an_error() -> None:
    stock = StockReader("http://127.0.0.1:9/stock", Secret(SECRET), timeout_s=0.5)
    read = await stock.read("t1", ["GIFT"], {})
    assert "ConnectError" in read.error
    await stock.aclose()


# -- at the pack line: the read decides hold or pack ---------------------------------------

ZERO_GIFT_STOCK = CATALOG.replace(f"gift_box,{GIFT_BOX},50,,,20", f"gift_box,{GIFT_BOX},50,,,0")


def erp_config(erp: FakeErp) -> tuple[str, str]:
    # the catalog import's figure is seconds old: ask anyway
    extra = f'stock_url = "{erp.url}/stock"\nstock_timeout_s = 1.0\nstock_fresh_s = 0.001'
    tail = f'\n[upstream]\nurl = "{erp.url}/batches"\nsecret = "{SECRET}"\n'
    return extra, tail


async def test_the_erps_count_read_before_packing_releases_a_parcel_the_stored_zero_would_hold(tmp_path,
                                                                                              erp: FakeErp) -> None:
    erp.levels = {"GIFTBOX-1": {"sku": "GIFTBOX-1", "quantity": 5}}

    async def body(line: Line, printer: PrinterSimulator) -> None:
        store = line.services.store
        await line.post(erp_event(70, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}], gift_box="GIFTBOX-1"))
        plan = await line.until(lambda: store.get_record("t1", "plan", "douyin|DY00000070"))
        assert plan["shortfalls"] == {}
        assert store.get_record("t1", "hold", "douyin|DY00000070") is None
        level = store.get_record("t1", "stock", "GIFTBOX-1")
        assert (level["quantity"], level["source"]) == (5, "erp_read")
        assert {"tenant": "t1", "skus": ["GIFTBOX-1"]} in erp.asked
        assert any(a["actor"] == "erp:stock_url" for a in store.iter_audit("t1", ""))
        await line.scan("OP-0001", "SIGNED_IN")
        await line.scan("DY00000070", "OPENED")
        await line.scan(ITEM, "OK")
        await line.scan(GIFT_BOX, "CLOSED")

    await run_line(tmp_path, body, erp_config(erp)[0], catalog=ZERO_GIFT_STOCK, tail=erp_config(erp)[1])


async def test_an_erp_that_does_not_answer_leaves_the_stored_figure_in_charge(tmp_path, erp: FakeErp) -> None:
    erp.status = 500

    async def body(line: Line, printer: PrinterSimulator) -> None:
        store = line.services.store
        await line.post(erp_event(71, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}], gift_box="GIFTBOX-1"))
        hold = await line.until(lambda: store.get_record("t1", "hold", "douyin|DY00000071"))
        assert hold["shortfalls"] == {"GIFTBOX-1": 1}
        assert erp.asked and line.services.packline.stock_reader.stats.last_error == "HTTP 500"

    await run_line(tmp_path, body, erp_config(erp)[0], catalog=ZERO_GIFT_STOCK, tail=erp_config(erp)[1])
