"""Xiaohongshu adapter: an orderStatus 3 (customs clearance) push is marked cross-border in its data."""

from __future__ import annotations

from typing import Any

import pytest

from gateway._ingest.adapters.xiaohongshu import CROSS_BORDER_KEY, XiaohongshuAdapter
from tests._support import adapter_request, normalised, xiaohongshu_request

adapter = XiaohongshuAdapter()


def decoded(status: Any, tag: str = "msg_fulfillment_status_change") -> dict[str, Any]:
    data: dict[str, Any] = {"orderId": "P771234", "updateTime": 1764036000000}
    if status is not None:
        data["orderStatus"] = status
    body, headers = xiaohongshu_request([{"msgTag": tag, "sellerId": "s-1", "data": data}])
    [item] = adapter.decode(adapter_request(body, headers))
    return item


@pytest.mark.parametrize("status", [3, "3", " 3 "])
def test_customs_clearance_adds_the_flag(status):
    item = decoded(status)
    assert item["data"][CROSS_BORDER_KEY] is True
    assert item["data"]["orderStatus"] == status  # the platform's own value is kept as sent
    [event] = normalised("xiaohongshu", [item])
    assert event.data["xhs_cross_border"] is True and event.data["platform_status"] == status


@pytest.mark.parametrize("status", [1, 2, 4, 6, 30, "30", "", True, 3.5, None])
def test_other_statuses_add_nothing(status):
    item = decoded(status, "msg_after_sale_create" if status is None else "msg_fulfillment_status_change")
    assert CROSS_BORDER_KEY not in item["data"]
    assert "xhs_cross_border" not in normalised("xiaohongshu", [item])[0].data


def test_an_after_sale_message_of_an_order_in_clearance_is_marked_too():
    item = decoded(3, "msg_after_sale_create")
    assert item["data"][CROSS_BORDER_KEY] is True
