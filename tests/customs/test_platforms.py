"""Platform pushes carry the cross-border facts to the customs check (the shipped rule files).

Each test signs a platform's webhook body as the platform would (``tests._support``), lets the
real adapter verify and decode it, normalises it with the shipped rules
(``config/rules/*.toml``), plans the order with the real processing step and asks the real
customs code (``declare`` with the shipped ``config/customs``) whether it needs a declaration:

* Tmall: TOP's ``cross_bonded_declare`` / ``post_gate_declare`` (flag_fields);
* Youzan: ``order_tags.is_cross_border`` (flag_fields; a documented guess);
* Douyin: the business source ``biz`` of tags 100/101 (``codes``: 21, 22, 23, 102);
* Xiaohongshu: ``orderStatus`` 3 (customs clearance), which the adapter turns into a lasting
  ``data.crossBorder`` (``xhs_cross_border``, flag_fields);
* Douyin, Xiaohongshu, Pinduoduo: their shop id (mapped by every platform file) is what
  ``[cross_border] shops`` lists for a cross-border shop.

The same push without those fields (or with the flag false, another code, another shop) stays
domestic. A flag or code stays on the order when later pushes of the same order lack it: the
processing step merges the fields an event carries into the order's data.
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


def _order(source: str, adapter: Any, body: bytes, headers: dict[str, str], now_s: float,
           world: World | None = None) -> Any:
    """The order a signed push leaves: verified, decoded, normalised, planned (as the pipeline does);
    pass the ``world`` of earlier pushes to see what a later one leaves."""
    request = adapter_request(body, headers)
    adapter.verify(request, credentials_for("t1", source), now_s)
    events = normalised(source, adapter.decode(request))
    assert events and all(e.order_id for e in events)
    world = World() if world is None else world
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

def _douyin(shop_id: int, biz: int | None, tag: str = "101", world: World | None = None) -> Any:
    """A Douyin push of ``tag`` (100 created, 101 paid, 105 address changed); ``biz=None``: without biz."""
    data: dict[str, Any] = {"p_id": 6919000000000000001, "s_ids": [6919000000000000002], "shop_id": shop_id,
                            "order_status": 2, "order_type": 0, "pay_amount": 12900, "pay_time": 1764036000,
                            "pay_type": 1}
    if biz is not None:
        data["biz"] = biz
    push = {"tag": tag, "msg_id": f"70000000000000{tag}01", "data": data}
    body, headers = douyin_request([push])
    return _order("douyin", DouyinAdapter(), body, headers, 1_764_036_000.0, world)


def _xiaohongshu(seller: str, status: Any = 3, world: World | None = None, at_ms: int = 1764036000000) -> Any:
    """A Xiaohongshu status push (3: customs clearance, 4: awaiting shipment, 6: shipped)."""
    push = {"msgTag": "msg_fulfillment_status_change", "sellerId": seller,
            "data": {"orderId": "P771234", "orderStatus": status, "updateTime": at_ms}}
    body, headers = xiaohongshu_request([push])
    return _order("xiaohongshu", XiaohongshuAdapter(), body, headers, 1_764_036_000.0, world)


def _pinduoduo(mall: int) -> Any:
    confirmed = {"id": 7123456789, "commandType": "Common", "sendTime": 1764036000000,
                 "message": {"type": "pdd_trade_TradeConfirmed", "mallID": mall,
                             "content": {"tid": "251125-123456789", "mall_id": mall, "order_status": 1}}}
    body, headers = pdd_request([confirmed])
    return _order("pinduoduo", PinduoduoAdapter(), body, headers, time.time())


def test_douyin_xiaohongshu_and_pinduoduo_cross_border_shops_need_a_declaration(tmp_path):
    config = _with_shops(tmp_path, "77", "s-hk-1", "9")
    douyin = _douyin(77, biz=2)  # a listed shop's order whose biz names no cross-border business
    assert douyin.data["biz"] == 2
    assert _because(douyin, config) == "shop:77"
    xiaohongshu = _xiaohongshu("s-hk-1", status=4)  # first seen after its clearance: no flag
    assert xiaohongshu.data["platform_status"] == 4 and "xhs_cross_border" not in xiaohongshu.data
    assert _because(xiaohongshu, config) == "shop:s-hk-1"
    assert _because(_pinduoduo(9), config) == "shop:9"


def test_other_shops_of_those_platforms_stay_domestic(tmp_path):
    config = _with_shops(tmp_path, "77", "s-hk-1", "9")
    assert _because(_douyin(78, biz=2), config) is None
    assert _because(_xiaohongshu("s-cn-2", status=4), config) is None
    assert _because(_pinduoduo(10), config) is None
    # The shipped configuration lists no shop: a push without a flag or code is domestic until one is listed.
    assert _because(_douyin(77, biz=2)) is None and _because(_pinduoduo(9)) is None
    assert _because(_xiaohongshu("s-hk-1", status=4)) is None


def test_every_flag_a_platform_file_maps_is_a_flag_field_of_the_shipped_configuration():
    from gateway._rules import load_rules

    rules = load_rules(SEED.parent / "rules")
    flags = {"tmall": {"cross_bonded_declare", "post_gate_declare"}, "youzan": {"is_cross_border"},
             "xiaohongshu": {"xhs_cross_border"}}
    for source, names in flags.items():
        mapped = rules.get(source)
        assert mapped is not None and names <= set(mapped.data), source
        assert names <= set(SHIPPED.cross_border.flag_fields), source
    for source in ("douyin", "xiaohongshu", "youzan", "pinduoduo"):
        assert "shop_id" in rules.get(source).data, source
    codes = dict(SHIPPED.cross_border.codes)
    assert "biz" in rules.get("douyin").data and codes["biz"] == ("21", "22", "23", "102")


# -- Douyin: the business source biz (codes) ------------------------------------------------------

@pytest.mark.parametrize("biz", [21, 22, 23, 102, "21"])
def test_a_douyin_cross_border_business_source_needs_a_declaration(biz):
    order = _douyin(78, biz=biz, tag="100")  # created; no shop listed
    assert order.status is Status.CREATED and order.data["biz"] == biz
    assert _because(order) == f"code:biz={biz}"


def test_a_douyin_order_stays_cross_border_when_later_pushes_lack_biz():
    world = World()
    assert _because(_douyin(78, biz=21, tag="100", world=world)) == "code:biz=21"
    paid = _douyin(78, biz=None, tag="101", world=world)  # paid, no biz in this push
    assert paid.status is Status.PENDING_REVIEW and paid.data["biz"] == 21
    assert _because(paid) == "code:biz=21"
    moved = _douyin(78, biz=None, tag="105", world=world)  # receiver changed
    assert moved.data["biz"] == 21 and _because(moved) == "code:biz=21"


@pytest.mark.parametrize("biz", [0, 2, 1021, None])
def test_other_douyin_business_sources_stay_domestic(biz):
    world = World()
    _douyin(78, biz=biz, tag="100", world=world)
    assert _because(_douyin(78, biz=None, tag="101", world=world)) is None


# -- Xiaohongshu: orderStatus 3 (customs clearance) as a lasting flag --------------------------------

def test_a_xiaohongshu_order_in_customs_clearance_needs_a_declaration():
    order = _xiaohongshu("s-cn-2", status=3)
    assert order.data["xhs_cross_border"] is True and order.data["platform_status"] == 3
    assert _because(order) == "flag:xhs_cross_border"
    assert _because(_xiaohongshu("s-cn-2", status="3")) == "flag:xhs_cross_border"


def test_a_xiaohongshu_order_stays_cross_border_after_later_status_pushes():
    world = World()
    _xiaohongshu("s-cn-2", status=3, world=world)
    awaiting = _xiaohongshu("s-cn-2", status=4, world=world, at_ms=1764036060000)
    assert awaiting.status is Status.PENDING_REVIEW
    assert awaiting.data["platform_status"] == 4  # overwritten, while the flag stays
    assert awaiting.data["xhs_cross_border"] is True
    assert _because(awaiting) == "flag:xhs_cross_border"


@pytest.mark.parametrize("statuses", [(2, 4), (1, 2, 4, 6), (4,)])
def test_a_plain_xiaohongshu_order_stays_domestic(statuses):
    world = World()
    for index, status in enumerate(statuses):
        order = _xiaohongshu("s-cn-2", status=status, world=world, at_ms=1764036000000 + index * 60_000)
    assert "xhs_cross_border" not in order.data
    assert _because(order) is None
