"""Xiaohongshu adapter: configurable HMAC-SHA256 header (UNCONFIRMED scheme), IP allow-list, envelope."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest
from hypothesis import given, settings

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.xiaohongshu import XiaohongshuAdapter
from gateway._model import Status
from gateway._settings import Secret, SourceCredentials
from tests._support import adapter_request, credentials_for, garbage_json, normalised, xiaohongshu_request

adapter = XiaohongshuAdapter()
NOW = 1_764_036_000.0
PAID = {"msgTag": "msg_fulfillment_status_change", "sellerId": "s-1",
        "data": {"orderId": "P771234", "orderStatus": 2, "updateTime": 1764036000000}}


def request(messages=(PAID,), tenant="t1", **kw):
    body, headers = xiaohongshu_request(list(messages), tenant, **kw)
    return adapter_request(body, headers)


def test_rule_vector_and_accepted_spellings():
    body = b'[{"msgTag":"msg_item_create","sellerId":"1","data":"{}"}]'
    expected = "9349a16f0b2cce1399e8c876bc2fb8386665cc483b9ce5ac6e75f13aedc23c06"
    assert hmac.new(b"k", body, hashlib.sha256).hexdigest() == expected
    creds = SourceCredentials(secret=Secret("k"))
    for value in (expected, expected.upper(), f"sha256={expected}", f"SHA256={expected}"):
        adapter.verify(adapter_request(body, {"x-xhs-signature": value}), creds, NOW)
    plain_md5 = hashlib.md5(b"k" + body + b"k").hexdigest()  # not the scheme: refused
    with pytest.raises(SignatureError):
        adapter.verify(adapter_request(body, {"x-xhs-signature": plain_md5}), creds, NOW)


def test_good_signature_decodes_data_for_the_rules():
    req = request()
    adapter.verify(req, credentials_for("t1", "xiaohongshu"), NOW)
    [event] = normalised("xiaohongshu", adapter.decode(req))
    assert event.status is Status.PENDING_REVIEW
    assert event.order_id == "xiaohongshu|P771234"


def test_the_header_name_is_configurable():
    good = request()
    moved = adapter_request(good.body, {"x-ark-sign": good.headers["x-xhs-signature"]})
    creds = credentials_for("t1", "xiaohongshu", signature_header="x-ark-sign")
    adapter.verify(moved, creds, NOW)
    with pytest.raises(SignatureError, match="missing x-xhs-signature"):
        adapter.verify(moved, credentials_for("t1", "xiaohongshu"), NOW)


@pytest.mark.parametrize("change", ["secret", "tamper", "other_tenant", "missing", "empty"])
def test_refusals(change):
    good = request()
    if change == "secret":
        req = request(secret="wrong")
    elif change == "tamper":
        req = adapter_request(good.body.replace(b"P771234", b"P771235"), dict(good.headers))
    elif change == "other_tenant":
        req = request(tenant="t2")
    elif change == "missing":
        req = adapter_request(good.body, {})
    else:
        req = adapter_request(good.body, {"x-xhs-signature": "sha256="})
    with pytest.raises(SignatureError):
        adapter.verify(req, credentials_for("t1", "xiaohongshu"), NOW)


def test_allow_list_is_checked_before_anything_else():
    creds = credentials_for("t1", "xiaohongshu", allow_ips=("203.0.113.7",))
    good = request()
    with pytest.raises(SignatureError, match="allow-list"):
        adapter.verify(good, creds, NOW)
    adapter.verify(adapter_request(good.body, dict(good.headers), peer="203.0.113.7"), creds, NOW)


@pytest.mark.parametrize(("body", "words"), [
    (b"\xff", "not JSON"),
    (b"{}", "JSON array"),
    (b'["x"]', "[0]: not a JSON object"),
    (b'[{"data": "{}"}]', "msgTag"),
    (b'[{"msgTag": "t", "data": "nope"}]', "[0].data is not JSON"),
])
def test_malformed_bodies(body, words):
    with pytest.raises(MalformedEventError) as caught:
        adapter.decode(adapter_request(body))
    assert words in str(caught.value)


def test_item_created_names_no_order_and_is_skipped():
    item = {"msgTag": "msg_item_create", "sellerId": "s-1", "data": {"itemId": "x"}}
    assert [e["msgTag"] for e in adapter.decode(request([item, PAID]))] == ["msg_fulfillment_status_change"]


def test_replies():
    assert orjson.loads(adapter.success({}).body) == {"success": True, "error_code": 0, "error_msg": ""}
    refused = orjson.loads(adapter.failure(401, "signature does not verify").body)
    assert refused == {"success": False, "error_code": 401, "error_msg": "signature does not verify"}


# -- hypothesis: garbage is malformed (400) or decodes into something the rules take; never a crash --

@settings(max_examples=300, deadline=None)
@given(text=garbage_json(["msgTag", "sellerId", "data", "orderId", "orderStatus", "updateTime"]))
def test_garbage_only_ever_raises_malformed(text):
    try:
        normalised("xiaohongshu", adapter.decode(adapter_request(text.encode())))
    except MalformedEventError:
        pass
