"""Platform pushes carry the cross-border facts to the customs check (the shipped rule files).

Each test signs a platform's webhook body as the platform would (``tests._support``), lets the
real adapter verify and decode it, normalises it with the shipped rules
(``config/rules/*.toml``), plans the order with the real processing step and asks the real
customs code (``declare`` with the shipped ``config/customs``) whether it needs a declaration:

* Tmall: TOP's ``cross_bonded_declare`` / ``post_gate_declare`` (flag_fields);
* Youzan: ``order_tags.is_cross_border`` (flag_fields; a documented guess);
* Douyin, Xiaohongshu, Pinduoduo: no flag in the push; their shop id (mapped by every platform
  file) is what ``[cross_border] shops`` lists for a cross-border shop.

The same push without those fields (or with the flag false, or another shop) stays domestic.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from gateway._customs import CustomsConfig, declare, load_customs
from gateway._ingest.adapters.douyin import DouyinAdapter
from gateway._ingest.adapters.pinduoduo import PinduoduoAdapter
from gateway._ingest.adapters.tmall import TmallAdapter
from gateway._ingest.adapters.xiaohongshu import XiaohongshuAdapter
from gateway._ingest.adapters.youzan import YouzanAdapter
from gateway._model import Status
from tests._support import (
    adapter_request,
    credentials_for,
    douyin_request,
    normalised,
    pdd_request,
    tmall_request,
    xiaohongshu_request,
    youzan_request,
)
from tests._support.steps import World
from tests.customs.support import SEED

SHIPPED = load_customs(SEED)
LINES = [{"sku": "A1", "qty": 1}]


def _order(source: str, adapter: Any, body: bytes, headers: dict[str, str], now_s: float) -> Any:
    """The order a signed push leaves: verified, decoded, normalised, planned (as the pipeline does)."""
    request = adapter_request(body, headers)
    adapter.verify(request, credentials_for("t1", source), now_s)
    events = normalised(source, adapter.decode(request))
    assert events and all(e.order_id for e in events)
    world = World()
    world.plan(events)
    [order] = world.orders.values()
    order.data.setdefault("lines", LINES)  # the full order (its lines) comes from the ERP feed
    return order


def _because(order: Any, config: CustomsConfig = SHIPPED) -> str | None:
    declaration = declare(order, config, {}, {})
    return None if declaration is None else declaration.because


def _with_shops(tmp_path: Path, *shops: str) -> CustomsConfig:
    """The shipped customs configuration with ``shops`` listed as cross-border shops."""
    target = tmp_path / "customs"
    target.mkdir()
    for name in ("attributes.toml", "fill_rules.toml"):
        (target / name).write_text((SEED / name).read_text(encoding="utf-8"), encoding="utf-8")
    text = (target / "attributes.toml").read_text(encoding="utf-8")
    assert "shops = []" in text
    listed = ", ".join(f'"{shop}"' for shop in shops)
    (target / "attributes.toml").write_text(text.replace("shops = []", f"shops = [{listed}]"), encoding="utf-8")
    return load_customs(target)


# -- Tmall (TOP / TMC): cross_bonded_declare, post_gate_declare -----------------------------------

def _tmall(**content: Any) -> Any:
    message = {"id": "6142200092063758446", "topic": "taobao_trade_TradeBuyerPay", "pub_time": "2026-11-25 10:00:00",
               "user_id": "2200", "user_nick": "shop",
               "content": {"tid": 586070597376760, "oid": 586070597376760, "buyer_nick": "b***", "payment": "30.36",
                           **content}}
    body, headers = tmall_request(message)
    return _order("tmall", TmallAdapter(), body, headers, time.time())


@pytest.mark.parametrize("field", ["cross_bonded_declare", "post_gate_declare"])
def test_a_tmall_cross_border_trade_needs_a_declaration(field):
    order = _tmall(**{field: True})
    assert order.status is Status.PENDING_REVIEW and order.data[field] is True
    assert _because(order) == f"flag:{field}"


def test_a_tmall_trade_without_the_flags_or_with_them_false_stays_domestic():
    assert _because(_tmall()) is None
    assert _because(_tmall(cross_bonded_declare=False, post_gate_declare=False)) is None


# -- Youzan: order_tags.is_cross_border (documented guess) ------------------------------------------

def _youzan(tags: dict[str, Any] | None) -> Any:
    tid = "E20261125100000074004153"
    msg: dict[str, Any] = {"tid": tid, "update_time": "2026-11-25 10:00:00"}
    if tags is not None:
        msg["full_order_info"] = {"order_info": {"tid": tid, "order_tags": tags}}
    body, headers = youzan_request({"id": tid, "kdt_id": 56232, "kdt_name": "店", "type": "trade_TradeBuyerPay",
                                    "status": "WAIT_SELLER_SEND_GOODS", "msg_id": "6dc15f0b-bbbb", "sendCount": 1,
                                    "version": 1764036000, "msg": msg})
    return _order("youzan", YouzanAdapter(), body, headers, 1_764_036_000.0)


def test_a_youzan_cross_border_order_needs_a_declaration():
    order = _youzan({"is_cross_border": True, "is_virtual": False})
    assert order.status is Status.PENDING_REVIEW
    assert _because(order) == "flag:is_cross_border"


def test_a_youzan_order_without_the_tag_or_with_it_false_stays_domestic():
    assert _because(_youzan(None)) is None
    assert _because(_youzan({"is_cross_border": False})) is None


# -- Douyin, Xiaohongshu, Pinduoduo: the cross-border shop ---------------------------------------

def _douyin(shop_id: int, biz: int) -> Any:
    paid = {"tag": "101", "msg_id": "7000000000000000001",
            "data": {"p_id": 6919000000000000001, "s_ids": [6919000000000000002], "shop_id": shop_id,
                     "order_status": 2, "order_type": 0, "biz": biz, "pay_amount": 12900, "pay_time": 1764036000,
                     "pay_type": 1}}
    body, headers = douyin_request([paid])
    return _order("douyin", DouyinAdapter(), body, headers, 1_764_036_000.0)


def _xiaohongshu(seller: str) -> Any:
    clearing = {"msgTag": "msg_fulfillment_status_change", "sellerId": seller,
                "data": {"orderId": "P771234", "orderStatus": 3, "updateTime": 1764036000000}}
    body, headers = xiaohongshu_request([clearing])
    return _order("xiaohongshu", XiaohongshuAdapter(), body, headers, 1_764_036_000.0)


def _pinduoduo(mall: int) -> Any:
    confirmed = {"id": 7123456789, "commandType": "Common", "sendTime": 1764036000000,
                 "message": {"type": "pdd_trade_TradeConfirmed", "mallID": mall,
                             "content": {"tid": "251125-123456789", "mall_id": mall, "order_status": 1}}}
    body, headers = pdd_request([confirmed])
    return _order("pinduoduo", PinduoduoAdapter(), body, headers, time.time())


def test_douyin_xiaohongshu_and_pinduoduo_cross_border_shops_need_a_declaration(tmp_path):
    config = _with_shops(tmp_path, "77", "s-hk-1", "9")
    douyin = _douyin(77, biz=21)
    assert douyin.data["biz"] == 21  # 跨境BBC: kept on the order (the check reads the shop)
    assert _because(douyin, config) == "shop:77"
    xiaohongshu = _xiaohongshu("s-hk-1")
    assert xiaohongshu.data["platform_status"] == 3  # customs clearance
    assert _because(xiaohongshu, config) == "shop:s-hk-1"
    assert _because(_pinduoduo(9), config) == "shop:9"


def test_other_shops_of_those_platforms_stay_domestic(tmp_path):
    config = _with_shops(tmp_path, "77", "s-hk-1", "9")
    assert _because(_douyin(78, biz=2), config) is None
    assert _because(_xiaohongshu("s-cn-2"), config) is None
    assert _because(_pinduoduo(10), config) is None
    # The shipped configuration lists no shop: every platform push is domestic until one is listed.
    assert _because(_douyin(77, biz=21)) is None and _because(_pinduoduo(9)) is None


def test_every_flag_a_platform_file_maps_is_a_flag_field_of_the_shipped_configuration():
    from gateway._rules import load_rules

    rules = load_rules(SEED.parent / "rules")
    flags = {"tmall": {"cross_bonded_declare", "post_gate_declare"}, "youzan": {"is_cross_border"}}
    for source, names in flags.items():
        mapped = rules.get(source)
        assert mapped is not None and names <= set(mapped.data), source
        assert names <= set(SHIPPED.cross_border.flag_fields), source
    for source in ("douyin", "xiaohongshu", "youzan", "pinduoduo"):
        assert "shop_id" in rules.get(source).data, source
