"""What a pack session shows (``gateway._packline.session_text``): the lines are safe for one
display line, name products rather than components, and the opening stop keeps its order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway._packline.session_text import (
    ScanResult,
    abandon_text,
    component_row,
    missing_rows,
    opening_stop,
    opening_text,
    shown,
    summary,
    wrong_item_text,
)
from gateway._packline.values import Bill, BillComponent, Product, Verdict

SHAMPOO = BillComponent("A#1", "A", "SHAMPOO", "洗发水", quantity=2, packed=1)
SHAMPOO_B = BillComponent("B#1", "B", "SHAMPOO", "洗发水", quantity=1)
LATER = BillComponent("A#2", "A", "COMB", "梳子", parcel=2)
REMOVED = BillComponent("A#3", "A", "COND", "护发素", status="removed")
KIT_PART = BillComponent("A#4", "A", "SERUM", "精华", origin="kit:SET")


@given(st.text(max_size=80), st.integers(2, 60))
def test_a_shown_text_is_one_printable_line_within_its_limit(text, limit):
    line = shown(text, limit)
    assert line.isprintable() and len(line) <= limit
    assert line == text or line.endswith("…") or not text.isprintable()


def test_a_summary_adds_up_one_products_rows_and_cuts_the_list():
    rows = [component_row(SHAMPOO, 1), component_row(SHAMPOO_B, 1)]
    assert summary(rows) == ("洗发水 ×2", "洗发水 x2")
    assert summary(rows, with_orders=True) == ("洗发水 ×1（订单 A）、洗发水 ×1（订单 B）",
                                               "洗发水 x1 (order A), 洗发水 x1 (order B)")
    many = [component_row(BillComponent(f"X#{n}", "X", f"SKU-{n}"), 1) for n in range(6)]
    zh, en = summary(many, limit=4)
    assert zh.endswith(" 等 6 项") and en.endswith(" and 2 more")


def test_missing_rows_are_the_outstanding_components_of_parcel_one():
    bill = Bill("A", ["A", "B"], [SHAMPOO, SHAMPOO_B, LATER, REMOVED])
    assert [(row["component_id"], row["units"]) for row in missing_rows(bill)] == [("A#1", 1), ("B#1", 1)]


def test_a_wrong_item_says_why_as_precisely_as_the_bill_tells():
    bill = Bill("A", ["A"], [SHAMPOO, LATER, REMOVED, KIT_PART])
    live = [SHAMPOO, KIT_PART]
    assert wrong_item_text(Product("SET", "套装"), live, bill)[1] == "套装 is a kit: scan its parts: 精华 x1"
    assert "parcel 2" in wrong_item_text(Product("COMB", "梳子"), live, bill)[1]
    assert "refunded" in wrong_item_text(Product("COND", "护发素"), live, bill)[1]
    assert wrong_item_text(Product("LIP", "口红"), live, bill) == (
        "错误商品：扫描了 口红，应为 洗发水 ×1、精华 ×1", "Wrong item: scanned 口红, expected 洗发水 x1, 精华 x1")


def test_the_opening_stop_is_refund_then_duplicate_pack_then_stock():
    states = {"A": "REFUNDED", "B": "SHIPPED"}
    assert opening_stop(["A"], ["B"], {"GIFT": 1}, states)["verdict"] == Verdict.STOP_REFUND.value
    packed = opening_stop([], ["B"], {"GIFT": 1}, states)
    assert packed["verdict"] == Verdict.ALREADY_PACKED.value and "B（SHIPPED）" in packed["message_zh"]
    held = opening_stop([], [], {"GIFT": 2}, states)
    assert held["verdict"] == Verdict.STOP_NO_STOCK.value and "GIFT short 2" in held["message_en"]
    assert opening_stop([], [], {}, states) is None
    assert opening_text(2, 5, ["X"]) == ("开始打包：2 个订单，共 5 件；注意 X 不在商品资料中，无法扫描，请找主管",
                                         "Packing 2 order(s), 5 units; note X not in the catalog and cannot be "
                                         "scanned: call a supervisor")
    assert abandon_text(0) == ("已取消本包裹", "Parcel abandoned")


def test_a_result_lifts_its_own_fields_out_of_the_detail():
    fields = {"missing": [component_row(SHAMPOO, 1)], "sku": "SHAMPOO", "code": "690", "serial": None, "note": "",
              "checked": True}
    result = ScanResult.of(Verdict.MISSING, "S1", "open", "缺", "Missing", 5, fields, expected=[],
                           packed_units=1, total_units=2)
    assert (result.sku, result.code, result.component_id) == ("SHAMPOO", "690", "")
    assert result.missing == (component_row(SHAMPOO, 1),) and result.detail == {"checked": True}
    assert result.to_dict()["verdict"] == "MISSING" and result.alarm == Verdict.MISSING.alarm
