"""Releasing quarantined events after a rule fix: the real daemon, real rule files, real RocksDB."""

from __future__ import annotations

import httpx
import trio

from gateway._daemon import serve_gateway
from gateway._settings import load_settings, with_overrides
from tests._support import RULES, copy_tree, erp_event, signed, write_config


async def test_a_fixed_rule_releases_the_quarantined_event_and_the_order_moves(tmp_path):
    rules = copy_tree(RULES, tmp_path / "rules")
    settings = with_overrides(load_settings(write_config(tmp_path)), gateway={"rules_dir": str(rules)})
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, trio.Event())
        auth = {"Authorization": f"Bearer {services.api_token}"}
        async with httpx.AsyncClient(base_url=services.bound[0], timeout=10) as client:
            events = [erp_event(1, "PAID", order="DY1"), erp_event(2, "WAVE_RELEASED", order="DY1"),
                      erp_event(3, "STILL_UNKNOWN", order="DY1")]
            body, headers = signed(events)
            reply = (await client.post("/webhooks/erp/t1", content=body, headers=headers)).json()
            assert [r["outcome"] for r in reply["results"]] == ["new", "quarantined", "quarantined"]
            quarantined = (await client.get("/api/v1/tenants/t1/quarantine", headers=auth)).json()
            wave = next(q for q in quarantined["items"] if q["raw_status"] == "WAVE_RELEASED")

            # nothing maps yet: nothing moves, both stay
            early = (await client.post("/api/v1/tenants/t1/quarantine/release", json={"all": True},
                                       headers=auth)).json()
            assert early["released"] == 0 and early["quarantined"] == 2
            assert {k["seq"] for k in early["kept"]} == {q["seq"] for q in quarantined["items"]}

            # operations staff map the WMS wave release onto the standard state, and reload
            erp = rules / "erp.toml"
            erp.write_text(erp.read_text().replace('[status]\n', '[status]\nWAVE_RELEASED = "READY_TO_PACK"\n', 1))
            assert (await client.post("/api/v1/rules/reload", headers=auth)).json()["ok"]
            refused = await client.post("/api/v1/tenants/t1/quarantine/release", json={"ids": [0]}, headers=auth)
            assert refused.status_code == 400
            released = (await client.post("/api/v1/tenants/t1/quarantine/release", json={"all": True},
                                          headers=auth)).json()
            assert released["released"] == 1 and released["quarantined"] == 1
            assert released["results"][0]["seq"] == wave["seq"]
            assert released["results"][0]["status"] == "READY_TO_PACK"
            assert [k["reason"] for k in released["kept"]] == ["raw status 'STILL_UNKNOWN' is still unknown"]

            store = services.store
            assert store.get_order("t1", "douyin|DY1").status.value == "READY_TO_PACK"
            [audit] = [a for a in store.iter_audit("t1", "douyin|DY1") if "released" in a["note"]]
            assert f"seq {wave['seq']}" in audit["note"] and "erp.toml" in audit["note"]
            assert any(o["status"] == "READY_TO_PACK" for o in store.iter_outbox())  # the ERP hears of it
            assert [e.get("released_from_quarantine") for e in store.iter_events("t1")][-1] == wave["seq"]
            again = (await client.post("/api/v1/tenants/t1/quarantine/release", json={"ids": [wave["seq"]]},
                                       headers=auth)).json()
            assert again["released"] == 0 and again["kept"] == [{"seq": wave["seq"],
                                                                 "reason": "no such quarantined record"}]
            assert store.verify_audit_chain("t1").ok
        nursery.cancel_scope.cancel()
