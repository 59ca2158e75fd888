"""End to end on real parts: signed Douyin and Xiaohongshu pushes to the daemon (real HTTP on
127.0.0.1, real RocksDB in tmp_path, the shipped rules and customs seed), then the customs API.

The cross-border fact a first push carries (Douyin ``biz`` 21, Xiaohongshu ``orderStatus`` 3)
is stored with the order and survives later pushes that lack it: the store keeps the order's
data merged field by field, not replaced by the last push.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from gateway._daemon import serve_gateway
from gateway._settings import load_settings
from tests._support import douyin_request, write_platform_config, xiaohongshu_request
from tests.customs.support import seed_copy

P_ID = 6919000000000000001


def _douyin(tag: str, biz: int | None) -> dict[str, Any]:
    data: dict[str, Any] = {"p_id": P_ID, "s_ids": [P_ID + 1], "shop_id": 78, "order_status": 1, "order_type": 0,
                            "pay_amount": 12900}
    if biz is not None:
        data["biz"] = biz
    return {"tag": tag, "msg_id": f"70000000000000{tag}01", "data": data}


def _xiaohongshu(order_id: str, status: int, at_ms: int) -> dict[str, Any]:
    return {"msgTag": "msg_fulfillment_status_change", "sellerId": "s-cn-2",
            "data": {"orderId": order_id, "orderStatus": status, "updateTime": at_ms}}


async def test_platform_cross_border_facts_survive_later_pushes(tmp_path, nursery):
    seed_copy(tmp_path / "customs")  # [customs] dir = "customs", next to gateway.toml
    settings = load_settings(write_platform_config(tmp_path))
    shutdown = trio.Event()
    services = await nursery.start(serve_gateway, settings, shutdown)
    base = services.bound[0]
    auth = {"Authorization": f"Bearer {services.api_token}"}
    async with httpx.AsyncClient(base_url=base if "://" in base else f"http://{base}", timeout=10) as client:

        async def push(source: str, request: tuple[bytes, dict[str, str]]) -> None:
            body, headers = request
            reply = await client.post(f"/webhooks/{source}/t1", content=body, headers=headers)
            assert reply.status_code == 200, reply.text

        async def customs(order_id: str) -> dict[str, Any]:
            reply = await client.get(f"/api/v1/tenants/t1/customs/orders/{order_id}", headers=auth)
            assert reply.status_code == 200, reply.text
            return dict(reply.json())

        await push("douyin", douyin_request([_douyin("100", 21)]))
        await push("douyin", douyin_request([_douyin("101", None)]))
        order = services.store.get_order("t1", f"douyin|{P_ID}")
        assert order is not None and order.status.value == "PENDING_REVIEW" and order.data["biz"] == 21
        found = await customs(f"douyin|{P_ID}")
        assert found["cross_border"] is True and found["cross_border_because"] == "code:biz=21"

        await push("xiaohongshu", xiaohongshu_request([_xiaohongshu("P771234", 3, 1764036000000)]))
        await push("xiaohongshu", xiaohongshu_request([_xiaohongshu("P771234", 4, 1764036060000)]))
        order = services.store.get_order("t1", "xiaohongshu|P771234")
        assert order is not None and order.data["platform_status"] == 4 and order.data["xhs_cross_border"] is True
        found = await customs("xiaohongshu|P771234")
        assert found["cross_border"] is True and found["cross_border_because"] == "flag:xhs_cross_border"

        await push("xiaohongshu", xiaohongshu_request([_xiaohongshu("P771235", 2, 1764036000000)]))
        await push("xiaohongshu", xiaohongshu_request([_xiaohongshu("P771235", 4, 1764036060000)]))
        assert (await customs("xiaohongshu|P771235"))["cross_border"] is False
    shutdown.set()
