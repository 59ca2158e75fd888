"""The operators' dashboard: its routes through the builtin HTTP/1.1 server, then the page in
headless Chromium (selenium) after a scripted day of demo traffic on a real pack line.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` and ``selenium``
(``tests.server.test_station_page.browser_or_skip`` says which is missing); its screenshots go
to ``tests/artifacts/dashboard-*.png``.

The scripted day (tenant ``t1``, the gateway in-process with a simulated scanner, printer and
NVR, ``tests._support.packline.run_line``): the seeded buyer (phone 138 0013 8000) orders a
cream, a trial kit and a gift box (packed on camera, then shipped with SF123) and a second
cream (packed, never given a waybill: ``waybill_timeout`` and ``repeat_order_72h``); another
order is refunded after its label (``intercept``), one arrives with a status no rule knows
(``quarantined``) and one is refunded on Douyin while the ERP still says ready to pack
(``status_disagrees``). The OCI is computed by the daemon's own ``OpsState`` and the trend
gets earlier hours through the pipeline, so its chart has several points.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import trio
from starlette.applications import Starlette

from devices.simulators.printer import PrinterSimulator
from gateway._ops.oci import HOUR_MS, TREND_KIND, hour_of
from gateway._server import serve_http1
from gateway._server.dashboard import CONTENT_SECURITY_POLICY, STATIC_TYPES, dashboard_routes
from gateway._store import StepWrite
from tests._support import douyin_request, erp_event, platform_app_key, platform_secret
from tests._support.packline import GIFT_BOX, ITEM, Line, run_line
from tests.server.test_station_page import ARTIFACTS, Page, browser_or_skip

STATIC = Path(__file__).resolve().parents[2] / "gateway" / "_server" / "static"
TRIAL = "5901234123457"
CATALOG = (
    "sku,name,kind,barcodes,weight_g,parts,serialised,stock\n"
    f"A1,面霜 Cream,item,{ITEM},200,,,\n"
    f"GIFTBOX-1,礼盒 Gift box,gift_box,{GIFT_BOX},50,,,20\n"
    f"TRIAL-1,试用装 Trial kit,trial,{TRIAL},20,,,\n"
)
PHONE = "13800138000"  # erp_event's buyer, typed as an agent would
GIFT_ORDER = "douyin|DY00000001"
SECOND_ORDER = "douyin|DY00000002"
REFUNDED = "douyin|DY00000003"
DOUYIN_ID = "6919000000000000077"
DOUYIN_TENANT = (f"\n[tenants.t1.douyin]\nsecret = '{platform_secret('t1', 'douyin')}'\n"
                 f"app_key = '{platform_app_key('t1', 'douyin')}'\n")


# -- the routes ------------------------------------------------------------------------------------

async def serve_dashboard(nursery: trio.Nursery) -> tuple[str, trio.Event]:
    app = Starlette(routes=dashboard_routes())
    stop = trio.Event()
    bound = await nursery.start(lambda task_status: serve_http1(
        app, [("127.0.0.1", 0)], shutdown_trigger=stop.wait, task_status=task_status))
    return bound[0], stop


async def test_the_page_and_its_files_are_served_with_a_strict_policy(nursery):
    url, stop = await serve_dashboard(nursery)
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        page = await client.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        policy = page.headers["content-security-policy"]
        assert policy == CONTENT_SECURITY_POLICY
        assert "script-src 'self';" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "connect-src 'self'" in policy and "frame-src blob:" in policy and "img-src 'self' data: blob:" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert '<html lang="zh-CN">' in page.text and "/dashboard/_static/dashboard.js" in page.text
        for name, media_type in STATIC_TYPES.items():
            reply = await client.get(f"/dashboard/_static/{name}")
            assert reply.status_code == 200 and reply.headers["content-type"] == media_type
            assert reply.content == (STATIC / name).read_bytes()
            assert reply.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        for missing in ("station.js", "dashboard.html", "nope.js"):
            reply = await client.get(f"/dashboard/_static/{missing}")
            assert reply.status_code == 404, missing
            assert reply.json()["code"] == "not_found" and "dashboard.js" in reply.json()["error"]
        assert (await client.get("/dashboard/_static/..%2Fdashboard.py")).status_code == 404  # no route at all
        assert (await client.post("/dashboard")).status_code == 405
    stop.set()


def test_the_page_loads_nothing_from_elsewhere_and_every_element_it_uses_exists():
    """No CDN (the box may be offline), no inline script (the CSP refuses it), and every id the
    script reaches for is in the page."""
    page = (STATIC / "dashboard.html").read_text("utf-8")
    script = (STATIC / "dashboard.js").read_text("utf-8")
    style = (STATIC / "dashboard.css").read_text("utf-8")
    for text in (page, script, style):
        assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", text)
        assert "@import" not in text and "url(" not in text.replace("URL.", "")
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/dashboard/_static/dashboard.js">']
    assert not re.findall(r"<[^>]*\son\w+=", page)  # no inline handlers either
    ids = set(re.findall(r'\bid="([\w-]+)"', page))
    used = set(re.findall(r'\$\("([\w-]+)"\)', script))
    texts = script.split("const TEXTS = {", 1)[1].split("};", 1)[0]
    used |= set(re.findall(r'"([\w-]+)":', texts)) | set(re.findall(r"\b([a-z]+): \"", texts))
    assert used - ids == set()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    assert "localStorage" in script and 'session.set("dashboard.token"' in script  # the token: this tab only


# -- the scripted day ------------------------------------------------------------------------------

async def scripted_day(line: Line, printer: PrinterSimulator) -> None:
    """Orders, scans, a shipment, a refund after the label, a quarantined and a disputed order."""
    store = line.services.store
    gift_order = {"lines": [{"sku": "A1", "qty": 1}, {"sku": "TRIAL-1", "qty": 1}], "gift_box": "GIFTBOX-1"}
    await line.post(erp_event(1, "READY_TO_PACK", "DY00000001", **gift_order),
                    erp_event(2, "READY_TO_PACK", "DY00000002"),
                    erp_event(3, "READY_TO_PACK", "DY00000003", buyer={"phone": "139 0000 1111"}),
                    erp_event(4, "NEVER_HEARD_OF", "DY00000004", buyer={"phone": "139 0000 2222"}),
                    erp_event(5, "READY_TO_PACK", DOUYIN_ID, buyer={"phone": "139 0000 3333"}))
    await line.scan("OP-0007", "SIGNED_IN")
    await line.scan("DY00000001", "OPENED")
    await line.scan(ITEM, "OK")
    await trio.sleep(1.05)  # each scan on its own second of the clip
    await line.scan(GIFT_BOX, "OK")
    await line.scan(GIFT_BOX, "EXTRA")
    await trio.sleep(1.05)
    await line.scan(TRIAL, "CLOSED")
    await line.scan("DY00000002", "OPENED")
    await line.scan(ITEM, "CLOSED")  # never gets a waybill
    await line.scan("DY00000003", "OPENED")
    await line.scan(ITEM, "CLOSED")
    await line.until(lambda: len(printer.printed()) >= 3)
    await line.post(erp_event(6, "REFUND_INITIATED", "DY00000003", buyer={"phone": "139 0000 1111"}))
    await line.post(erp_event(7, "SHIPPED", "DY00000001", waybill="SF123", carrier="SF", **gift_order))
    body, headers = douyin_request([{"tag": "206", "msg_id": "7000000000000000206",  # refunded, says Douyin
                                     "data": {"p_id": int(DOUYIN_ID), "s_ids": [1], "shop_id": 77,
                                              "order_status": 4, "biz": 2, "pay_time": 1764036000}}])
    reply = await line.client.post("/webhooks/douyin/t1", content=body, headers=headers)
    assert reply.status_code == 200, reply.text
    await line.until(lambda: store.get_record("t1", "intercept", REFUNDED))
    await line.until(lambda: (store.get_record("t1", "parcel", GIFT_ORDER) or {}).get("waybill") == "SF123")
    await line.until(lambda: len(list(store.iter_records("evidence", "t1"))) >= 3)
    await line.until(lambda: any(a["kind"] == "waybill_timeout" for _, _, a in store.iter_records("alert", "t1"))
                     or any(a.get("kind") == "waybill_timeout" for _, _, a in store.iter_records("alert_sent", "t1")))


async def earlier_trend_hours(line: Line, hours: int = 5) -> list[int]:
    """Trend records for the hours before this one, as the ops task writes them (through the
    pipeline), so the chart has a line to draw; returns every hour now on the trend."""
    now = hour_of(time.time_ns() // 1_000_000)
    records = []
    for back in range(hours, 0, -1):
        hour = now - back * HOUR_MS
        share = 0.6 + 0.05 * (hours - back)
        records.append(("t1", TREND_KIND, f"{hour:013d}", {
            "hour_ms": hour, "computed_at_ms": hour + 60_000, "score": round(share, 4), "freshness": round(share, 4),
            "consistency": round(share + 0.1, 4), "traceability": 1.0, "orders": 3 + back,
            "offenders": {"freshness": 1, "consistency": 1, "traceability": 0}}))
    await line.services.pipeline.submit([], "webhook", extra=StepWrite(records=records))
    return [now - back * HOUR_MS for back in range(hours, 0, -1)] + [now]


# -- the page in Chromium --------------------------------------------------------------------------

class Dashboard(Page):
    """``Page`` with the dashboard's own screenshots and a few shorthands."""

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        await self.run(self.driver.save_screenshot, str(ARTIFACTS / f"dashboard-{name}.png"))

    async def type(self, element_id: str, text: str) -> None:
        def typing() -> None:
            field = self.driver.find_element("id", element_id)
            field.clear()
            field.send_keys(text)
        await self.run(typing)

    async def texts(self, css: str) -> list[str]:
        found: list[str] = await self.script(
            f"return [...document.querySelectorAll({css!r})].map(e => e.textContent)")
        return found

    async def wait_css(self, css: str, count: int = 1, timeout_s: float = 10) -> None:
        await self.wait(lambda d: len(d.find_elements("css selector", css)) >= count, timeout_s)

    async def click_css(self, css: str) -> None:
        await self.run(lambda: self.driver.find_element("css selector", css).click())

    async def sign_in(self, token: str, tenant: str | None = None) -> None:
        await self.type("token", token)
        if tenant is not None:
            await self.type("tenant", tenant)
        await self.click("sign-in-button")


async def check_sign_in(page: Dashboard, base: str, token: str) -> None:
    await page.get(f"{base}/dashboard?tenant=t1")
    await page.wait(lambda d: d.find_element("id", "sign-in-title").text == "登录")
    assert await page.script("return document.documentElement.lang") == "zh-CN"
    assert await page.attribute("tenant", "value") == "t1"  # from ?tenant=
    assert await page.script("return document.getElementById('main').hidden") is True
    await page.screenshot("sign-in")
    await page.sign_in("gw_not_a_token")
    await page.wait(lambda d: d.find_element("id", "sign-in-error").text == "令牌无效或已撤销，请重新登录")
    await page.sign_in(token)
    await page.wait_css("#stations .station[data-station='A1'] .live-up")
    assert token not in await page.run(lambda: page.driver.current_url)
    assert await page.script("return sessionStorage.getItem('dashboard.token')") == token
    assert await page.script("return localStorage.getItem('dashboard.token')") is None


async def check_overview(page: Dashboard, line: Line, trend_hours: list[int]) -> None:
    # live verdicts came over the station's event stream while the day was scripted
    verdicts = await page.script("return [...document.querySelectorAll('.station[data-station=\"A1\"] .verdicts li')]"
                                 ".map(li => li.dataset.verdict)")
    assert verdicts[0] == "CLOSED" and {"OK", "EXTRA", "OPENED", "CLOSED"} <= set(verdicts), verdicts
    assert await page.texts(".station[data-station='A1'] .verdict-error .verdict-word") == ["多扫"]
    await page.click("refresh")
    await page.wait_css("#board-rows tr.kind-status_disagrees")
    await page.wait(lambda d: "OP-0007" in d.find_element("css selector", ".station-operator").text)
    assert len(await page.texts("#device-rows tr")) == 3
    assert await page.text("devices-summary") == "正常 3 · 断开 0 · 启动中 0"
    assert await page.text("stations-note") == ""
    # the outbox: forwarding off in this test, the backlog counted
    assert await page.texts("#outbox .outbox-state") == ["未启用（没有 [upstream] url）"]
    backlog = (await page.texts("#outbox .outbox-backlog"))[0]
    assert int(backlog.split(" ")[0]) > 10, backlog
    # the board: the seeded anomalies, with reasons in Chinese and counts per kind
    kinds = await page.script("return [...document.querySelectorAll('#board-rows tr')].map(r => r.dataset.kind)")
    assert {"intercept", "waybill_timeout", "status_disagrees", "quarantined", "repeat_order_72h"} <= set(kinds), kinds
    reasons = " ".join(await page.texts("#board-rows .reason"))
    assert "揽收状态" in reasons and "不在映射规则中" in reasons and "douyin 显示 REFUNDED" in reasons
    intercept = await page.texts("#board-counts .chip[data-kind='intercept'] .chip-count")
    assert intercept == ["1/1"]
    # the OCI: the parts, a point per hour on the chart, each part drillable
    assert len(await page.texts("#oci-now .oci-part")) == 3
    points = await page.script("return [...document.querySelectorAll('#oci-chart circle.point-score')]"
                               ".map(c => Number(c.dataset.hourMs))")
    assert points == sorted(points) and len(points) >= 6 and set(trend_hours[:-1]) <= set(points)  # an hour may turn
    assert await page.script("return document.querySelectorAll('#oci-chart path.series').length") == 4
    await page.click_css("#oci-now .oci-part[data-part='consistency']")
    await page.wait(lambda d: f"douyin|{DOUYIN_ID}" in d.find_element("id", "oci-drill-rows").text)
    await page.screenshot("overview-zh")


async def check_ack(page: Dashboard, line: Line) -> None:
    row = "#board-rows tr.kind-intercept"
    await page.click_css(f"{row} .ack-button")
    await page.wait(lambda d: d.find_element("id", "board-note").text == "请先填写“我的名字”，再点确认")
    await page.type("ack-by", "王主管")
    await page.click_css(f"{row} .ack-button")
    await page.wait_css(f"{row}.acked")
    assert (await page.texts(f"{row} .ack-done"))[0].startswith("王主管 于 ")
    assert await page.script("return localStorage.getItem('dashboard.by')") == "王主管"
    reply = await line.client.get("/api/v1/tenants/t1/anomalies", params={"kind": "intercept"}, headers=line.auth)
    assert reply.json()["items"][0]["ack"]["by"] == "王主管"


async def check_viewer(page: Dashboard, line: Line, admin: str) -> None:
    """A viewer of one tenant: no station list or outbox (a note says why), no acknowledging."""
    reply = await line.client.post("/api/v1/tokens", json={"name": "agent-1", "tenant": "t1", "role": "viewer"},
                                   headers=line.auth)
    assert reply.status_code == 201, reply.text
    await page.click("sign-out")
    await page.wait(lambda d: d.find_element("id", "sign-in").is_displayed())
    await page.sign_in(reply.json()["secret"], "t1")
    await page.wait(lambda d: d.find_element("id", "stations-note").text.startswith("此令牌只能查看一个租户"))
    await page.wait_css(".station[data-station='A1']")  # named by the device list, followed live all the same
    await page.wait(lambda d: d.find_element("id", "outbox-note").text == "转发状态需要租户为 * 的令牌。")
    await page.wait_css("#board-rows tr.kind-quarantined .ack-button")
    await page.click_css("#board-rows tr.kind-quarantined .ack-button")
    await page.wait(lambda d: d.find_element("id", "board-note").text == "权限不足：此操作需要 operator 或更高角色，请换用有该角色的令牌")
    await page.screenshot("viewer-zh")
    await page.type("tenant-switch", "t2")  # another tenant: as if it did not exist
    await page.click("tenant-apply")
    other = "租户 t2 没有找到：租户名写错了，或此令牌不能查看它（not found）"
    await page.wait(lambda d: d.find_element("id", "board-note").text == other)
    assert await page.text("oci-note") == other
    assert await page.texts("#board-rows tr") == ["没有异常"]
    await page.click("sign-out")
    await page.sign_in(admin, "t1")
    await page.wait_css("#board-rows tr.kind-intercept.acked")


async def check_lookup(page: Dashboard) -> None:
    await page.run(lambda: page.driver.find_element("css selector", "#lookup-by option[value='phone']").click())
    await page.type("lookup-value", PHONE)
    await page.type("lookup-keyword", "礼盒")
    await page.click("lookup-button")
    await page.wait_css("#lookup-result .order-card", 2)
    orders = await page.script("return [...document.querySelectorAll('.order-card')].map(c => c.dataset.orderId)")
    assert orders == [SECOND_ORDER, GIFT_ORDER]
    assert await page.text("lookup-note") == "138****8000：2 个订单（近 30 天），1 项匹配关键词"
    card = f".order-card[data-order-id='{GIFT_ORDER}']"
    assert await page.texts(f"{card} .order-status") == ["已发货"]
    assert await page.texts(f"{card} .order-waybills") == ["SF123"]
    assert await page.texts(f"{card} .order-channel") == ["douyin"]
    components = await page.script(f"return [...document.querySelectorAll(\"{card} .component\")].map(c => "
                                   "[c.dataset.sku, c.querySelector('.text').textContent, c.classList.contains('highlight')])")
    assert components == [["A1", "面霜 Cream 已随 SF123 发出", False], ["TRIAL-1", "试用装 Trial kit 已随 SF123 发出", False],
                          ["GIFTBOX-1", "礼盒 Gift box 已随 SF123 发出", True]]
    assert await page.texts(f"{card} .highlight mark") == ["礼盒"]
    clips = await page.script(f"return [...document.querySelectorAll(\"{card} .clip-link\")].map(a => "
                              "[a.closest('.component').dataset.sku, a.getAttribute('href'), Number(a.dataset.offset), a.textContent])")
    assert [sku for sku, _, _, _ in clips] == ["A1", "TRIAL-1", "GIFTBOX-1"]
    assert all(href.startswith("rtsp://") and "starttime=" in href for _, href, _, _ in clips)
    offsets = {sku: offset for sku, _, offset, _ in clips}
    assert offsets["A1"] < offsets["GIFTBOX-1"] < offsets["TRIAL-1"]  # the second each was scanned
    assert len({href for _, href, _, _ in clips}) == 3 and clips[0][3] == f"录像第 {offsets['A1']:.1f} 秒"
    snapshots = await page.texts(f"{card} .snapshot")
    assert len(snapshots) == 3 and all("sha256" in s and ".jpg" in s for s in snapshots)
    second = f".order-card[data-order-id='{SECOND_ORDER}']"
    assert await page.texts(f"{second} .component .text") == ["面霜 Cream 已装入第 1 包，待出运单"]
    assert await page.texts(f"{second} .order-waybills") == ["暂无运单"]
    await page.screenshot("lookup-zh")
    # the packing proof: fetched with the token, shown from a blob URL, its PNG ready to save
    await page.click_css(f"{card} .proof-button")
    await page.wait(lambda d: (d.find_element("id", "proof-frame").get_attribute("src") or "").startswith("blob:"))
    await page.wait(lambda d: int(d.find_element("id", "proof-png").get_attribute("data-bytes") or 0) > 1000)
    assert (await page.attribute("proof-png", "download")) == "proof-douyin_DY00000001.png"
    assert (await page.attribute("proof-open", "href")).startswith("blob:")
    proof = await page.run(proof_text, page.driver)
    assert "打包凭证" in proof and "SF123" in proof and "OP-0007" in proof
    assert "English" not in proof  # its "?lang=" link means nothing in a blob: frame
    await page.screenshot("proof-zh")


def proof_text(driver: Any) -> str:
    driver.switch_to.frame(driver.find_element("id", "proof-frame"))
    try:
        return str(driver.find_element("tag name", "body").text)
    finally:
        driver.switch_to.default_content()


async def check_english(page: Dashboard, base: str) -> None:
    await page.click("lang")
    assert await page.script("return document.documentElement.lang") == "en"
    assert await page.text("title") == "Operations dashboard" and await page.text("lang") == "中文"
    assert await page.text("stations-title") == "Stations and live verdicts"
    card = f".order-card[data-order-id='{GIFT_ORDER}']"
    assert (await page.texts(f"{card} .component .text"))[0] == "面霜 Cream shipped with SF123"
    assert await page.texts(f"{card} .order-status") == ["shipped"]
    assert (await page.texts(f"{card} .clip-link"))[0].startswith("clip at ")
    assert "intercept" in await page.texts("#board-rows .kind")
    assert "refunded (REFUND_INITIATED) after the label" in " ".join(await page.texts("#board-rows .reason"))
    assert await page.texts(".station[data-station='A1'] .verdict-error .verdict-word") == ["extra"]
    await page.screenshot("lookup-en")
    await page.get(f"{base}/dashboard")  # remembered: the language, and the sign-in for this tab
    await page.wait_css("#board-rows tr.kind-intercept")
    assert await page.text("board-title") == "Anomaly board"
    assert (await page.texts("#board-counts .chip[data-kind='intercept'] .chip-name")) == ["intercept"]
    await page.screenshot("overview-en")
    await page.get(f"{base}/dashboard?lang=zh-CN")
    await page.wait(lambda d: d.find_element("id", "board-title").text == "异常看板")


async def test_the_dashboard_after_a_scripted_day_in_chromium(tmp_path):
    driver = await trio.to_thread.run_sync(browser_or_skip)
    await trio.to_thread.run_sync(lambda: driver.set_window_size(1400, 2400))
    page = Dashboard(driver)

    async def body(line: Line, printer: PrinterSimulator) -> None:
        base = line.services.bound[0]
        admin = line.services.api_token
        served = await line.client.get("/dashboard")
        assert served.status_code == 200, "the daemon does not serve /dashboard: add *dashboard_routes() to build_app"
        await check_sign_in(page, base, admin)
        await scripted_day(line, printer)
        assert line.services.ops is not None
        await line.services.ops.refresh("t1")
        trend = await earlier_trend_hours(line)
        await check_overview(page, line, trend)
        await check_ack(page, line)
        await check_viewer(page, line, admin)
        await check_lookup(page)
        await check_english(page, base)
        logs = await page.run(driver.get_log, "browser")
        unexpected = [entry for entry in logs if entry["level"] == "SEVERE" and "favicon" not in entry["message"]
                      and "gw_not_a_token" not in entry["message"]
                      and not re.search(r"status of (401|403|404)", entry["message"])]
        assert unexpected == []
        await page.get("about:blank")  # the event streams end before the gateway stops

    try:
        await run_line(tmp_path, body, extra="waybill_timeout_s = 1.5", catalog=CATALOG, tail=DOUYIN_TENANT)
    finally:
        await trio.to_thread.run_sync(driver.quit)

