"""Mapping rules: the shipped files, real example events through the core, strict loading."""

from __future__ import annotations

import json
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import core_ext
from gateway._errors import ConfigError
from gateway._model import CODE_NO_CHANGE, CODE_RESUME, PSEUDO_TARGETS, Status, target_code
from gateway._rules.mapping import (
    BUYER_KINDS,
    RuleErrors,
    RuleSet,
    SourceRules,
    describe,
    load_rules,
    parse_occurred_at,
)
from tests._support import copy_tree, edit_line

RULES = Path(__file__).resolve().parents[2] / "config" / "rules"
NOV25_MS = 1_795_572_000_000  # 2026-11-25T10:00:00+08:00
SOURCES = ("cainiao", "douyin", "erp", "kuaidi100", "pinduoduo", "tmall", "xiaohongshu", "youzan")


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_rules(RULES)


def run(rules: SourceRules, *events: dict[str, Any], tenant: str = "t1") -> list[tuple[Any, ...]]:
    return core_ext.process_batch(rules.spec, tenant, list(events))


def code_of(rules: SourceRules, event: dict[str, Any]) -> int:
    return run(rules, event)[0][2]


# -- example events, shaped as each adapter hands them over (embedded JSON decoded) -----------

def douyin(tag: str, **data: Any) -> dict[str, Any]:
    body = {"p_id": "6919000000000000001", "s_ids": ["6919000000000000002"], "shop_id": 77,
            "order_status": 2, "order_type": 0, "biz": 2, "update_time": 1764036000, **data}
    return {"tag": tag, "msg_id": f"msg-{tag}", "data": body}


def tmall(topic: str, **content: Any) -> dict[str, Any]:
    body = {"tid": 586070597376760, "oid": 586070597376760, "buyer_nick": "b***", "seller_nick": "shop",
            "payment": "30.36", "type": "guarantee_trade", **content}
    return {"id": 6142200092063758446, "topic": topic, "pub_time": "2026-11-25 10:00:00", "content": body}


def pinduoduo(topic: str, order_status: Any = 1, **content: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"tid": "251125-123456789", "mall_id": 9, **content}
    if order_status is not None:
        body["order_status"] = order_status
    return {"id": f"frame-{topic}", "commandType": "Common", "sendTime": 1764036000000,
            "message": {"type": topic, "mallID": 9, "content": body}}


def xiaohongshu(tag: str, order_status: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {"orderId": "P771234", "updateTime": 1764036000000}
    if order_status is not None:
        data["orderStatus"] = order_status
    return {"msgTag": tag, "sellerId": "s-1", "data": data}


def youzan(type_: str, status: str = "") -> dict[str, Any]:
    return {"client_id": "c", "kdt_id": 56232, "id": "E20200525201253074004153", "type": type_,
            "status": status, "msg_id": f"m-{type_}", "version": 1621946649, "sendCount": 1,
            "msg": {"tid": "E20200525201253074004153", "update_time": "2026-11-25 10:00:00"}}


def kuaidi100(state: str, ftime: str = "2026-11-25 10:00:00") -> dict[str, Any]:
    trace = {"context": "快件已揽收", "time": ftime, "ftime": ftime, "status": "揽收", "statusCode": state}
    return {"param": {"status": "polling", "message": "", "lastResult": {
        "state": state, "com": "shunfeng", "nu": "SF1234567890", "ischeck": "0", "data": [trace]}},
        "sign": "ABC"}


def cainiao(action: str) -> dict[str, Any]:
    return {"msg_type": "TRACE", "logistics_interface": {
        "mailNo": "YT1234567890", "cpCode": "YTO", "action": action,
        "actionTime": "2026-11-25 10:00:00", "desc": "已揽收"}}


def erp(status: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"erp-{status}", "platform": "douyin", "order_no": "DY1", "status": status,
            "occurred_at": "2026-11-25T10:00:00+08:00", "buyer": {"phone": "138 0013 8000"},
            "amount": 129.0, "lines": [{"sku": "A1", "qty": 1}], **extra}


# -- the shipped rule files --------------------------------------------------------------------

def test_every_shipped_rule_file_loads(shipped):
    assert shipped.sources == SOURCES
    for name, rules in shipped.items():
        assert rules.path == RULES / f"{name}.toml"
        assert rules.version >= 1 and rules.description
        assert rules.spec.source == name
        assert rules.order_id or rules.waybill
    summary = describe(shipped)
    for name in SOURCES:
        assert f"{name}.toml@v" in summary


def test_digest_is_stable_and_follows_content(shipped, tmp_path):
    assert load_rules(RULES).digest == shipped.digest
    copy = copy_rules(tmp_path)
    assert load_rules(copy).digest == shipped.digest  # names and content, not the directory
    edit(copy / "douyin.toml", 'version = 1', 'version = 2')
    assert load_rules(copy).digest != shipped.digest


def test_buyer_kinds_match_the_core():
    assert set(BUYER_KINDS) == set(core_ext.IDENTITY_KINDS)


# -- the mapping examples DESIGN and the brief require ----------------------------------------

def test_douyin_paid_is_pending_review(shipped):
    rules = shipped.get("douyin")
    event = douyin("101", pay_amount=12900, pay_time=1764036000, pay_type=1)
    fingerprint, buyer, code, event_id, order_id, raw = run(rules, event)[0]
    assert code == Status.PENDING_REVIEW.code
    assert (event_id, order_id, raw) == ("msg-101", "douyin|6919000000000000001", "101")
    assert rules.rule_ref(raw) == "douyin.toml@v1:status.101"
    assert fingerprint and buyer == 0  # tag 101 names no receiver


def test_douyin_shipped_reads_waybill_buyer_and_time(shipped):
    rules = shipped.get("douyin")
    event = douyin("102", logistics_msg={"express_company_id": 7, "logistics_code": "SF100"},
                   receiver_msg={"addr": "x", "name": "y", "tel": "+86 138-0013-8000"})
    row = run(rules, event)[0]
    assert row[2] == Status.SHIPPED.code
    assert row[1] == core_ext.buyer_key("t1", "phone", "13800138000")
    assert core_ext.extract(event, rules.waybill) == "SF100"
    occurred = parse_occurred_at(core_ext.extract(event, rules.occurred_at), rules.occurred_at_format)
    assert occurred == 1764036000 * 1000


def test_cainiao_accept_is_fulfillment_started(shipped):
    rules = shipped.get("cainiao")
    event = cainiao("ACCEPT")
    row = run(rules, event)[0]
    assert row[2] == Status.FULFILLMENT_STARTED.code
    assert row[3] == "YT1234567890|ACCEPT|2026-11-25 10:00:00"
    assert row[4] is None and core_ext.extract(event, rules.waybill) == "YT1234567890"
    assert "UNCONFIRMED" in rules.description


def test_kuaidi100_state_1_is_fulfillment_started(shipped):
    rules = shipped.get("kuaidi100")
    event = kuaidi100("1")
    row = run(rules, event)[0]
    assert row[2] == Status.FULFILLMENT_STARTED.code
    assert row[3] == "SF1234567890|1|2026-11-25 10:00:00"  # composed: nu | state | latest ftime
    assert row[4] is None and core_ext.extract(event, rules.waybill) == "SF1234567890"
    later = run(rules, kuaidi100("0", ftime="2026-11-25 18:00:00"))[0]
    assert later[3] != row[3] and later[0] != row[0]  # a new trace is a new event


@pytest.mark.parametrize("order_status", ["cancelled", 1, "2", 3])
def test_pinduoduo_refund_callback_is_refund_initiated(shipped, order_status):
    rules = shipped.get("pinduoduo")
    event = pinduoduo("pdd_refund_RefundCreated", order_status, refund_id=55, refund_status=2)
    row = run(rules, event)[0]
    assert row[2] == Status.REFUND_INITIATED.code
    assert row[4] == "pinduoduo|251125-123456789"
    assert row[5] == f"pdd_refund_RefundCreated|{order_status}"


def test_pinduoduo_rule_refs_name_the_matching_key(shipped):
    rules = shipped.get("pinduoduo")
    assert rules.rule_ref("pdd_refund_RefundCreated|cancelled") == \
        "pinduoduo.toml@v2:status.pdd_refund_RefundCreated|cancelled"
    assert rules.rule_ref("pdd_refund_RefundCreated|2") == "pinduoduo.toml@v2:status.pdd_refund_RefundCreated|*"
    assert rules.rule_ref("pdd_refund_RefundCreated|") == "pinduoduo.toml@v2:status.pdd_refund_RefundCreated|*"
    assert rules.rule_ref("pdd_unknown|2") == "pinduoduo.toml@v2"
    assert rules.rule_ref(None) == "pinduoduo.toml@v2"


def test_pinduoduo_thin_refund_frame_without_order_status(shipped):
    event = pinduoduo("pdd_refund_RefundCreated", order_status=None, refund_id=55)
    assert code_of(shipped.get("pinduoduo"), event) == Status.REFUND_INITIATED.code
    assert run(shipped.get("pinduoduo"), event)[0][5] == "pdd_refund_RefundCreated|"  # optional part: ""


def test_xiaohongshu_after_sale_without_order_status(shipped):
    assert code_of(shipped.get("xiaohongshu"), xiaohongshu("msg_after_sale_create")) == \
        Status.REFUND_INITIATED.code


def test_missing_optional_parts_keep_their_meaning(shipped):
    # A status change without its status is not guessed: no wildcard for that tag.
    assert code_of(shipped.get("xiaohongshu"), xiaohongshu("msg_fulfillment_status_change")) == core_ext.CODE_UNKNOWN
    assert code_of(shipped.get("xiaohongshu"), xiaohongshu("msg_fulfillment_receiver_change")) == CODE_NO_CHANGE
    frame = pinduoduo("pdd_trade_TradeSellerShip", order_status=None)
    del frame["message"]["type"]
    assert code_of(shipped.get("pinduoduo"), frame) == core_ext.CODE_MISSING  # every part missing: no status


@pytest.mark.parametrize(("topic", "status", "target"), [
    ("taobao_trade_TradeChanged", None, "@none"),
    ("taobao_trade_TradeChanged", "WAIT_SELLER_SEND_GOODS", "@none"),
    ("taobao_trade_TradeChanged", "TRADE_CLOSED", "CANCELLED"),
    ("taobao_trade_TradeChanged", "TRADE_CLOSED_BY_TAOBAO", "CANCELLED"),
    ("taobao_trade_TradeChanged", "WAIT_BUYER_CONFIRM_GOODS", "SHIPPED"),
    ("taobao_trade_TradeBuyerPay", "WAIT_SELLER_SEND_GOODS", "PENDING_REVIEW"),
    ("taobao_refund_RefundCreated", None, "REFUND_INITIATED"),
])
def test_tmall_top_status_refines_the_topic(shipped, topic, status, target):
    rules = shipped.get("tmall")
    event = tmall(topic) if status is None else tmall(topic, status=status)
    row = run(rules, event)[0]
    assert row[2] == target_code(target)
    assert row[5] == f"{topic}|{status or ''}"


# -- every status PROTOCOLS.md lists maps to something ----------------------------------------

DOUYIN_TAGS = ["100", "101", "102", "103", "104", "105", "106", "108", "110", "113",
               "200", "201", "203", "206", "207", "400"]
TMC_TOPICS = [
    "taobao_trade_TradeCreate", "taobao_trade_TradeBuyerPay", "taobao_trade_TradeSellerShip",
    "taobao_trade_TradePartlySellerShip", "taobao_trade_TradeSuccess", "taobao_trade_TradeClose",
    "taobao_trade_TradeChanged", "taobao_refund_RefundCreated", "taobao_refund_RefundSellerAgreeAgreement",
    "taobao_refund_RefundBuyerReturnGoods", "taobao_refund_RefundSuccess", "taobao_refund_RefundClosed",
]
TOP_TRADE_STATUSES = [
    "TRADE_NO_CREATE_PAY", "WAIT_BUYER_PAY", "SELLER_CONSIGNED_PART", "WAIT_SELLER_SEND_GOODS",
    "WAIT_BUYER_CONFIRM_GOODS", "TRADE_BUYER_SIGNED", "TRADE_FINISHED", "TRADE_CLOSED",
    "TRADE_CLOSED_BY_TAOBAO", "PAY_PENDING", "WAIT_PRE_AUTH_CONFIRM", "PAID_FORBID_CONSIGN",
]
PDD_TOPICS = ["pdd_trade_TradeConfirmed", "pdd_trade_TradeSellerShip", "pdd_trade_TradeSuccess",
              "pdd_refund_RefundCreated", "pdd_refund_RefundAgreeAgreement", "pdd_refund_RefundClosed"]
XHS_OTHER_TAGS = ["msg_fulfillment_receiver_change", "msg_after_sale_create", "msg_item_create"]
ERP_SPELLINGS = ["WAIT_AUDIT", "AUDITED", "WAIT_PICK", "PICKING", "PACKED", "SENT", "SIGNED",
                 "REFUNDING", "CLOSED"]

PROTOCOL_CASES = (
    [("douyin", douyin(tag)) for tag in DOUYIN_TAGS]
    + [("tmall", tmall(topic)) for topic in TMC_TOPICS]
    # TMC messages carry no reliable trade status (see tmall.toml); ERPs mirroring TOP send them.
    + [("erp", erp(status)) for status in TOP_TRADE_STATUSES]
    + [("pinduoduo", pinduoduo(topic, order_status)) for topic in PDD_TOPICS for order_status in (1, 2, 3)]
    + [("xiaohongshu", xiaohongshu("msg_fulfillment_status_change", n)) for n in range(1, 11)]
    + [("xiaohongshu", xiaohongshu(tag, 4)) for tag in XHS_OTHER_TAGS]
    + [("youzan", youzan("trade_TradeSuccess", "TRADE_SUCCESS"))]
    + [("kuaidi100", kuaidi100(str(state))) for state in (*range(0, 8), *range(10, 15))]
    + [("cainiao", cainiao(action)) for action in ("ACCEPT", "TRANSPORT", "DELIVERING", "SIGN", "FAILED")]
    + [("erp", erp(status.value)) for status in Status]
    + [("erp", erp(spelling)) for spelling in ERP_SPELLINGS]
)


@pytest.mark.parametrize(("source", "event"), PROTOCOL_CASES,
                         ids=[f"{s}-{i}" for i, (s, _) in enumerate(PROTOCOL_CASES)])
def test_every_protocol_status_is_mapped(shipped, source, event):
    code = code_of(shipped.get(source), event)
    assert code not in (core_ext.CODE_UNKNOWN, core_ext.CODE_MISSING)


@pytest.mark.parametrize(("source", "event", "target"), [
    ("douyin", douyin("105"), "@none"),                         # address changed
    ("douyin", douyin("200"), "REFUND_INITIATED"),
    ("douyin", douyin("206"), "REFUNDED"),
    ("douyin", douyin("207"), "@resume"),                       # after-sale closed
    ("douyin", douyin("106"), "CANCELLED"),
    ("tmall", tmall("taobao_trade_TradeBuyerPay"), "PENDING_REVIEW"),
    ("tmall", tmall("taobao_trade_TradeClose"), "CANCELLED"),
    ("tmall", tmall("taobao_refund_RefundClosed"), "@resume"),
    ("erp", erp("TRADE_CLOSED"), "CANCELLED"),
    ("erp", erp("WAIT_SELLER_SEND_GOODS"), "PENDING_REVIEW"),
    ("erp", erp("WAIT_AUDIT"), "PENDING_REVIEW"),
    ("erp", erp("SIGNED"), "DELIVERED"),
    ("erp", erp("REFUND_CLOSED"), "@resume"),
    ("pinduoduo", pinduoduo("pdd_refund_RefundClosed", 1), "@resume"),
    ("pinduoduo", pinduoduo("pdd_trade_TradeConfirmed", 1), "PENDING_REVIEW"),
    ("xiaohongshu", xiaohongshu("msg_fulfillment_status_change", 2), "PENDING_REVIEW"),
    ("xiaohongshu", xiaohongshu("msg_fulfillment_status_change", 9), "CANCELLED"),
    ("xiaohongshu", xiaohongshu("msg_after_sale_create", 4), "REFUND_INITIATED"),
    ("youzan", youzan("trade_TradeSuccess", "TRADE_SUCCESS"), "DELIVERED"),
    ("youzan", youzan("trade_refund_RefundClosed"), "@resume"),
    ("kuaidi100", kuaidi100("3"), "DELIVERED"),
    ("kuaidi100", kuaidi100("14"), "@none"),                    # refused by the receiver
    ("cainiao", cainiao("SIGN"), "DELIVERED"),
])
def test_chosen_targets(shipped, source, event, target):
    assert code_of(shipped.get(source), event) == target_code(target)


def test_erp_standard_names_map_to_themselves(shipped):
    table = shipped.get("erp").status
    for status in Status:
        assert table[status.value] == status.value


def test_erp_event_reads_every_standard_field(shipped):
    rules = shipped.get("erp")
    event = erp("SENT", waybill="SF9", type="shipment", carrier="SF",
                buyer={"phone": "13800138000", "device_id": "dev-1", "address": "北京"})
    _, buyer, code, event_id, order_id, raw = run(rules, event)[0]
    assert (code, event_id, order_id, raw) == (Status.SHIPPED.code, "erp-SENT", "douyin|DY1", "SENT")
    assert buyer == core_ext.buyer_key("t1", "phone", "13800138000")
    assert core_ext.extract(event, rules.waybill) == "SF9"
    assert core_ext.extract(event, rules.event_type) == "shipment"
    assert parse_occurred_at(core_ext.extract(event, rules.occurred_at), "iso8601") == NOV25_MS
    assert {"amount", "lines", "carrier"} <= set(rules.data)
    device_only = erp("PAID", buyer={"device_id": "DEV-1"})
    assert run(rules, device_only)[0][1] == core_ext.buyer_key("t1", "device", "dev-1")


def test_unknown_raw_status_is_unknown_and_missing_is_missing(shipped):
    rules = shipped.get("douyin")
    assert code_of(rules, douyin("999")) == core_ext.CODE_UNKNOWN
    assert rules.rule_ref("999") == "douyin.toml@v1"
    no_tag = douyin("101")
    del no_tag["tag"]
    assert code_of(rules, no_tag) == core_ext.CODE_MISSING
    assert code_of(shipped.get("erp"), erp("WAITING_FOR_GODOT")) == core_ext.CODE_UNKNOWN
    assert code_of(shipped.get("pinduoduo"), pinduoduo("pdd_new_Topic", 1)) == core_ext.CODE_UNKNOWN


def test_pseudo_targets_compile_to_their_codes(shipped):
    table = shipped.get("douyin").spec.status_map
    assert table.lookup("207") == CODE_RESUME
    assert table.lookup("105") == CODE_NO_CHANGE


# -- strictness: broken copies of the shipped directory ---------------------------------------

def copy_rules(tmp_path: Path) -> Path:
    return copy_tree(RULES, tmp_path / "rules")


edit = edit_line


def refused(directory: Path) -> RuleErrors:
    with pytest.raises(RuleErrors) as caught:
        load_rules(directory)
    return caught.value


def test_misspelt_key_names_file_line_and_key(tmp_path):
    rules = copy_rules(tmp_path)
    line = edit(rules / "douyin.toml", 'status = "tag"', 'staus = "tag"')
    error = refused(rules)
    assert (error.path, error.line, error.key) == (str(rules / "douyin.toml"), line, "fields.staus")
    assert str(error).startswith(f"{rules / 'douyin.toml'}:{line}: fields.staus: unknown key")
    assert isinstance(error, ConfigError)


def test_unknown_target_state_lists_the_valid_ones(tmp_path):
    rules = copy_rules(tmp_path)
    line = edit(rules / "douyin.toml", '"101" = "PENDING_REVIEW"', '"101" = "PENDING_REVEIW"')
    error = refused(rules)
    assert (error.line, error.key) == (line, "status.101")
    assert "PENDING_REVEIW" in error.message and "PENDING_REVIEW" in error.message
    assert "@resume" in error.message and "@none" in error.message


def test_wrong_type_names_the_key(tmp_path):
    rules = copy_rules(tmp_path)
    line = edit(rules / "kuaidi100.toml", "version = 1", 'version = "1"')
    error = refused(rules)
    assert (error.path, error.line, error.key) == (str(rules / "kuaidi100.toml"), line, "source.version")
    assert "integer" in error.message


def test_name_must_equal_the_file_stem(tmp_path):
    rules = copy_rules(tmp_path)
    line = edit(rules / "youzan.toml", 'name = "youzan"', 'name = "youzan2"')
    error = refused(rules)
    assert (error.path, error.line, error.key) == (str(rules / "youzan.toml"), line, "source.name")


def test_invalid_toml_names_the_line(tmp_path):
    rules = copy_rules(tmp_path)
    line = edit(rules / "cainiao.toml", '"SIGN" = "DELIVERED"', '"SIGN = "DELIVERED"')
    error = refused(rules)
    assert (error.path, error.line) == (str(rules / "cainiao.toml"), line)
    assert "not valid TOML" in error.message


def test_every_broken_file_is_reported(tmp_path):
    rules = copy_rules(tmp_path)
    edit(rules / "douyin.toml", '"101" = "PENDING_REVIEW"', '"101" = "PAYED"')
    edit(rules / "douyin.toml", '"102" = "SHIPPED"', '"102" = 3')
    edit(rules / "tmall.toml", "kind = ", "knid = ")
    error = refused(rules)
    assert [(Path(e.path).name, e.key) for e in error.errors] == [
        ("douyin.toml", "status.101"), ("douyin.toml", "status.102"), ("tmall.toml", "source.knid")]
    assert len(str(error).splitlines()) == 3


@pytest.mark.parametrize(("file", "old", "new", "key", "words"), [
    ("douyin.toml", 'event_id = "msg_id"', 'event_id = "data[0].msg_id"', "fields.event_id", "data.0.ftime"),
    ("douyin.toml", 'event_id = "msg_id"', 'event_id = "msg id"', "fields.event_id", "bad path"),
    ("douyin.toml", 'event_id = "msg_id"', 'event_id = "=constant"', "fields.event_id", "not a literal"),
    ("douyin.toml", 'event_id = "msg_id"', 'event_id = []', "fields.event_id", "at least one"),
    ("douyin.toml", '"=douyin"', '"=douyin "', "fields.order_id[0]", "bad literal"),
    ("douyin.toml", 'event_id = "msg_id"', 'event_id = 7', "fields.event_id", "not an integer"),
    ("douyin.toml", 'event_id = "msg_id"', 'eventid = "msg_id"', "fields.eventid", "unknown key"),
    ("douyin.toml", 'occurred_at_format = "epoch_s"', 'occurred_at_format = "unix"',
     "fields.occurred_at_format", "epoch_ms"),
    ("douyin.toml", 'kind = "phone"', 'kind = "mobile"', "fields.buyer[0].kind", "phone_hash"),
    ("douyin.toml", 'kind = "shop"', 'kind = "store"', "source.kind", "logistics"),
    ("douyin.toml", "version = 1", "version = 0", "source.version", "1 or more"),
    ("douyin.toml", 'description = "', 'descripton = "', "source.descripton", "unknown key"),
    ("douyin.toml", 'pay_amount_fen = "data.pay_amount"', 'PayAmount = "data.pay_amount"', "data.PayAmount",
     "lower_snake_case"),
    ("douyin.toml", 'pay_amount_fen = "data.pay_amount"', 'pay_amount_fen = "=12"', "data.pay_amount_fen",
     "bad path"),
    ("douyin.toml", '"100" = "CREATED"', '"100|*" = "CREATED"', "status.100|*", "1 path"),
    ("douyin.toml", '"100" = "CREATED"', '" 100" = "CREATED"', "status. 100", "surrounding spaces"),
    ("douyin.toml", '"100" = "CREATED"', '"100" = ["CREATED"]', "status.100", "state name"),
    ("pinduoduo.toml", '"pdd_trade_TradeSuccess|3"', '"pdd_trade_TradeSuccess"', "status.pdd_trade_TradeSuccess",
     "'<first part>|*'"),
    ("erp.toml", "[data]", "[daata]", "daata", "unknown key"),
    ("pinduoduo.toml", '"=pinduoduo"', '"=pinduoduo?"', "fields.order_id[0]", "cannot be optional"),
    ("pinduoduo.toml", 'event_id = "id"', 'event_id = "id?"', "fields.event_id", "composite"),
    ("pinduoduo.toml", 'refund_id = "message.content.refund_id"', 'refund_id = "message.content.refund_id?"',
     "data.refund_id", "composite"),
    ("pinduoduo.toml", 'occurred_at = "sendTime"', 'occurred_at = "sendTime?"', "fields.occurred_at", "composite"),
    ("pinduoduo.toml", '"message.content.order_status?"', '"message.content.?"', "fields.status[1]",
     "then '?'"),
    ("pinduoduo.toml", '"message.content.order_status?"', '"?"', "fields.status[1]", "bad path"),
    ("xiaohongshu.toml", '"msg_item_create|*"', '"|msg_item_create"', "status.|msg_item_create",
     "'msgTag' is not optional"),
    ("tmall.toml", '"taobao_trade_TradeCreate|*"', '"|*"', "status.|*", "'topic' is not optional"),
    ("cainiao.toml", '"SIGN" = "DELIVERED"', '"SIGN|" = "DELIVERED"', "status.SIGN|", "1 path"),
])
def test_strict_checks_name_file_line_and_key(tmp_path, file, old, new, key, words):
    rules = copy_rules(tmp_path)
    line = edit(rules / file, old, new)
    error = refused(rules)
    assert (error.path, error.key) == (str(rules / file), key)
    assert error.line == line  # an inline table's keys are located at the array's line
    assert words in error.message


def test_required_fields(tmp_path):
    rules = copy_rules(tmp_path)
    path = rules / "erp.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('order_id = ["platform", "order_no"]\n', "").replace('waybill = "waybill"\n', ""),
                    encoding="utf-8")
    error = refused(rules)
    assert error.key == "fields" and "order_id or waybill" in error.message
    path.write_text(text.replace('status = "status"\n', ""), encoding="utf-8")
    error = refused(rules)
    assert error.key == "fields" and "'status'" in error.message
    path.write_text(text.replace('occurred_at_format = "iso8601"\n', ""), encoding="utf-8")
    assert "occurred_at_format" in refused(rules).message
    path.write_text(text.split("[status]")[0], encoding="utf-8")
    assert "missing required key 'status'" in refused(rules).message


def test_empty_and_missing_directories_are_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("not a rule file", encoding="utf-8")
    assert "no rule files" in refused(tmp_path).message
    assert "does not exist" in refused(tmp_path / "nope").message


def test_hidden_and_other_files_are_ignored(tmp_path):
    rules = copy_rules(tmp_path)
    (rules / ".#douyin.toml").write_text("this is an editor lock, not TOML", encoding="utf-8")
    (rules / "douyin.toml.bak").write_text("[broken", encoding="utf-8")
    (rules / "README").write_text("hello", encoding="utf-8")
    assert load_rules(rules).sources == SOURCES


def test_a_minimal_file_and_its_defaults(tmp_path):
    (tmp_path / "wms.toml").write_text(
        '[source]\nname = "wms"\nkind = "erp"\nversion = 3\n'
        '[fields]\nevent_id = "id"\nwaybill = ["carrier", "no"]\nstatus = "s"\n'
        '[status]\nOUT = "SHIPPED"\n', encoding="utf-8")
    rules = load_rules(tmp_path).get("wms")
    assert rules is not None and rules.description == "" and rules.data == {}
    assert rules.order_id == () and rules.occurred_at == () and rules.event_type == ()
    assert rules.waybill == ("carrier", "no") and rules.rule_ref("OUT") == "wms.toml@v3:status.OUT"
    row = run(rules, {"id": "1", "carrier": "SF", "no": "9", "s": "OUT"})[0]
    assert row[2] == Status.SHIPPED.code and row[4] is None


def test_optional_parts_in_a_minimal_file(tmp_path):
    head = ('[source]\nname = "wms"\nkind = "erp"\nversion = 1\n'
            '[fields]\nevent_id = "id"\norder_id = ["=wms", "no"]\nwaybill = ["carrier?", "no?"]\n')
    (tmp_path / "wms.toml").write_text(
        head + 'status = ["s", "sub?"]\n[status]\n"OUT|" = "SHIPPED"\n"OUT|*" = "PACKED"\n"IN|x" = "PAID"\n',
        encoding="utf-8")
    rules = load_rules(tmp_path).get("wms")
    assert rules is not None and rules.status_paths == ("s", "sub?") and rules.waybill == ("carrier?", "no?")
    rows = run(rules, {"id": "1", "no": "9", "s": "OUT"}, {"id": "2", "no": "9", "s": "OUT", "sub": "y"},
               {"id": "3", "s": "IN", "sub": "x", "carrier": "SF"}, {"id": "4", "no": "9", "sub": "x"})
    assert [row[2] for row in rows] == [Status.SHIPPED.code, Status.PACKED.code, Status.PAID.code,
                                        core_ext.CODE_MISSING]
    assert [row[5] for row in rows] == ["OUT|", "OUT|y", "IN|x", None]
    assert rules.rule_ref("OUT|") == "wms.toml@v1:status.OUT|" and rules.rule_ref("OUT|z") == "wms.toml@v1:status.OUT|*"
    assert [core_ext.extract(e, rules.waybill) for e in ({"no": "9"}, {"carrier": "SF"}, {})] == ["|9", "SF|", None]
    (tmp_path / "wms.toml").write_text(
        head + 'status = ["s?", "sub?"]\n[status]\n"|" = "SHIPPED"\n"|x" = "PAID"\n"|*" = "PACKED"\n',
        encoding="utf-8")
    error = refused(tmp_path)
    assert [(e.key, "never matches" in e.message) for e in error.errors] == [("status.|", True)]


def test_rules_are_immutable(shipped):
    rules = shipped.get("douyin")
    with pytest.raises(TypeError):
        rules.status["101"] = "PAID"  # type: ignore[index]
    with pytest.raises(AttributeError):
        rules.version = 9  # type: ignore[misc]


# -- times ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "fmt", "expected"), [
    ("1764036000", "epoch_s", 1764036000000),
    ("1764036000.5", "epoch_s", 1764036000500),
    ("1764036000123", "epoch_ms", 1764036000123),
    ("2026-11-25T10:00:00+08:00", "iso8601", NOV25_MS),
    ("2026-11-25T02:00:00Z", "iso8601", NOV25_MS),
    ("2026-11-25T10:00:00", "iso8601", NOV25_MS),         # no offset: China time
    ("2026-11-25 10:00:00", "gmt8", NOV25_MS),
    ("2026-11-25 10:00:00.250", "gmt8", NOV25_MS + 250),
    (None, "gmt8", 0),
    ("", "epoch_s", 0),
    ("yesterday", "iso8601", 0),
    ("2026-11-25", "gmt8", 0),
    ("nan", "epoch_s", 0),
    ("1e400", "epoch_ms", 0),
    ("1764036000123", "epoch_s", 0),                           # milliseconds read as seconds
    ("1764036000", "epoch_ms", 0),                             # seconds read as milliseconds
    ("1764036000", "fortnights", 0),
])
def test_parse_occurred_at(value, fmt, expected):
    assert parse_occurred_at(value, fmt) == expected


@given(st.text(max_size=40), st.sampled_from(["epoch_s", "epoch_ms", "iso8601", "gmt8"]))
def test_parse_occurred_at_never_raises(value, fmt):
    result = parse_occurred_at(value, fmt)
    assert result == 0 or 946_684_800_000 <= result < 4_102_444_800_000


# -- property: any table survives a round trip through a TOML file ----------------------------

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="|"), min_size=1, max_size=12,
).filter(lambda s: core_ext.canonical_text(s) == s)
_TARGETS = [s.value for s in Status] + list(PSEUDO_TARGETS)
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _basic_string(raw: str, ascii_only: bool) -> str:
    out = []
    for char in raw:
        if char in '"\\':
            out.append("\\" + char)
        elif unicodedata.category(char) == "Cc" or (ascii_only and ord(char) > 0x7E):
            out.append(f"\\u{ord(char):04X}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(raw: str, style: int) -> str:
    """``raw`` as a TOML key: bare, 'literal', "basic" or "basic with \\u escapes"."""
    if style == 0 and _BARE.match(raw):
        return raw
    if style == 1 and "'" not in raw and not any(unicodedata.category(c) == "Cc" and c != "\t" for c in raw):
        return f"'{raw}'"
    return _basic_string(raw, ascii_only=style >= 2)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_TEXT, st.sampled_from(_TARGETS), min_size=1, max_size=8),
       st.lists(st.integers(0, 3), min_size=8, max_size=8), st.lists(st.text(max_size=12), max_size=8))
def test_any_table_round_trips_through_a_toml_file(table, styles, strangers):
    lines = ['[source]', 'name = "gen"', 'kind = "shop"', 'version = 1',
             '[fields]', 'event_id = "id"', 'order_id = ["=gen", "no"]', 'status = "s"', '[status]']
    lines += [f"{_toml_key(raw, styles[i])} = {json.dumps(target)}" for i, (raw, target) in enumerate(table.items())]
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "gen.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rules = load_rules(directory).get("gen")
    assert rules is not None and dict(rules.status) == table
    events = [{"id": str(i), "no": "1", "s": raw} for i, raw in enumerate(table)]
    for (raw, target), row in zip(table.items(), run(rules, *events), strict=True):
        assert rules.spec.status_map.lookup(raw) == target_code(target)
        assert row[2] == target_code(target) and row[5] == raw
    for stranger in strangers:
        code = code_of(rules, {"id": "x", "no": "1", "s": stranger})
        canonical = core_ext.canonical_text(stranger)
        if canonical is None:
            assert code == core_ext.CODE_MISSING
        elif canonical not in table:
            assert code == core_ext.CODE_UNKNOWN
        else:
            assert code == target_code(table[canonical])
