"""Normalising decoded events through the shipped rules and the core."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import core_ext
from gateway._errors import MalformedEventError
from gateway._model import Status
from gateway._rules import load_rules
from gateway._rules.normalize import get_path, normalise_batch
from tests._support import RULES, erp_event


@pytest.fixture(scope="module")
def erp():
    return load_rules(RULES).get("erp")


def test_erp_event_becomes_a_full_event(erp):
    raw = erp_event(1, "WAIT_AUDIT", waybill="SF123", remark="gift wrap")
    [event] = normalise_batch(erp, "t1", [raw], 42)
    assert event.tenant == "t1" and event.source == "erp"
    assert event.source_event_id == "erp-1"
    assert event.order_id == "douyin|DY00000001"
    assert event.status is Status.PENDING_REVIEW
    assert event.waybill == "SF123"
    assert event.received_at_ms == 42
    assert event.occurred_at_ms == int(datetime(2026, 11, 25, 2, tzinfo=UTC).timestamp() * 1000)
    assert event.data["amount"] == 129.0 and event.data["lines"] == [{"sku": "A1", "qty": 1}]
    assert event.data["remark"] == "gift wrap"
    assert event.buyer_key == core_ext.buyer_key("t1", "phone", "13800138000")
    assert event.fingerprint == core_ext.fingerprint("t1", "erp", "erp-1", "douyin|DY00000001", "WAIT_AUDIT")
    assert event.rule.startswith("erp.toml@v")
    assert event.raw is raw


def test_unknown_status_is_kept_with_the_unknown_code(erp):
    [event] = normalise_batch(erp, "t1", [erp_event(1, "WAITING_FOR_GODOT")], 0)
    assert event.quarantined and event.status_code == core_ext.CODE_UNKNOWN


def test_batch_with_bad_events_is_refused_naming_each_index(erp):
    no_id = erp_event(2)
    del no_id["event_id"]
    no_order = erp_event(3)
    del no_order["order_no"]
    with pytest.raises(MalformedEventError) as info:
        normalise_batch(erp, "t1", [erp_event(1), no_id, no_order, "not an object"], 0)
    message = str(info.value)
    assert "3 of 4 events refused" in message
    assert "[1]" in message and "[2]" in message and "[3]" in message


def test_waybill_alone_is_enough_to_attach_later(erp):
    raw = erp_event(1, "SENT", waybill="SF9")
    del raw["order_no"]
    [event] = normalise_batch(erp, "t1", [raw], 0)
    assert event.order_id == "" and event.waybill == "SF9"


def test_get_path():
    obj = {"a": {"b": [{"c": 1}]}}
    assert get_path(obj, ["a", "b", "0", "c"]) == 1
    assert get_path(obj, ["a", "b", "5", "c"]) is None
    assert get_path(obj, ["a", "x"]) is None
    assert get_path(obj, ["a", "b", "c"]) is None
