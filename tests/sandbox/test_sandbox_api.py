"""The sandbox over real HTTP (``serve_http1`` on 127.0.0.1 serving ``build_app``), on a real store
with recorded traffic, a real pipeline and the live ``RuleHolder``: upload (a broken file is
refused with file:line: key), replay in a worker thread with progress, the report, and promotion
by roles (an operator cannot promote, an admin can; every POST is in the audit trail); the live
rules change only on promotion, the store's recorded events and outbox never.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import trio

from gateway._metrics import Metrics
from gateway._pipeline import Pipeline
from gateway._rules import RuleHolder
from gateway._server import Services, build_app, load_or_create_token, serve_http1
from gateway._server.tokens import API_AUDIT_TENANT, create_token
from gateway._settings import load_settings
from gateway._store import open_store, store_settings
from gateway._store.backup import summary
from tests.sandbox.world import RULES, TENANT, make_world

API = "/api/v1/sandbox/candidates"
WRONG = (RULES / "erp.toml").read_text(encoding="utf-8").replace("version = 1", "version = 2", 1).replace(
    'REFUNDING = "REFUND_INITIATED"', 'REFUNDING = "CANCELLED"')


@asynccontextmanager
async def sandbox_gateway(tmp_path: Path) -> AsyncIterator[SimpleNamespace]:
    world = make_world(tmp_path)
    settings = load_settings(world.config)
    store = open_store(store_settings(settings))
    try:
        pipeline = Pipeline(store, settings.pipeline, Metrics())
        services = Services(settings=settings, store=store, pipeline=pipeline, rules=RuleHolder(settings.rules_path),
                            metrics=pipeline.metrics, api_token=load_or_create_token(settings.token_path))
        _, operator = create_token(settings.tokens_path, "ops", "*", "operator", actor="test")
        _, tenant_admin = create_token(settings.tokens_path, "acme-admin", TENANT, "admin", actor="test",
                                       known_tenants={TENANT: {}})
        app = build_app(services)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(pipeline.serve)
            bound = await nursery.start(lambda task_status: serve_http1(
                app, [("127.0.0.1", 0)], shutdown_trigger=stop.wait, task_status=task_status))
            async with httpx.AsyncClient(base_url=bound[0], timeout=20) as client:
                try:
                    yield SimpleNamespace(services=services, store=store, client=client, world=world,
                                          admin={"Authorization": f"Bearer {services.api_token}"},
                                          operator={"Authorization": f"Bearer {operator}"},
                                          tenant_admin={"Authorization": f"Bearer {tenant_admin}"})
                finally:
                    stop.set()
                    pipeline.close()
                    nursery.cancel_scope.cancel()
    finally:
        store.close()


async def wait_for_report(gw: SimpleNamespace, candidate_id: str) -> dict[str, Any]:
    for _ in range(400):
        reply = await gw.client.get(f"{API}/{candidate_id}/report", headers=gw.operator)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        if body["replay"]["state"] != "running":
            return body
        await trio.sleep(0.05)
    raise AssertionError("the replay did not finish")


async def test_upload_replay_promote_with_roles_and_audit(tmp_path: Path) -> None:
    async with sandbox_gateway(tmp_path) as gw:
        api, live_digest = gw.client, gw.services.rules.current.digest
        recorded = summary(gw.store)
        # a broken file is refused like the live loader refuses it
        broken = WRONG.replace('REFUNDING = "CANCELLED"', 'REFUNDING = "REFUND_STARTED"')
        reply = await api.post(API, json={"files": {"erp.toml": broken}}, headers=gw.operator)
        assert reply.status_code == 400 and reply.json()["code"] == "invalid_rules"
        line = next(n for n, text in enumerate(broken.splitlines(), 1) if "REFUND_STARTED" in text)
        assert any(error.startswith(f"erp.toml:{line}: status.REFUNDING") for error in reply.json()["errors"])
        assert reply.json()["message_zh"]
        # bad names and a one-tenant token are refused
        assert (await api.post(API, json={"files": {"../x.toml": "x"}}, headers=gw.operator)).status_code == 400
        assert (await api.post(API, json={"files": {"erp.toml": WRONG}}, headers=gw.tenant_admin)).status_code == 403
        # the upload
        reply = await api.post(API, json={"files": {"erp.toml": WRONG}, "note": "refunds"}, headers=gw.operator)
        assert reply.status_code == 201, reply.text
        candidate = reply.json()
        assert candidate["changed"] == ["erp.toml"] and candidate["replay"] is None
        listed = (await api.get(API, headers=gw.operator)).json()["candidates"]
        assert [c["id"] for c in listed] == [candidate["id"]]
        assert (await api.get(f"{API}/{candidate['id']}", headers=gw.operator)).json()["texts"]["erp.toml"] == WRONG
        # the replay, in a worker thread
        reply = await api.post(f"{API}/{candidate['id']}/replay", json={"days": 400}, headers=gw.operator)
        assert reply.status_code == 202, reply.text
        body = await wait_for_report(gw, candidate["id"])
        assert body["replay"]["state"] == "done" and body["replay"]["done"] == 34 == body["replay"]["total"]
        report = body["report"]
        assert report["orders_changed"] == 3
        assert report["by_rule"][0]["rule"] == "erp.toml@v2:status.REFUNDING"
        assert {row["order_id"] for row in report["orders_changed_list"]} == {
            "douyin|A0002", "douyin|A0005", "douyin|A0007"}
        # nothing is live yet, nothing recorded changed
        assert gw.services.rules.current.digest == live_digest
        assert 'REFUNDING = "REFUND_INITIATED"' in (gw.world.rules / "erp.toml").read_text()
        after = summary(gw.store)
        assert after["tenants"][TENANT] == recorded["tenants"][TENANT] and after["outbox_seq"] == recorded["outbox_seq"]
        # an operator cannot promote; an admin can
        reply = await api.post(f"{API}/{candidate['id']}/promote", headers=gw.operator)
        assert reply.status_code == 403 and reply.json()["needed_role"] == "admin"
        assert gw.services.rules.current.digest == live_digest
        reply = await api.post(f"{API}/{candidate['id']}/promote", headers=gw.admin)
        assert reply.status_code == 200, reply.text
        assert reply.json()["rules_digest"] == gw.services.rules.current.digest != live_digest
        assert (gw.world.rules / "erp.toml").read_text() == WRONG
        assert not [p for p in gw.world.rules.iterdir() if p.name.startswith(".")]  # no temporary file left
        assert gw.services.rules.current.get("erp").rule_ref("REFUNDING") == "erp.toml@v2:status.REFUNDING"
        # every POST that changed something is audited, by token
        await trio.sleep(0.2)
        notes = [(r["actor"], r["note"]) for r in gw.store.iter_audit(API_AUDIT_TENANT)]
        assert ("token:ops", f"POST {API} -> 201") in notes
        assert ("token:ops", f"POST {API}/{candidate['id']}/replay -> 202") in notes
        assert ("token:admin", f"POST {API}/{candidate['id']}/promote -> 200") in notes
        promoted = next(r for r in gw.store.iter_audit(API_AUDIT_TENANT) if r["note"].endswith("/promote -> 200"))
        assert promoted["detail"]["files"] == ["erp.toml"] and promoted["detail"]["candidate"] == candidate["id"]
        assert not any(note.endswith("-> 403") for _, note in notes)


async def test_the_page_is_served(tmp_path: Path) -> None:
    async with sandbox_gateway(tmp_path) as gw:
        page = await gw.client.get("/sandbox")
        assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
        assert "/sandbox/_static/sandbox.js" in page.text and "script-src 'self'" in page.headers["content-security-policy"]
        script = await gw.client.get("/sandbox/_static/sandbox.js")
        assert script.status_code == 200 and "textContent" in script.text and "innerHTML" not in script.text
        assert (await gw.client.get("/sandbox/_static/other.js")).status_code == 404
        dashboard = await gw.client.get("/dashboard")
        assert 'href="/sandbox"' in dashboard.text


def click_action(action: str) -> Any:
    """A wait condition that clicks the candidate's ``action`` button, found afresh each try:
    the candidate list is re-rendered when the replay's state changes (a found button may be
    gone by the click)."""
    from selenium.common.exceptions import StaleElementReferenceException

    def click(driver: Any) -> bool:
        try:
            driver.find_element("css selector", f"button[data-action='{action}']").click()
        except StaleElementReferenceException:
            return False
        return True

    return click


async def test_the_page_in_a_browser(tmp_path: Path) -> None:
    """Headless Chromium: sign in, upload a file, replay, read the report (zh-CN, then English)."""
    from tests.server.test_station_page import ARTIFACTS, Page, browser_or_skip

    driver = browser_or_skip()
    page = Page(driver)
    candidate_file = tmp_path / "upload" / "erp.toml"
    candidate_file.parent.mkdir()
    candidate_file.write_text(WRONG, encoding="utf-8")
    try:
        async with sandbox_gateway(tmp_path / "gw") as gw:
            base = str(gw.client.base_url).rstrip("/")
            await page.get(base + "/sandbox")
            await page.run(lambda: driver.find_element("id", "token").send_keys(gw.services.api_token))
            await page.click("sign-in-button")
            await page.wait(lambda d: d.find_element("id", "main").is_displayed())
            await page.run(lambda: driver.find_element("id", "files").send_keys(str(candidate_file)))
            await page.click("upload")
            await page.wait(lambda d: "erp.toml" in d.find_element("id", "upload-result").text)
            await page.script("document.getElementById('days').value = '400'")
            await page.wait(click_action("replay"))
            await page.wait(lambda d: "3" in d.find_element("id", "report-summary").text, timeout_s=20)
            summary_zh = await page.text("report-summary")
            assert "结果会改变的订单：3" in summary_zh
            assert "erp.toml@v2:status.REFUNDING" in await page.script(
                "return document.getElementById('rule-rows').textContent")
            await page.click("lang")
            await page.wait(click_action("report"))  # the list re-renders as the replay state changes
            await page.wait(lambda d: "orders that would change: 3" in d.find_element("id", "report-summary").text)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.run(driver.save_screenshot, str(ARTIFACTS / "sandbox-report.png"))
            assert 'REFUNDING = "REFUND_INITIATED"' in (gw.world.rules / "erp.toml").read_text()  # not promoted
    finally:
        await page.run(driver.quit)
