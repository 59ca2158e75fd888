"""The pre-declaration board page in headless Chromium (selenium) over a real gateway: sign in,
see which record fills the missing attribute, switch to English, import the fill file."""

from __future__ import annotations

import trio

from tests._support import erp_event
from tests._support.packline import Line, run_line
from tests.customs.support import PRODUCTS_CSV, SUPPLIERS_CSV, seed_copy
from tests.server.test_station_page import Page, browser_or_skip


async def test_the_board_page_lists_fills_and_imports_in_chromium(tmp_path):
    driver = await trio.to_thread.run_sync(browser_or_skip)
    page = Page(driver)
    seed_copy(tmp_path / "customs")
    fill = tmp_path / "fill.csv"
    fill.write_text("target,id,sku,attribute,value\nsupplier,SUP-A,,contains_animal_extract,是\n", encoding="utf-8")

    async def body(line: Line, printer) -> None:
        for kind, text in (("suppliers", SUPPLIERS_CSV), ("products", PRODUCTS_CSV)):
            reply = await line.client.post(f"/api/v1/tenants/t1/customs/{kind}", content=text.encode(),
                                           headers=line.auth)
            assert reply.status_code == 200, reply.text
        await line.post(erp_event(1, "READY_TO_PACK", warehouse="BONDED-NB"))
        await page.get(f"{line.services.bound[0]}/customs?lang=zh-CN")
        await page.wait(lambda d: d.find_element("id", "sign-in-title").text == "登录")
        await page.run(lambda: driver.find_element("id", "token").send_keys(line.services.api_token))
        await page.run(lambda: driver.find_element("id", "tenant").send_keys("t1"))
        await page.click("sign-in-button")
        await page.wait(lambda d: "douyin|DY00000001" in d.find_element("id", "rows").text)
        rows = await page.text("rows")
        assert "供应商 SUP-A" in rows and "是否含动物提取物" in rows
        assert await page.text("summary") == "待补齐 1 单 · 已齐全 0 单"
        await page.click("lang")
        await page.wait(lambda d: d.find_element("id", "board-title").text.startswith("Cross-border orders"))
        assert "supplier SUP-A" in await page.text("rows")
        await page.run(lambda: driver.find_element("id", "import-file").send_keys(str(fill)))
        await page.click("import-button")
        await page.wait(lambda d: d.find_element("id", "import-result").text.startswith("Imported 1 rows"))
        await page.wait(lambda d: "No cross-border order" in d.find_element("id", "rows").text)
        logs = await page.run(driver.get_log, "browser")
        assert [e for e in logs if e["level"] == "SEVERE" and "favicon" not in e["message"]] == []
        await page.get("about:blank")

    try:
        await run_line(tmp_path, body)
    finally:
        await trio.to_thread.run_sync(driver.quit)
