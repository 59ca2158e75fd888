"""Pack sessions: a verdict at every scan, refunds mid-pack, closes, and a restart that changes nothing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._model import OrderState, Status
from gateway._packline.bill import build_bill, unit_weights_g, unknown_skus
from gateway._packline.session import PackSession, ScanResult, open_session
from gateway._packline.values import Bill, Catalog, GiftGrant, KitPart, Product, StockLevel, Verdict

SHAMPOO = Product("SHAMPOO", "洗发水", barcodes=("6901234567892",), weight_g=500)
COND = Product("COND", "护发素", barcodes=("6901234567885",), weight_g=400)
COMB = Product("COMB", "梳子", barcodes=("6901234567878",), weight_g=50)
SET = Product("SET", "洗护套装", barcodes=("6901234567861",), parts=(KitPart("SHAMPOO", 1), KitPart("COND", 1)))
BOX = Product("BOX", "礼盒", kind="gift_box", barcodes=("BOX-1",), weight_g=200)
SAMPLE = Product("SAMPLE", "小样", kind="gift", barcodes=("SAMPLE-1",), weight_g=10)
SERUM = Product("SERUM", "精华", barcodes=("06901234567854",), weight_g=80, serialised=True)
LIPSTICK = Product("LIPSTICK", "口红", barcodes=("6901234567847",), weight_g=30)
CATALOG = Catalog([SHAMPOO, COND, COMB, SET, BOX, SAMPLE, SERUM, LIPSTICK])


def order(order_id: str, **data: Any) -> OrderState:
    return OrderState("t1", order_id, Status.READY_TO_PACK, data=data)


def start(orders: list[OrderState], *, grants: list[GiftGrant] | None = None,
          stock: dict[str, StockLevel] | None = None, states: dict[str, str] | None = None,
          ) -> tuple[PackSession, ScanResult]:
    bill = build_bill(orders[0].order_id, orders, CATALOG, grants or [], stock)
    order_states = {o.order_id: "READY_TO_PACK" for o in orders} | (states or {})
    return open_session("A1-1000", "A1", "badge-7", "t1", bill, 1000, order_states=order_states,
                        unit_weights_g=unit_weights_g(bill, CATALOG), unknown_skus=unknown_skus(bill, CATALOG))


def state(session: PackSession) -> str:
    """The state, read afresh (a plain read lets mypy narrow it across calls that change it)."""
    return session.state


def scan(session: PackSession, product: Product | None, at: int, serial: str | None = None,
         code: str = "") -> ScanResult:
    return session.scan_item(product, code or (product.barcodes[0] if product else "???"), serial, at)


def test_a_gift_box_missing_at_close_is_caught_with_its_order() -> None:
    session, opened = start([order("douyin|1", lines=[{"sku": "SHAMPOO", "qty": 1}], gift_box="BOX")])
    assert opened.verdict is Verdict.OPENED and state(session) == "open"
    assert [row["sku"] for row in opened.expected] == ["SHAMPOO", "BOX"]
    assert scan(session, SHAMPOO, 2000).verdict is Verdict.OK
    refused = session.close(3000)
    assert refused.verdict is Verdict.MISSING and refused.alarm and state(session) == "open"
    assert [(m["sku"], m["name"], m["order_id"], m["units"], m["kind"]) for m in refused.missing] == [
        ("BOX", "礼盒", "douyin|1", 1, "gift_box")]
    assert "礼盒" in refused.message_zh and "douyin|1" in refused.message_zh
    assert scan(session, BOX, 4000).verdict is Verdict.OK
    closed = session.close(5000)
    assert closed.verdict is Verdict.CLOSED and state(session) == "closed" and session.complete
    assert all(c.status == "packed" for c in session.bill.components)


def test_a_merged_group_packs_both_orders_into_one_parcel() -> None:
    session, opened = start([order("douyin|1", lines=[{"sku": "SHAMPOO", "qty": 1}]),
                             order("wx|9", lines=[{"sku": "SHAMPOO", "qty": 1}, {"sku": "COMB", "qty": 1}])])
    assert opened.total_units == 3 and opened.detail["orders"] == ["douyin|1", "wx|9"]
    first, second = scan(session, SHAMPOO, 2000), scan(session, SHAMPOO, 2100)
    # the first outstanding component in bill order: the primary order's first
    assert (first.component_id, first.order_id) == ("douyin|1#1", "douyin|1")
    assert (second.component_id, second.order_id) == ("wx|9#1", "wx|9")
    assert scan(session, COMB, 2200).component_id == "wx|9#2"
    assert session.close(3000).verdict is Verdict.CLOSED


def test_a_kit_is_packed_part_by_part() -> None:
    session, _ = start([order("A", lines=[{"sku": "SET", "qty": 1}])])
    kit = scan(session, SET, 2000)
    assert kit.verdict is Verdict.WRONG_ITEM and "组件" in kit.message_zh and "洗发水" in kit.message_zh
    assert scan(session, COND, 2100).verdict is Verdict.OK
    assert session.close(2200).verdict is Verdict.MISSING
    assert scan(session, SHAMPOO, 2300).verdict is Verdict.OK
    assert session.close(2400).verdict is Verdict.CLOSED


def test_over_scan_is_extra_and_not_counted() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 2}])])
    assert [scan(session, SHAMPOO, t).verdict for t in (1, 2, 3)] == [Verdict.OK, Verdict.OK, Verdict.EXTRA]
    assert session.bill.components[0].packed == 2
    assert session.close(4).verdict is Verdict.CLOSED


def test_the_same_gs1_serial_counts_once() -> None:
    session, _ = start([order("A", lines=[{"sku": "SERUM", "qty": 2}])])
    assert scan(session, SERUM, 1, serial="SN001").verdict is Verdict.OK
    duplicate = scan(session, SERUM, 2, serial=" SN001 ")
    assert duplicate.verdict is Verdict.DUPLICATE_UNIT and "SN001" in duplicate.message_en
    assert session.bill.components[0].packed == 1
    assert scan(session, SERUM, 3, serial="SN002").verdict is Verdict.OK
    assert scan(session, SERUM, 4, serial="SN002").verdict is Verdict.DUPLICATE_UNIT  # not EXTRA: same unit


def test_unknown_barcode_and_wrong_item_name_what_is_expected() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 1}, {"sku": "COMB", "qty": 1, "ship": "later"},
                                          {"sku": "COND", "qty": 1, "refund": True}])])
    unknown = session.scan_item(None, "\x00garbage\x1b[2J", None, 1)
    assert unknown.verdict is Verdict.UNKNOWN_BARCODE and "\x00" not in unknown.message_zh
    wrong = scan(session, LIPSTICK, 2)
    assert wrong.verdict is Verdict.WRONG_ITEM
    assert wrong.message_zh == "错误商品：扫描了 口红，应为 洗发水 ×1"
    assert wrong.message_en == "Wrong item: scanned 口红, expected 洗发水 x1"
    assert [row["sku"] for row in wrong.expected] == ["SHAMPOO"]
    later = scan(session, COMB, 3)
    assert later.verdict is Verdict.WRONG_ITEM and "parcel 2" in later.message_en
    refunded = scan(session, COND, 4)
    assert refunded.verdict is Verdict.WRONG_ITEM and "退款" in refunded.message_zh
    assert session.bill.components[0].packed == 0


def test_refund_of_the_whole_order_mid_pack_stops_at_once() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 1}, {"sku": "COMB", "qty": 1}]),
                        order("B", lines=[{"sku": "COND", "qty": 1}])])
    scan(session, SHAMPOO, 1)
    stop = session.refund("A", None, 2)
    assert stop.verdict is Verdict.STOP_REFUND and state(session) == "stopped"
    assert [(r["sku"], r["units"]) for r in stop.remove] == [("SHAMPOO", 1)]
    assert {c.status for c in session.bill.components if c.order_id == "A"} == {"removed"}
    assert scan(session, COND, 3).verdict is Verdict.STOP_REFUND
    assert session.scan_item(None, "x", None, 4).verdict is Verdict.STOP_REFUND
    assert session.close(5, forced_by="sup-1", reason="ship anyway").verdict is Verdict.STOP_REFUND
    assert session.release(6, by="sup-1", reason="please").verdict is Verdict.STOP_REFUND
    assert state(session) == "stopped"
    assert session.abandon(7, by="badge-7").verdict is Verdict.OK and state(session) == "closed"


def test_refund_of_one_line_changes_the_bill() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 1}, {"sku": "SET", "qty": 1},
                                          {"sku": "COMB", "qty": 1}])])
    result = session.refund("A", ["SET"], 2)
    assert result.verdict is Verdict.OK and state(session) == "open" and result.remove == ()
    assert result.detail["removed"] == ["A#2", "A#3"]
    assert [row["sku"] for row in result.expected] == ["SHAMPOO", "COMB"]
    assert session.refund("A", ["SET"], 3).detail["changed"] is False
    scan(session, SHAMPOO, 4)
    scan(session, COMB, 5)
    assert session.close(6).verdict is Verdict.CLOSED


def test_a_refunded_component_already_packed_must_come_out() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 2}, {"sku": "COMB", "qty": 1}])])
    scan(session, SHAMPOO, 1)
    result = session.refund("A", {"SHAMPOO"}, 2)
    assert result.verdict is Verdict.STOP_REFUND and result.alarm and state(session) == "open"
    assert [(r["component_id"], r["sku"], r["units"]) for r in result.remove] == [("A#1", "SHAMPOO", 1)]
    assert "取出" in result.message_zh and "洗发水 ×1" in result.message_zh
    assert scan(session, SHAMPOO, 3).verdict is Verdict.WRONG_ITEM  # it no longer belongs
    scan(session, COMB, 4)
    assert session.close(5).verdict is Verdict.CLOSED


def test_refunding_every_line_is_refunding_the_order() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 1}], gifts=["SAMPLE"])])
    result = session.refund("A", ["SHAMPOO"], 2)
    assert result.verdict is Verdict.STOP_REFUND and state(session) == "stopped" and result.detail["whole_order"]
    assert session.bill.components[1].status == "removed"  # the gift does not ship alone
    assert session.refund("Z", None, 3).detail["changed"] is False  # not ours


def test_refund_after_the_close_says_intercept() -> None:
    session, _ = start([order("A", lines=[{"sku": "COMB", "qty": 1}])])
    scan(session, COMB, 1)
    session.close(2)
    result = session.refund("A", None, 3)
    assert result.verdict is Verdict.STOP_REFUND and state(session) == "closed" and "carrier" in result.message_en


def test_opening_checks_refund_then_duplicate_pack_then_stock() -> None:
    orders = [order("A", lines=[{"sku": "SHAMPOO", "qty": 1}], gift_box="BOX"), order("B", lines=[])]
    for states, verdict, state in [
        ({"B": "CANCELLED", "A": "PACKED"}, Verdict.STOP_REFUND, "stopped"),
        ({"B": "SHIPPED"}, Verdict.ALREADY_PACKED, "stopped"),
        ({}, Verdict.STOP_NO_STOCK, "held"),
    ]:
        session, opened = start(orders, stock={"BOX": StockLevel("BOX", 0, 1)}, states=states)
        assert (opened.verdict, session.state) == (verdict, state)
        assert opened.alarm
        assert scan(session, SHAMPOO, 2).verdict is verdict
        assert session.close(3).verdict is verdict
    assert opened.detail["shortfalls"] == {"BOX": 1} and "BOX 缺 1 件" in opened.message_zh


def test_a_supervisor_releases_a_hold_and_the_release_is_recorded() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 1}], gift_box="BOX")],
                       stock={"BOX": StockLevel("BOX", 0, 1)})
    assert session.release(2, by="sup-1", reason="").verdict is Verdict.STOP_NO_STOCK  # a reason is required
    released = session.release(3, by="sup-1", reason="box arrived")
    assert released.verdict is Verdict.OPENED and state(session) == "open"
    assert scan(session, SHAMPOO, 4).verdict is Verdict.OK
    assert session.timeline[2]["event"] == "release" and session.timeline[2]["by"] == "sup-1"


def test_a_forced_close_is_partial_and_records_who_why_and_what() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 1}], gift_box="BOX")])
    scan(session, SHAMPOO, 1)
    no_reason = session.close(2, forced_by="sup-1")
    assert no_reason.verdict is Verdict.MISSING and "reason" in no_reason.message_en and state(session) == "open"
    forced = session.close(3, forced_by="sup-1", reason="gift box out of stock, buyer agreed")
    assert forced.verdict is Verdict.PARTIAL_CLOSE and state(session) == "closed"
    assert forced.detail["forced_by"] == "sup-1" and [m["sku"] for m in forced.missing] == ["BOX"]
    assert session.closing is not None and session.closing["reason"] == "gift box out of stock, buyer agreed"
    again = session.close(4)
    assert again.verdict is Verdict.PARTIAL_CLOSE and again.detail["repeat"] is True
    assert scan(session, BOX, 5).verdict is Verdict.NO_SESSION
    assert session.to_dict()["closed_at_ms"] == 3


def test_weight_check_against_the_scanned_contents() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 2}, {"sku": "COMB", "qty": 1}])])
    scan(session, SHAMPOO, 1)
    scan(session, SHAMPOO, 2)
    scan(session, COMB, 3)
    assert session.expected_weight_g == 1050
    assert session.weight_check(1100, 20, 5.0, tare_g=30, at_ms=4).verdict is Verdict.OK  # 1080 ± 54
    mismatch = session.weight_check(1300, 20, 5.0, tare_g=30, at_ms=5)
    assert mismatch.verdict is Verdict.WEIGHT_MISMATCH and mismatch.detail["expected_g"] == 1080
    assert "1300 g" in mismatch.message_zh
    session.unit_weights_g["COMB"] = None
    unknown = session.weight_check(5000, 20, 5.0, at_ms=6)
    assert unknown.verdict is Verdict.OK and unknown.detail["checked"] is False


def test_unknown_skus_are_shown_at_open() -> None:
    session, opened = start([order("A", lines=[{"sku": "NOPE", "qty": 1}])])
    assert opened.verdict is Verdict.OPENED and "NOPE" in opened.message_zh
    assert session.close(2).missing[0]["sku"] == "NOPE"


def test_the_timeline_is_the_evidence() -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 1}])])
    scan(session, LIPSTICK, 2000)
    session.change_operator("badge-8", 2500)
    scan(session, SHAMPOO, 3000, code="]E06901234567892")
    session.close(4000)
    assert [(e["seq"], e["event"], e["verdict"], e["operator"], e["at_ms"]) for e in session.timeline] == [
        (1, "open", "OPENED", "badge-7", 1000), (2, "scan", "WRONG_ITEM", "badge-7", 2000),
        (3, "operator", "", "badge-7", 2500), (4, "scan", "OK", "badge-8", 3000), (5, "close", "CLOSED", "badge-8", 4000)]
    assert session.timeline[3]["code"] == "]E06901234567892" and session.timeline[3]["component_id"] == "A#1"
    assert json.loads(json.dumps(session.to_dict())) == session.to_dict()


# -- restart: a round trip through to_dict / from_dict at any point changes nothing ---------------

_PRODUCTS = [SHAMPOO, COND, COMB, SET, BOX, SAMPLE, SERUM, LIPSTICK, None]
_op = st.one_of(
    st.tuples(st.just("scan"), st.sampled_from(_PRODUCTS), st.sampled_from([None, "S1", "S2"])),
    st.tuples(st.just("close"), st.sampled_from(["", "sup-1"]), st.sampled_from(["", "agreed"])),
    st.tuples(st.just("refund"), st.sampled_from(["A", "B"]), st.sampled_from([None, ("SHAMPOO",), ("SET",), ()])),
    st.tuples(st.just("release"), st.just("sup-1"), st.sampled_from(["", "ok"])),
    st.tuples(st.just("weight"), st.integers(0, 3000), st.just(None)),
    st.tuples(st.just("abandon"), st.just("badge-7"), st.just(None)),
)


def apply(session: PackSession, op: tuple[Any, Any, Any], at: int) -> ScanResult:
    kind, first, second = op
    if kind == "scan":
        return session.scan_item(first, first.barcodes[0] if first else "junk", second, at)
    if kind == "close":
        return session.close(at, forced_by=first, reason=second)
    if kind == "refund":
        return session.refund(first, second, at)
    if kind == "release":
        return session.release(at, by=first, reason=second)
    if kind == "weight":
        return session.weight_check(first, 50, 5.0, at_ms=at)
    return session.abandon(at, by=first)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(_op, max_size=25), cut=st.integers(0, 25), gift_stock=st.sampled_from([None, 0, 5]))
def test_a_restored_session_continues_identically(ops, cut, gift_stock) -> None:
    orders = [order("A", lines=[{"sku": "SHAMPOO", "qty": 2}, {"sku": "SET", "qty": 1}], gift_box="BOX"),
              order("B", lines=[{"sku": "SERUM", "qty": 2}, {"sku": "COMB", "qty": 1}])]
    stock = None if gift_stock is None else {"BOX": StockLevel("BOX", gift_stock, 1)}
    straight, first = start(orders, grants=[GiftGrant("r", "B", "SAMPLE")], stock=stock)
    restored, _ = start(orders, grants=[GiftGrant("r", "B", "SAMPLE")], stock=stock)
    for index, op in enumerate(ops):
        if index == cut:
            restored = PackSession.from_dict(json.loads(json.dumps(restored.to_dict())))
        assert apply(restored, op, 2000 + index) == apply(straight, op, 2000 + index)
    assert restored.to_dict() == straight.to_dict()
    assert restored.state == straight.state and restored.complete == straight.complete


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(_op, max_size=25), cut=st.integers(0, 25))
def test_a_working_copy_continues_identically_and_leaves_the_original_alone(ops, cut) -> None:
    """The pack line scans on a copy and makes it live only once durable: the copy must act
    exactly as the session would, and a discarded copy must not have changed it."""
    orders = [order("A", lines=[{"sku": "SHAMPOO", "qty": 2}, {"sku": "SET", "qty": 1}], gift_box="BOX"),
              order("B", lines=[{"sku": "SERUM", "qty": 2}, {"sku": "COMB", "qty": 1}])]
    straight, _ = start(orders, grants=[GiftGrant("r", "B", "SAMPLE")])
    session, _ = start(orders, grants=[GiftGrant("r", "B", "SAMPLE")])
    for index, op in enumerate(ops):
        if index == cut:
            before = session.to_dict()
            discarded = session.copy()
            for later, other in enumerate(ops[index:]):
                apply(discarded, other, 5000 + later)
            assert session.to_dict() == before
            session = session.copy()
        assert apply(session, op, 2000 + index) == apply(straight, op, 2000 + index)
    assert session.to_dict() == straight.to_dict()


# -- fuzz: nothing a scanner or a catalog sends makes a scan raise -------------------------------

_kinds = st.sampled_from(["item", "gift", "gift_box", "trial"])
_products = st.one_of(st.none(), st.sampled_from(_PRODUCTS), st.builds(
    Product, st.sampled_from(["SHAMPOO", "COMB", "SET", "X", ""]), st.text(max_size=50), _kinds,
    st.tuples(st.text(max_size=20)), st.one_of(st.none(), st.integers(-10, 10_000)),
    st.tuples(st.builds(KitPart, st.sampled_from(["SHAMPOO", "COND"]), st.integers(0, 3))) | st.just(()),
    st.booleans()))


@settings(max_examples=300, deadline=None)
@given(scans=st.lists(st.tuples(_products, st.text(max_size=80), st.one_of(st.none(), st.text(max_size=30))),
                      max_size=12))
def test_fuzzed_scans_never_raise(scans) -> None:
    session, _ = start([order("A", lines=[{"sku": "SHAMPOO", "qty": 2}, {"sku": "SET", "qty": 1}])])
    allowed = {Verdict.OK, Verdict.WRONG_ITEM, Verdict.EXTRA, Verdict.DUPLICATE_UNIT, Verdict.UNKNOWN_BARCODE}
    for at, (product, code, serial) in enumerate(scans):
        result = session.scan_item(product, code, serial, at)
        assert result.verdict in allowed
        assert len(result.message_zh) < 300 and all(ch.isprintable() for ch in result.message_en)
        json.dumps(result.to_dict())
    assert all(0 <= c.packed <= c.quantity for c in session.bill.components)
    session.close(10_000)
    assert PackSession.from_dict(json.loads(json.dumps(session.to_dict()))).to_dict() == session.to_dict()


def test_bill_is_shared_not_copied_by_open_session() -> None:
    bill = Bill("A", ["A"])
    session, opened = open_session("s", "A1", "b", "t1", bill, 1, order_states={"A": "READY_TO_PACK"})
    assert session.bill is bill and opened.total_units == 0
