"""``find_buyer`` on a real store fed through the real processing step (``plan_step`` + commit).

No pack line here (``test_lookup_line`` has one): orders arrive from the ERP feed and from
Tmall's TMC messages, normalised by the shipped rules, so buyer keys and indexes are exactly
what the pipeline writes. Checked: the nick is found through the Tmall rules' ``buyer_id``
identity; one hop from an order's own buyer key joins a buyer's orders that sources keyed
differently; the window; bad input; a bill rebuilt from the order and its plan before any
session (component ids as the pack line numbers them).
"""

from __future__ import annotations

from typing import Any

import pytest

import core_ext
from gateway._ops_lookup import LookupInputError, find_buyer
from gateway._pipeline import plan_step
from gateway._rules import load_rules, normalise_batch
from gateway._store import StepWrite, Store, StoreSettings, open_store
from tests._support import RULES, erp_event

NOW = 1_796_400_000_000  # 2026-12-04
DAY = 86_400_000


@pytest.fixture(scope="module")
def rules() -> Any:
    return load_rules(RULES)


@pytest.fixture
def store(tmp_path: Any) -> Any:
    with open_store(StoreSettings(path=tmp_path / "rocksdb")) as opened:
        yield opened


def feed(store: Store, rules: Any, source: str, raw: dict[str, Any], at_ms: int) -> None:
    source_rules = rules.get(source)
    events = normalise_batch(source_rules, "t1", [raw], at_ms)
    plan = plan_step(events, store.get_order, store.seen_fingerprint, store.order_for_waybill,
                     store.orders_for_buyer, at_ms, merge_window_ms=0)
    store.commit(plan.write)


def tmall(message_id: int, tid: int, nick: str, open_uid: str = "") -> dict[str, Any]:
    content: dict[str, Any] = {"tid": tid, "buyer_nick": nick, "payment": "59.00", "seller_nick": "shop"}
    if open_uid:
        content["buyer_open_uid"] = open_uid
    return {"id": message_id, "topic": "taobao_trade_TradeBuyerPay", "pub_time": "2026-12-04 10:00:00",
            "content": content}


def test_a_nick_finds_tmall_orders_through_the_buyer_id_identity(store, rules):
    feed(store, rules, "tmall", tmall(1, 5001, "小明的店铺买家"), NOW - DAY)
    feed(store, rules, "tmall", tmall(2, 5002, "小明的店铺买家"), NOW - 2 * DAY)
    found = find_buyer(store, "t1", nick=" 小明的店铺买家 ", now_ms=NOW)
    assert [o.order_id for o in found.orders] == ["tmall|5001", "tmall|5002"]
    assert found.orders[0].amounts == {"amount": 59.0} and found.matched_by == "nick"
    # With buyer_open_uid the rules key the order by it (the first identity present); the nick is
    # indexed too (an alias, for the lookup only), so the agent still finds it by the nick.
    feed(store, rules, "tmall", tmall(3, 5003, "另一个买家", open_uid="AAEx-open-uid"), NOW - DAY)
    assert [o.order_id for o in find_buyer(store, "t1", nick="另一个买家", now_ms=NOW).orders] == ["tmall|5003"]
    assert [o.order_id for o in find_buyer(store, "t1", nick="AAEx-open-uid", now_ms=NOW).orders] == ["tmall|5003"]
    assert store.get_order("t1", "tmall|5003").buyer_key == core_ext.buyer_key("t1", "buyer_id", "AAEx-open-uid")


def test_one_hop_joins_orders_the_sources_keyed_by_another_identity(store, rules):
    feed(store, rules, "tmall", tmall(1, 6001, "buyer-nick-1"), NOW - 3 * DAY)  # keyed by the nick
    # The ERP later reports the same Tmall order with the phone: its buyer key becomes the phone's.
    feed(store, rules, "erp", erp_event(1, "PAID", "6001", platform="tmall"), NOW - 3 * DAY + 1000)
    feed(store, rules, "tmall", tmall(2, 6002, "buyer-nick-1"), NOW - 2 * DAY)  # only ever keyed by the nick
    feed(store, rules, "erp", erp_event(2, "PAID", "DY7001"), NOW - DAY)  # Douyin, via the ERP: the phone
    by_phone = find_buyer(store, "t1", phone="13800138000", now_ms=NOW)
    assert [o.order_id for o in by_phone.orders] == ["douyin|DY7001", "tmall|6001"]
    by_order = find_buyer(store, "t1", order_id="tmall|6002", now_ms=NOW)
    assert [o.order_id for o in by_order.orders] == ["douyin|DY7001", "tmall|6002", "tmall|6001"]
    assert len(by_order.buyer_keys) == 2


def test_the_window_is_counted_on_first_seen_and_an_old_order_asked_by_id_is_flagged(store, rules):
    feed(store, rules, "erp", erp_event(1, "PAID", "DY1"), NOW - 31 * DAY)
    feed(store, rules, "erp", erp_event(2, "PAID", "DY2"), NOW - 29 * DAY)
    assert [o.order_id for o in find_buyer(store, "t1", phone="138-0013-8000", now_ms=NOW).orders] == ["douyin|DY2"]
    assert len(find_buyer(store, "t1", phone="138-0013-8000", now_ms=NOW, window_days=40).orders) == 2
    old = find_buyer(store, "t1", order_id="DY1", now_ms=NOW)
    assert [o.order_id for o in old.orders] == ["douyin|DY2", "douyin|DY1"]
    assert old.notes_zh == ("该订单早于 30 天",)
    assert find_buyer(store, "t2", phone="138-0013-8000", now_ms=NOW).orders == ()  # another tenant: nothing


@pytest.mark.parametrize("kwargs", [{}, {"phone": "  "}, {"phone": "1380", "waybill": "SF1"}, {"phone": "12-34"}])
def test_bad_input_says_what_to_give(store, kwargs):
    with pytest.raises(LookupInputError) as caught:
        find_buyer(store, "t1", **kwargs)
    assert caught.value.message_zh and caught.value.message_en


def test_unknown_order_or_waybill_is_an_empty_answer_with_a_note(store):
    for kwargs in ({"order_id": "douyin|NOPE"}, {"waybill": "SF000"}):
        found = find_buyer(store, "t1", **kwargs, now_ms=NOW)
        assert found.orders == () and found.notes_en == ("no order has this order id or waybill",)


def test_before_any_session_the_bill_is_rebuilt_with_the_planned_gifts(store, rules):
    feed(store, rules, "erp", erp_event(1, "READY_TO_PACK", "DY1", lines=[{"sku": "KIT-1", "qty": 1}],
                                         gifts=["SAMPLE-9"]), NOW - DAY)
    store.commit(StepWrite(records=[
        ("t1", "product", "KIT-1", {"sku": "KIT-1", "name": "套装 Kit", "parts": [["A1", 2], ["TRIAL-1", 1]]}),
        ("t1", "product", "A1", {"sku": "A1", "name": "面霜 Cream"}),
        ("t1", "product", "TRIAL-1", {"sku": "TRIAL-1", "name": "试用装 Trial kit", "kind": "trial"}),
        ("t1", "plan", "douyin|DY1", {"group_id": "douyin|DY1", "orders": ["douyin|DY1"], "gifts": [
            {"rule": "demo@v1:box", "order_id": "douyin|DY1", "sku": "GIFTBOX-1", "quantity": 1, "parcel": 2}]}),
    ]))
    order, = find_buyer(store, "t1", order_id="DY1", keyword="赠品", now_ms=NOW).orders
    rows = [(c.component_id, c.sku, c.kind, c.quantity, c.parcel, c.state, c.highlight) for c in order.components]
    assert rows == [
        ("douyin|DY1#1", "A1", "item", 2, 1, "pending", False),
        ("douyin|DY1#2", "TRIAL-1", "trial", 1, 1, "pending", False),
        ("douyin|DY1#3", "SAMPLE-9", "gift", 1, 1, "pending", True),
        ("douyin|DY1#4", "GIFTBOX-1", "gift", 1, 2, "pending", True),
    ]
    assert order.components[0].text_zh == "面霜 Cream ×2 待打包"
    assert order.components[3].text_en == "gift pending (parcel 2)"
    assert order.status_zh == "待打包" and order.sessions == ()
