"""Component states and their words, from pack-line records built by hand (pure, no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import core_ext
from gateway._model import OrderState, Status
from gateway._ops_lookup.components import clip_at_second, order_components
from gateway._ops_lookup.records import PackRecords
from gateway._ops_lookup.texts import keyword_matches, mask_phone, state_words, status_words
from gateway._packline.values import Product

ORDER = "douyin|1"
URI = "rtsp://nvr/Streaming/tracks/101/?starttime=20261204T100000Z&endtime=20261204T100100Z&name=f1&size=9"


def component(n: int, sku: str, *, kind: str = "item", quantity: int = 1, packed: int = 0, parcel: int = 1,
              status: str = "pending", origin: str = "line") -> dict[str, Any]:
    return {"component_id": f"{ORDER}#{n}", "order_id": ORDER, "sku": sku, "name": "", "kind": kind,
            "quantity": quantity, "packed": packed, "origin": origin, "parcel": parcel, "status": status,
            "waybill": ""}


def session(state: str, components: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"session_id": "A1-1000", "station": "A1", "operator": "OP-1", "orders": [ORDER], "opened_at_ms": 1000,
            "closed_at_ms": 9000 if state == "closed" else 0, "state": state,
            "bill": {"group_id": ORDER, "orders": [ORDER], "components": components},
            "closing": {"verdict": "PARTIAL_CLOSE"} if state == "closed" else None,
            "timeline": [{"event": "scan", "at_ms": 2000, "verdict": "OK", "component_id": f"{ORDER}#1",
                          "code": "111", "operator": "OP-1"}], **extra}


def order(status: Status = Status.PACKING, waybill: str = "") -> OrderState:
    return OrderState("t1", ORDER, status, waybill=waybill, data={"lines": [{"sku": "A1", "qty": 2}]})


def test_a_partial_close_shows_the_missing_units_and_the_packed_ones():
    records = PackRecords(ORDER, (session("closed", [
        component(1, "A1", quantity=2, packed=2, status="packed"),
        component(2, "BOX", kind="gift_box", packed=0, origin="gift_box"),
        component(3, "OLD", status="removed")]),),
        parcel={"session_id": "A1-1000", "order_ids": [ORDER], "waybill": "YT9"},
        products={"BOX": Product("BOX", "礼盒 Gift box", "gift_box")})
    views, sessions = order_components(order(Status.PACKED), records, "礼盒")
    assert [(v.state, v.text_zh) for v in views] == [
        ("packed", "商品 ×2 已装入第 1 包，运单 YT9 待揽收"),
        ("missing", "礼盒 Gift box 封箱时缺件（已装 0/1），未发出"),
        ("removed", "商品 已退款，不发货")]
    assert [v.highlight for v in views] == [False, True, False]
    assert views[0].scans[0].offset_s is None and views[0].scans[0].operator == "OP-1"  # no evidence record
    assert sessions[0].evidence == "none" and sessions[0].verdict == "PARTIAL_CLOSE"


def test_an_open_held_or_abandoned_session():
    comps = [component(1, "A1", quantity=2, packed=1)]
    packing, _ = order_components(order(), PackRecords(ORDER, (session("open", comps),)))
    assert packing[0].state == "packing" and packing[0].text_en == "item ×2 being packed (1/2) at station A1"
    held, _ = order_components(order(), PackRecords(ORDER, (session("held", comps, stop={
        "verdict": "STOP_NO_STOCK", "message_zh": "赠品缺货", "message_en": "gift out of stock"}),)))
    assert held[0].text_zh == "商品 ×2 暂停：赠品缺货"
    abandoned = session("closed", comps, closing={"verdict": "OK", "abandoned": True})
    rebuilt, sessions = order_components(order(Status.READY_TO_PACK), PackRecords(ORDER, (abandoned,)))
    assert rebuilt[0].state == "pending" and sessions == ()


def test_a_shipped_order_with_evidence_points_at_the_second_of_each_scan():
    evidence = {"session_id": "A1-1000", "clip": {"complete": True, "segments": []}, "snapshot": {"sha256": "ab"},
                "scans": [{"at_ms": 2000, "verdict": "OK", "component_id": f"{ORDER}#1", "offset_s": 7.25,
                           "playback_uri": URI, "segment_offset_s": 7.25},
                          {"at_ms": 2500, "verdict": "EXTRA", "component_id": None}]}
    records = PackRecords(ORDER, (session("closed", [component(1, "A1", packed=1, status="packed")]),),
                          parcel={"session_id": "A1-1000", "order_ids": [ORDER], "waybill": ""},
                          evidence={"A1-1000": evidence})
    views, sessions = order_components(order(Status.SHIPPED, waybill="SF1"), records)
    view, = views
    assert view.state == "shipped" and view.text_zh == "商品 已随 SF1 发出" and view.waybill == "SF1"
    scan, = view.scans
    assert scan.offset_s == 7.25 and scan.clip_complete is True and view.snapshot == {"sha256": "ab"}
    assert scan.clip_at_uri is not None and "starttime=20261204T100007Z" in scan.clip_at_uri
    assert sessions[0].evidence == "found"


def test_an_order_shipped_without_a_session_here_and_a_cancelled_one():
    records = PackRecords(ORDER)
    shipped, _ = order_components(order(Status.SHIPPED, waybill="SF2"), records)
    assert shipped[0].state == "shipped" and shipped[0].scans == ()
    cancelled, _ = order_components(order(Status.CANCELLED), records)
    assert cancelled[0].text_en == "item ×2 order withdrawn, not shipped"


@given(st.floats(min_value=0, max_value=3600, allow_nan=False))
def test_the_clip_link_starts_at_the_whole_second_and_never_past_the_segment(offset):
    trimmed = clip_at_second(URI, offset)
    assert trimmed is not None and trimmed.endswith("&name=f1&size=9")
    start = datetime.strptime(trimmed.split("starttime=")[1][:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert start == datetime(2026, 12, 4, 10, 0, tzinfo=UTC) + timedelta(seconds=min(int(offset), 60))
    assert "endtime=20261204T100100Z" in trimmed


def test_a_clip_link_needs_times():
    assert clip_at_second(None, 1.0) is None and clip_at_second(URI, None) is None
    assert clip_at_second("rtsp://nvr/x?name=1", 3.0) is None


def test_keywords_name_kinds_skus_and_names():
    gift_box = {"sku": "GB-1", "name": "礼盒 Gift box", "kind": "gift_box", "origin": "gift_box"}
    trial_gift = {"sku": "T-1", "name": "", "kind": "trial", "origin": "gift:demo@v1:trial"}
    item = {"sku": "A1-BLUE", "name": "面霜 Cream", "kind": "item", "origin": "line"}
    assert all(keyword_matches(k, **gift_box) for k in ("礼盒", "gift", "赠品", "Gift Box", "gb-1"))
    assert keyword_matches("赠品", **trial_gift) and keyword_matches("试用装", **trial_gift)
    assert not keyword_matches("礼盒", **trial_gift)
    assert keyword_matches("blue", **item) and keyword_matches("面霜", **item) and not keyword_matches("赠品", **item)
    assert not keyword_matches("  ", **item)


@given(st.text(alphabet="0123456789 +-", min_size=0, max_size=20))
def test_a_masked_phone_hides_at_least_a_third_of_its_digits_and_never_more_than_seven_show(text):
    masked = mask_phone(text)
    digits = core_ext.normalise_identity("phone", text) or "".join(c for c in text if c.isdigit())
    assert len(masked) == len(digits)
    shown = sum(c.isdigit() for c in masked)
    assert shown <= 7 and (len(digits) - shown) >= max(1, len(digits) // 3) if digits else masked == ""


def test_words_for_every_state():
    assert mask_phone("+86 138-0013-8000") == "138****8000"
    assert mask_phone("13800138000") == "138****8000"
    assert status_words(Status.SHIPPED) == ("已发货", "shipped") and status_words(None) == ("未知", "unknown")
    assert state_words("pending", parcel=2, waybill="", batch=3, packed=0, quantity=1) == (
        "预售第 3 批，待发", "pre-sale batch 3, pending")
    assert state_words("packed", parcel=1, waybill="", batch=0, packed=1, quantity=1)[1] == (
        "packed in parcel 1, waybill pending")
