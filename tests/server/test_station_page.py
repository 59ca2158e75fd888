"""The station screens: routes and the event stream through the builtin HTTP/1.1 server, then
the page itself in headless Chromium (selenium), following a scripted pack session.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them)
and ``selenium``; it is skipped, saying so, only when they are missing. Its screenshots go to
``tests/artifacts/``.
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from starlette.applications import Starlette

from gateway._packline.display import StationDisplay, empty_view
from gateway._packline.values import Verdict
from gateway._server import serve_http1, station_page
from gateway._server.station_page import station_routes

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Server:
    def __init__(self, url: str, shutdown: trio.Event, returned: trio.Event) -> None:
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.shutdown = shutdown
        self.returned = returned

    async def stop(self) -> None:
        self.shutdown.set()
        await self.returned.wait()


async def start(nursery: trio.Nursery, display: StationDisplay, names: list[str], *, port: int = 0,
                keepalive_s: float = 15.0) -> Server:
    app = Starlette(routes=station_routes(display, lambda: list(names), keepalive_s=keepalive_s))
    shutdown, returned = trio.Event(), trio.Event()

    async def run(task_status=trio.TASK_STATUS_IGNORED):
        await serve_http1(app, [("127.0.0.1", port)], shutdown_trigger=shutdown.wait, task_status=task_status)
        returned.set()

    bound = await nursery.start(run)
    return Server(bound[0], shutdown, returned)


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``condition`` (state another task changes, no event to wait on) until it holds."""
    with trio.fail_after(timeout_s):
        while True:
            if condition():
                return
            await trio.sleep(0.01)


# -- the routes ---------------------------------------------------------------------------------


async def test_station_list_page_and_static_files(nursery):
    display = StationDisplay()
    display.publish("Z9", empty_view("Z9"))  # publishing makes a station known too
    server = await start(nursery, display, ["A1", "B<2>"])
    async with httpx.AsyncClient(base_url=server.url) as client:
        listing = await client.get("/stations")
        assert listing.status_code == 200
        assert listing.headers["content-type"].startswith("text/html")
        assert '<a href="/stations/A1">A1</a>' in listing.text
        assert "B&lt;2&gt;" in listing.text and "<2>" not in listing.text
        assert 'href="/stations/Z9"' in listing.text

        page = await client.get("/stations/A1")
        assert page.status_code == 200
        assert 'data-station="A1"' in page.text and 'lang="zh-CN"' in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "http://" not in page.text and "https://" not in page.text  # nothing external

        escaped = await client.get("/stations/B%3C2%3E")
        assert escaped.status_code == 200 and 'data-station="B&lt;2&gt;"' in escaped.text

        for name, kind in (("station.js", "text/javascript"), ("station.css", "text/css")):
            reply = await client.get(f"/stations/_static/{name}")
            assert reply.status_code == 200 and reply.headers["content-type"].startswith(kind)
            assert b"http://" not in reply.content and b"https://" not in reply.content
        assert (await client.get("/stations/_static/secret.txt")).status_code == 404


async def test_unknown_station_is_404(nursery):
    server = await start(nursery, StationDisplay(), ["A1"])
    async with httpx.AsyncClient(base_url=server.url) as client:
        page = await client.get("/stations/NOPE")
        assert page.status_code == 404 and "unknown station: NOPE" in page.text
        assert 'href="/stations/A1"' in page.text  # where to go instead
        for suffix in ("view", "events"):
            reply = await client.get(f"/stations/NOPE/{suffix}")
            assert reply.status_code == 404
            assert "open /stations" in reply.json()["error"]


async def test_view_is_the_current_view_or_an_empty_one(nursery):
    display = StationDisplay()
    server = await start(nursery, display, ["A1"])
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/stations/A1/view")).json() == empty_view("A1")
        display.publish("A1", {"station": "A1", "seq": 3, "operator": "OP-0007"})
        assert (await client.get("/stations/A1/view")).json() == {"station": "A1", "seq": 3, "operator": "OP-0007"}


async def read_events(lines: Any, count: int) -> list[bytes]:
    """The next ``count`` events (or comments) of an SSE stream, each without its blank line."""
    events: list[bytes] = []
    block: list[bytes] = []
    async for line in lines:
        if line == b"":
            events.append(b"\n".join(block))
            block = []
            if len(events) == count:
                return events
        else:
            block.append(line)
    raise AssertionError(f"stream ended after {events}")


async def sse_lines(stream: trio.SocketStream) -> Any:
    """The body lines of a raw chunked HTTP response, after its head (a tiny, exact SSE reader)."""
    buffer = b""
    head_done = False
    body = b""
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        buffer += data
        if not head_done:
            if b"\r\n\r\n" not in buffer:
                continue
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            assert b" 200 " in head.split(b"\r\n", 1)[0] + b" "
            assert b"content-type: text/event-stream" in head.lower()
            assert b"transfer-encoding: chunked" in head.lower()
            head_done = True
        while True:  # de-chunk what is complete
            size_line, sep, rest = buffer.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                break
            body += rest[:size]
            buffer = rest[size + 2:]
            if size == 0:
                for line in body.split(b"\n") if body else ():
                    yield line
                return
        *complete, body = body.split(b"\n")
        for line in complete:
            yield line


async def test_events_stream_views_live_and_keep_alive(nursery):
    display = StationDisplay()
    server = await start(nursery, display, ["A1"], keepalive_s=0.2)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    await stream.send_all(b"GET /stations/A1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    lines = sse_lines(stream)
    retry, first = await read_events(lines, 2)
    assert retry == b"retry: 2000"
    assert orjson.loads(first.removeprefix(b"data: ")) == empty_view("A1")  # nothing published yet
    await eventually(lambda: display.subscribers("A1") == 1)

    display.publish("A1", {"station": "A1", "seq": 1, "last": {"verdict": "OK", "message_zh": "正确\n下一件"}})
    (event,) = await read_events(lines, 1)
    assert event.startswith(b"data: ") and b"\n" not in event  # one line per view
    assert orjson.loads(event[6:])["last"]["message_zh"] == "正确\n下一件"

    (comment,) = await read_events(lines, 1)  # nothing new for keepalive_s
    assert comment == b": keep-alive"

    display.close()  # shutdown: the stream ends with the last chunk
    assert [line async for line in lines] == []
    await eventually(lambda: display.subscribers("A1") == 0)
    await stream.aclose()


async def test_events_stream_starts_with_the_current_view(nursery):
    display = StationDisplay()
    display.publish("A1", {"station": "A1", "seq": 7})
    server = await start(nursery, display, ["A1"])
    async with httpx.AsyncClient(base_url=server.url) as client:
        async with client.stream("GET", "/stations/A1/events") as reply:
            assert reply.headers["content-type"].startswith("text/event-stream")
            assert reply.headers["cache-control"] == "no-cache"
            lines = reply.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            assert await anext(lines) == ""
            assert orjson.loads((await anext(lines)).removeprefix("data: ")) == {"station": "A1", "seq": 7}


async def test_events_stream_ends_when_the_client_goes_away(nursery):
    """The server reads no socket while the app streams: it notices the client gone when a
    write fails (the keep-alive), and the stream's task is cancelled: no subscriber is left."""
    display = StationDisplay()
    server = await start(nursery, display, ["A1"], keepalive_s=0.05)
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /stations/A1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        await eventually(lambda: display.subscribers("A1") == 1)
        sock.close()
        await eventually(lambda: display.subscribers("A1") == 0, timeout_s=5)
    await server.stop()  # nothing left streaming: the shutdown returns at once


def test_every_verdict_has_words_in_both_languages_and_a_colour():
    script = (Path(station_page.__file__).with_name("static") / "station.js").read_text("utf-8")
    tables = re.findall(r"verdict: \{(.*?)\},", script, re.DOTALL)
    assert len(tables) == 2  # zh-CN and en
    for table in tables:
        assert sorted(re.findall(r"\b([A-Z_]+): \"", table)) == sorted(Verdict)
    colours = re.search(r"const GOOD = .*?const SOUND_OF", script, re.DOTALL)
    assert colours is not None
    for verdict in ("OK", "CLOSED", "WRONG_ITEM", "EXTRA", "DUPLICATE_UNIT", "UNKNOWN_BARCODE", "MISSING",
                    "STOP_REFUND", "STOP_NO_STOCK", "ALREADY_PACKED"):
        assert f'"{verdict}"' in colours.group(0)  # the rest are amber


async def test_head_of_events_does_not_stream(nursery):
    display = StationDisplay()
    server = await start(nursery, display, ["A1"])
    async with httpx.AsyncClient(base_url=server.url) as client:
        reply = await client.head("/stations/A1/events")
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    assert display.subscribers("A1") == 0


async def test_shutdown_does_not_wait_for_open_screens_once_the_display_closes(nursery):
    display = StationDisplay()
    server = await start(nursery, display, ["A1"])
    async with httpx.AsyncClient(base_url=server.url) as client:
        async with client.stream("GET", "/stations/A1/events") as reply:
            lines = reply.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            await eventually(lambda: display.subscribers("A1") == 1)
            with trio.fail_after(2):  # well under the server's 10 s grace
                display.close()
                server.shutdown.set()
                assert [line async for line in lines][-1:] == [""]
                await server.returned.wait()


# -- the page in a browser -----------------------------------------------------------------------


def component(number: int, name: str, sku: str, kind: str = "item", *, quantity: int = 1, packed: int = 0,
              parcel: int = 1, order: str = "douyin|6912345678901") -> dict[str, Any]:
    return {"component_id": f"{order}#{number}", "order_id": order, "sku": sku, "name": name, "kind": kind,
            "quantity": quantity, "packed": packed, "parcel": parcel,
            "status": "packed" if packed >= quantity and parcel == 1 else "pending"}


class Script:
    """A station service's views for one scripted pack session."""

    def __init__(self, display: StationDisplay) -> None:
        self.display = display
        self.seq = 0
        self.components = [
            component(1, "玻尿酸保湿面霜 50ml", "CREAM-50"),
            component(2, "新年限定礼盒", "BOX-NY", "gift_box"),
            component(3, "精华小样 5ml", "SERUM-5", "trial"),
            component(4, "品牌帆布袋", "BAG-1", "gift", parcel=2),  # a later parcel: greyed "后发"
        ]
        self.state = "open"
        self.label: dict[str, Any] | None = None

    def publish(self, verdict: str, message_zh: str, message_en: str, code: str = "",
                component_id: str | None = None, **change: Any) -> int:
        self.seq += 1
        for key, value in change.items():
            setattr(self, key, value)
        self.display.publish("A1", {
            "station": "A1", "operator": "OP-0007", "seq": self.seq,
            "session": {"session_id": "s-1", "group_id": "douyin|6912345678901", "orders": ["douyin|6912345678901"],
                        "state": self.state, "components": self.components},
            "last": {"verdict": verdict, "message_zh": message_zh, "message_en": message_en, "code": code,
                     "component_id": component_id, "at_ms": 1_780_000_000_000 + self.seq, "alarm": Verdict(verdict).alarm},
            "label": self.label,
            "devices": [{"device": "scanner-1", "kind": "scanner", "state": "up", "detail": ""},
                        {"device": "printer-1", "kind": "printer", "state": "down", "detail": "缺纸 / paper out"}],
        })
        return self.seq

    def scan_ok(self, index: int) -> int:
        part = self.components[index]
        part["packed"] += 1
        if part["packed"] >= part["quantity"]:
            part["status"] = "packed"
        return self.publish("OK", f"正确：{part['name']}", f"OK: {part['sku']}", part["sku"], part["component_id"])


def browser_or_skip() -> Any:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} missing: `apt-get install chromium chromium-driver` (CI installs them)")
    try:
        from selenium import webdriver
    except ImportError as exc:  # chromium is there, so this is a broken dev install: say so
        pytest.fail(f"selenium is missing ({exc}): `.venv/bin/pip install -e '.[dev]'` (or `pip install selenium`)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400",
                     "--autoplay-policy=user-gesture-required", "--lang=zh-CN"):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)


class Page:
    """Selenium calls, run in a worker thread so the server keeps serving on the trio thread."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(partial(function, *args))

    async def get(self, url: str) -> None:
        await self.run(self.driver.get, url)

    async def text(self, element_id: str) -> str:
        return str(await self.run(lambda: self.driver.find_element("id", element_id).text))

    async def attribute(self, element_id: str, name: str) -> str:
        return str(await self.run(lambda: self.driver.find_element("id", element_id).get_attribute(name)))

    async def click(self, element_id: str) -> None:
        await self.run(lambda: self.driver.find_element("id", element_id).click())

    async def script(self, source: str) -> Any:
        return await self.run(self.driver.execute_script, source)

    async def wait_seq(self, seq: int) -> None:
        await self.wait(lambda d: d.find_element("id", "seq").text.endswith(f" {seq}"))

    async def wait(self, condition: Callable[[Any], bool], timeout_s: float = 10) -> None:
        from selenium.webdriver.support.wait import WebDriverWait

        await self.run(lambda: WebDriverWait(self.driver, timeout_s).until(condition))

    async def rows(self) -> list[tuple[str, str, str]]:
        """(tick, count, classes) of each bill row."""
        rows: list[tuple[str, str, str]] = await self.script(
            "return [...document.querySelectorAll('#component-rows tr')].map(r => "
            "[r.querySelector('.tick').textContent, r.querySelector('.count').textContent, r.className])")
        return rows

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        await self.run(self.driver.save_screenshot, str(ARTIFACTS / f"station-{name}.png"))


async def test_station_screen_follows_a_pack_session_in_chromium(nursery):
    driver = await trio.to_thread.run_sync(browser_or_skip)
    page = Page(driver)
    try:
        display = StationDisplay()
        server = await start(nursery, display, ["A1"])
        await page.get(f"{server.url}/stations/A1")
        await page.wait(lambda d: d.find_element("id", "connection").text == "已连接")
        assert await page.script("return document.documentElement.lang") == "zh-CN"
        assert await page.text("verdict-title") == "等待扫描"
        assert await page.text("operator") == "未登录 — 请刷工牌"
        assert await page.text("sound") == "点击启用声音"

        # sound: one click enables it (a user gesture), remembered in localStorage
        await page.click("sound")
        await page.wait(lambda d: d.find_element("id", "sound").text == "声音已开 (点击静音)")
        assert await page.script("return localStorage.getItem('station.sound')") == "on"

        script = Script(display)
        await page.wait_seq(script.publish("OPENED", "开始打包：3 件", "Packing started: 3 units", "6912345678901"))
        assert await page.attribute("verdict", "class") == "verdict verdict-warn"  # amber: not OK yet
        assert await page.text("verdict-title") == "已开始打包"  # calm: no warning sign
        assert await page.text("operator") == "操作员: OP-0007"
        assert await page.text("progress") == "已扫 0 / 3 件"
        rows = await page.rows()
        assert [tick for tick, _, _ in rows] == ["☐", "☐", "☐", "→"]
        assert rows[3][1] == "—" and "component-later" in rows[3][2]
        kinds = await page.script("return [...document.querySelectorAll('#component-rows .kind')].map(c => c.textContent)")
        assert kinds == ["", "礼盒", "试用装", "赠品后发"]

        await page.wait_seq(script.scan_ok(0))
        await page.wait_seq(script.scan_ok(1))
        assert [tick for tick, _, _ in await page.rows()] == ["✔", "✔", "☐", "→"]
        assert await page.text("progress") == "已扫 2 / 3 件"
        assert await page.attribute("verdict", "class") == "verdict verdict-good"
        assert await page.text("verdict-message") == "正确：新年限定礼盒"
        assert await page.script("return document.body.dataset.sound") == "ok"

        await page.wait_seq(script.publish("WRONG_ITEM", "错货：此单没有 LIPSTICK-RED，请拿出", "Wrong item: take it out",
                                           "6900000000017"))
        assert await page.attribute("verdict", "class") == "verdict verdict-error"
        assert await page.text("verdict-title") == "✖ 错货！"
        assert await page.text("verdict-code") == "条码: 6900000000017"
        assert await page.script("return document.body.dataset.sound") == "wrong"
        await page.screenshot("wrong-item")

        await page.wait_seq(script.publish("EXTRA", "多扫：面霜只要 1 件", "Extra: only 1 cream", "CREAM-50"))
        assert await page.attribute("verdict", "class") == "verdict verdict-error"
        assert await page.script("return document.body.dataset.sound") == "over"

        await page.wait_seq(script.scan_ok(2))
        assert [tick for tick, _, _ in await page.rows()] == ["✔", "✔", "✔", "→"]
        script.label = {"state": "printing", "reason": "", "job_id": "job-1"}
        await page.wait_seq(script.publish("CLOSED", "完成，面单打印中", "Complete, printing the label", state="closed"))
        assert await page.attribute("verdict", "class") == "verdict verdict-good"
        assert await page.text("verdict-title") == "✔ 完成 — 封箱"
        assert await page.text("label") == "打印中"
        assert await page.text("session-state") == "已完成"
        assert await page.script("return document.body.dataset.sound") == "closed"
        await page.screenshot("closed")

        script.label = None
        await page.wait_seq(script.publish("STOP_REFUND", "订单已退款，停止打包，放到拦截区", "Refunded: stop, put it on the hold shelf",
                                           "douyin|6912345678901", state="stopped"))
        assert await page.attribute("verdict", "class") == "verdict verdict-stop"
        assert await page.text("verdict-title") == "⊘ 已退款 — 停止打包！"
        assert await page.text("verdict-message") == "订单已退款，停止打包，放到拦截区"
        assert await page.script("return getComputedStyle(document.getElementById('verdict')).animationName") == "stop-flash"
        assert await page.script("return document.body.dataset.sound") == "stop"
        assert await page.text("devices") == "scanner-1 (扫码枪)\n正常\nprinter-1 (打印机)\n断开\n缺纸 / paper out"
        await page.screenshot("stop-refund-zh")

        # English: the switch, remembered across a reload; ?lang= wins
        await page.click("lang")
        assert await page.text("verdict-title") == "⊘ REFUNDED — STOP PACKING!"
        assert await page.text("verdict-message") == "Refunded: stop, put it on the hold shelf"
        assert await page.script("return document.documentElement.lang") == "en"
        assert await page.text("lang") == "中文"
        kinds = await page.script("return [...document.querySelectorAll('#component-rows .kind')].map(c => c.textContent)")
        assert kinds == ["", "Gift box", "Trial", "GiftShips later"]
        await page.screenshot("stop-refund-en")
        await page.get(f"{server.url}/stations/A1")
        await page.wait(lambda d: d.find_element("id", "verdict-title").text == "⊘ REFUNDED — STOP PACKING!")
        assert await page.text("sound") == "Click to enable sound"  # wanted, but needs a gesture again
        assert await page.script("return document.body.dataset.sound") is None  # an old verdict: no alarm
        await page.get(f"{server.url}/stations/A1?lang=zh-CN")
        await page.wait(lambda d: d.find_element("id", "verdict-title").text == "⊘ 已退款 — 停止打包！")
        await page.get(f"{server.url}/stations/A1?lang=en")
        await page.wait(lambda d: d.find_element("id", "verdict-title").text == "⊘ REFUNDED — STOP PACKING!")

        # the connection indicator: down when the server goes, back by itself when it returns
        display.close()
        await server.stop()
        await page.wait(lambda d: d.find_element("id", "connection").text == "Connection lost — reconnecting…")
        assert await page.attribute("connection", "class") == "connection connection-down"
        display = StationDisplay()
        display.publish("A1", {"station": "A1", "seq": 2, "operator": "OP-0008"})
        server = await start(nursery, display, ["A1"], port=server.port)
        await page.wait(lambda d: d.find_element("id", "operator").text == "Operator: OP-0008")  # EventSource retried
        assert await page.text("connection") == "Connected"
        assert await page.text("verdict-title") == "Waiting for a scan"  # no "last": tolerated
        assert await page.text("no-session") == "Scan an order or waybill barcode to start packing"
        await page.get(f"{server.url}/stations/A1?lang=zh-CN")
        await page.wait(lambda d: d.find_element("id", "connection").text == "已连接")
        display.close()
        await server.stop()
        await page.wait(lambda d: d.find_element("id", "connection").text == "连接中断 — 正在重连…")
        await page.screenshot("disconnected")
        logs = await page.run(driver.get_log, "browser")
        assert [entry for entry in logs if entry["level"] == "SEVERE" and "events" not in entry["message"]
                and "favicon" not in entry["message"] and "ERR_CONNECTION_REFUSED" not in entry["message"]] == []
    finally:
        await trio.to_thread.run_sync(driver.quit)


async def test_a_session_scanned_at_a_simulated_scanner_shows_its_ticks_and_verdicts(tmp_path):
    """The whole path in a browser: frames into the scanner simulator -> driver -> pack line ->
    store -> the station's event stream -> the page (screenshots kept as artefacts)."""
    from devices.simulators.printer import PrinterSimulator
    from tests._support import erp_event
    from tests._support.packline import GIFT_BOX, ITEM, Line, run_line

    driver = await trio.to_thread.run_sync(browser_or_skip)
    page = Page(driver)

    async def body(line: Line, printer: PrinterSimulator) -> None:
        await line.post(erp_event(120, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 2}], gift_box="GIFTBOX-1"))
        await page.get(f"{line.services.bound[0]}/stations/A1")
        await page.wait(lambda d: d.find_element("id", "connection").text == "已连接")
        await line.scan("OP-0042", "SIGNED_IN")
        await page.wait(lambda d: d.find_element("id", "operator").text == "操作员: OP-0042")
        await line.scan("DY00000120", "OPENED")
        await page.wait(lambda d: d.find_element("id", "progress").text == "已扫 0 / 3 件")
        await line.scan(ITEM, "OK")
        await page.wait(lambda d: d.find_element("id", "progress").text == "已扫 1 / 3 件")
        await line.scan(GIFT_BOX, "OK")
        await line.scan(GIFT_BOX, "EXTRA")
        await page.wait(lambda d: "verdict-error" in d.find_element("id", "verdict").get_attribute("class"))
        assert [tick for tick, _, _ in await page.rows()] == ["◐", "✔"]  # A1 1 of 2, the gift box done
        await page.screenshot("live-extra")
        await line.scan(ITEM, "CLOSED")
        await page.wait(lambda d: d.find_element("id", "verdict-title").text == "✔ 完成 — 封箱")
        await page.wait(lambda d: d.find_element("id", "label").text == "已打印")
        assert [tick for tick, _, _ in await page.rows()] == ["✔", "✔"]
        await page.screenshot("live-closed")

    try:
        await run_line(tmp_path, body)
    finally:
        await trio.to_thread.run_sync(driver.quit)
