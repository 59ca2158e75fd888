"""Pack-line alerts (``gateway._packline.alerts``): builders, WeCom bodies, the durable queue,
against a real RocksDB store; the sender is tested in ``test_alert_sender``."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway._packline.alerts import (
    MARKDOWN_LIMIT_BYTES,
    RECORD_KIND,
    TEXT_LIMIT_BYTES,
    Alert,
    AlertWake,
    PackedParcel,
    alert_listener,
    alert_write,
    intercept_alert,
    make_alert,
    new_alerts,
    overdue_waybills,
    queued_alerts,
    refund_stop_alert,
    shortfall_alert,
    waybill_reused_alert,
    wecom_body,
)
from gateway._store import StepWrite, StoreSettings, open_store

T0 = 1_764_800_000_000  # 2025-12-03 22:13:20 UTC


def open_db(tmp_path):
    return open_store(StoreSettings(path=tmp_path / "db"))


# -- pure: builders and bodies ------------------------------------------------------------------


def test_an_overdue_parcel_raises_one_alert_with_a_stable_id():
    parcels = [PackedParcel("t1", "G1", ("O1", "O2"), T0),
               PackedParcel("t1", "G2", ("O3",), T0, waybill="SF100"),        # has its waybill
               PackedParcel("t1", "G3", ("O4",), T0 + 600_000)]              # not overdue yet
    first = overdue_waybills(parcels, T0 + 900_000, 900.0)
    again = overdue_waybills(parcels, T0 + 1_200_000, 900.0)
    assert [a.alert_id for a in first] == ["waybill_timeout:t1:G1"]
    assert [a.alert_id for a in again] == ["waybill_timeout:t1:G1"]
    alert = first[0]
    assert alert.kind == "waybill_timeout" and alert.tenant == "t1" and alert.order_ids == ("O1", "O2")
    assert alert.raised_at_ms == T0 + 900_000 and "15 分钟" in alert.title_zh
    assert overdue_waybills(parcels, T0 + 899_999, 900.0) == []


def test_builders_give_deterministic_ids_and_kinds():
    assert shortfall_alert("t1", "G1", ["O1"], {"GIFT-B": 2, "GIFT-A": 1}, T0).alert_id == \
        "gift_stock_shortfall:t1:G1"
    short = shortfall_alert("t1", "G1", ["O1"], {"GIFT-B": 2, "GIFT-A": 1}, T0)
    assert short.lines[1].startswith("GIFT-A 缺 1 件")
    assert refund_stop_alert("t1", "G1", ["O1", "O2"], "O2", T0).alert_id == "refund_stop:t1:O2"
    intercept = intercept_alert("t1", "O1", "SF123", "picked_up", T0)
    assert intercept.alert_id == "carrier_intercept:t1:SF123" and intercept.severity == "critical"
    assert any("已揽收" in line for line in intercept.lines)
    assert waybill_reused_alert("t1", "SF9", "O2", "O1", T0).alert_id == "waybill_reused:t1:SF9:O2"


def test_alert_round_trips_through_its_record():
    alert = intercept_alert("t1", "O1", "SF123", "in_transit", T0)
    assert Alert.from_dict(orjson.loads(orjson.dumps(alert.to_dict()))) == alert


def test_text_body_is_wecoms_text_message_with_mentions_chinese_first():
    alert = refund_stop_alert("t1", "G1", ["O1"], "O1", T0 + 8 * 3600_000, station="A1")
    body = wecom_body(alert, "text", ["13800001111", "@all"])
    assert set(body) == {"msgtype", "text"} and body["msgtype"] == "text"
    assert set(body["text"]) == {"content", "mentioned_mobile_list"}
    assert body["text"]["mentioned_mobile_list"] == ["13800001111", "@all"]
    content = body["text"]["content"]
    assert content.startswith("【紧急】订单退款，停止打包\n[CRITICAL] Refund: stop packing this parcel\n")
    assert "工位 Station: A1" in content and "订单 Orders: O1" in content
    assert "告警 ID: refund_stop:t1:O1" in content and "(UTC+8)" in content


def test_markdown_body_is_wecoms_markdown_message_without_mentions():
    alert = make_alert("print_uncertain", "t1", "J<1>", "info", "面单<b>可能</b>未打印", "Label *may* not have printed",
                       ["打印任务 Job: <font>"], ["O1"], T0)
    body = wecom_body(alert, "markdown")
    assert body == {"msgtype": "markdown", "markdown": {"content": body["markdown"]["content"]}}
    content = body["markdown"]["content"]
    first, second, *rest = content.split("\n")
    assert first == '### <font color="info">【提示】面单＜b＞可能＜/b＞未打印</font>'
    assert second == "**Label may not have printed**"
    assert all(line.startswith("> ") for line in rest)
    assert "<font>" not in content.split("\n", 1)[1]  # a value cannot open a tag
    with pytest.raises(ValueError, match="cannot @ a phone number"):
        wecom_body(alert, "markdown", ["13800001111"])


def test_long_chinese_content_is_cut_at_a_character_boundary_within_wecoms_limits():
    lines = [f"第 {n} 行：赠品库存不足，请补货" * 3 for n in range(400)]
    alert = make_alert("gift_stock_shortfall", "t1", "G1", "warning", "赠品库存不足", "Gift stock short", lines,
                       [f"O{n}" for n in range(50)], T0)
    for fmt, limit in (("text", TEXT_LIMIT_BYTES), ("markdown", MARKDOWN_LIMIT_BYTES)):
        content = wecom_body(alert, fmt)[fmt]["content"]
        assert len(content.encode("utf-8")) <= limit
        *kept, marker, raised, alert_id = content.split("\n")
        assert marker.endswith("……（内容过长，已截断 / truncated）")
        assert "(UTC+8)" in raised and alert_id.endswith("告警 ID: gift_stock_shortfall:t1:G1")  # always kept
        assert kept[-1].endswith("请补货")  # whole lines kept, never half a line or half a character
        assert "O49" in content  # the orders come before the details


def test_one_huge_line_is_cut_inside_it_on_a_character_boundary():
    alert = make_alert("refund_stop", "t1", "O1", "critical", "退款", "Refund", ["退" * 5000], ["O1"], T0)
    content = wecom_body(alert, "text")["text"]["content"]
    encoded = content.encode("utf-8")
    assert TEXT_LIMIT_BYTES - 3 <= len(encoded) <= TEXT_LIMIT_BYTES  # cut inside the line, at most a character short
    assert "退退退\n……（内容过长" in content and encoded.decode("utf-8") == content


@given(st.lists(st.text(max_size=300), max_size=40), st.text(max_size=200))
def test_bodies_always_fit_and_keep_the_title(lines, title):
    alert = make_alert("waybill_timeout", "t1", "G1", "warning", title, "Title", lines, ["O1"], T0)
    for fmt, limit in (("text", TEXT_LIMIT_BYTES), ("markdown", MARKDOWN_LIMIT_BYTES)):
        content = wecom_body(alert, fmt)[fmt]["content"]
        assert len(content.encode("utf-8")) <= limit
        assert "Title" in content


# -- the durable queue --------------------------------------------------------------------------


def test_alert_write_queues_the_alert_and_audits_it(tmp_path):
    alert = shortfall_alert("t1", "G1", ["O1", "O2"], {"GIFT-A": 1}, T0)
    write = alert_write(alert)
    assert write.records == [("t1", RECORD_KIND, "gift_stock_shortfall:t1:G1", alert.to_dict())]
    assert write.audit == [{"tenant": "t1", "at_ms": T0, "actor": "gateway", "source": "alerts", "event_id": "",
                            "rule": "", "order_id": "O1", "decision": "alert", "changes": [],
                            "note": "Gift stock short: parcel held"}]
    with open_db(tmp_path) as store:
        store.commit(write)
        assert store.get_record("t1", RECORD_KIND, alert.alert_id) == alert.to_dict()
        assert queued_alerts(store) == [alert]
        assert [r["decision"] for r in store.iter_audit("t1")] == ["alert"]
        assert store.verify_audit_chain("t1").ok
        later = overdue_waybills([PackedParcel("t1", "G9", ("O9",), T0)], T0 + 10**6, 900.0)
        assert new_alerts(store, [alert, *later]) == later  # the queued one is not raised again


def test_listener_wakes_the_sender_only_for_new_alerts():
    wake = AlertWake()
    listener = alert_listener(wake)
    listener(StepWrite(records=[("t1", RECORD_KIND, "x", None)]))
    assert not wake.take()
    listener(alert_write(refund_stop_alert("t1", "G1", ["O1"], "O1", T0)))
    assert wake.take() and not wake.take()


def test_intercept_alerts_of_parcels_without_a_waybill_are_one_per_order():
    first = intercept_alert("t1", "douyin|1", "", "awaiting_pickup", T0)
    second = intercept_alert("t1", "douyin|2", "", "awaiting_pickup", T0)
    assert first.alert_id != second.alert_id and first.alert_id.endswith("douyin|1")
    assert any("待揽收" in line for line in first.lines)
