"""Pinduoduo: the WebSocket frame helpers and the relayed-webhook adapter (PDD API sign)."""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.parse

import orjson
import pytest
from hypothesis import given, settings

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.pinduoduo import (
    PinduoduoAdapter,
    ack_for,
    ack_frame,
    api_sign,
    connection_sign,
    connection_url,
    decode_frame,
    heartbeat_frame,
)
from gateway._model import Status
from tests._support import adapter_request, credentials_for, garbage_json, normalised, pdd_request

adapter = PinduoduoAdapter()
REFUND = {"id": 7123456789, "commandType": "Common", "sendTime": 1764036000000,
          "message": {"type": "pdd_refund_RefundCreated", "mallID": 9,
                      "content": {"tid": "251125-123456789", "mall_id": 9, "refund_id": 55, "refund_status": 2}}}
HEARTBEAT = {"commandType": "HeartBeat", "sendTime": 1764036000000}


# -- the frame helpers --------------------------------------------------------------------------

def test_api_sign_matches_the_published_sdk_vector():
    # whalesky-labs/pdd-sdk-php tests/Unit/Md5SignerTest.php
    params = {"client_id": "test-client", "data_type": "JSON", "logistics_id": "9", "order_sn": "240101-1",
              "order_state": "1", "timestamp": "1720000000", "type": "pdd.erp.order.sync", "version": "V1",
              "waybill_no": "SF123"}
    assert api_sign(params, b"test-secret") == "CC0F30530BBAC3FD67608391D61E370C"
    assert api_sign({**params, "sign": "old", "empty": ""}, b"test-secret") == "CC0F30530BBAC3FD67608391D61E370C"


def test_connection_sign_is_urlencoded_base64_of_the_hex_text():
    hex_text = hashlib.md5(b"cid" + b"1764036000000" + b"sec").hexdigest()
    expected = urllib.parse.quote(base64.b64encode(hex_text.encode()).decode(), safe="")
    assert connection_sign("cid", 1764036000000, b"sec") == expected
    assert "=" not in expected and expected.endswith("%3D")  # 32 bytes -> 44 base64 chars with one pad
    assert base64.b64decode(urllib.parse.unquote(expected)).decode() == hex_text


def test_connection_url():
    url = connection_url("wss://message-api.pinduoduo.com/message/", "cid", 1764036000000, b"sec")
    assert url == f"wss://message-api.pinduoduo.com/message/cid/1764036000000/{connection_sign('cid', 1764036000000, b'sec')}"


def test_decode_frame_decodes_content_in_place():
    wire = {**REFUND, "message": {**REFUND["message"], "content": orjson.dumps(REFUND["message"]["content"]).decode()}}
    frame = decode_frame(orjson.dumps(wire))
    assert frame == REFUND
    assert decode_frame(orjson.dumps(wire).decode()) == REFUND  # str works too
    assert decode_frame(orjson.dumps(HEARTBEAT)) == HEARTBEAT


@pytest.mark.parametrize(("raw", "words"), [
    (b"nope", "not JSON"),
    (b"[]", "JSON object"),
    (b'{"commandType": "Weird"}', "unknown commandType"),
    (b'{"commandType": ["Common"]}', "unknown commandType"),  # unhashable: once a 500
    (b'{"commandType": "Common"}', "without a message"),
    (b'{"commandType": "Common", "message": {"content": "{oops"}}', "content is not JSON"),
    (b'{"commandType": "Common", "message": {"content": 3}}', "JSON object"),
])
def test_decode_frame_refuses_malformed_frames(raw, words):
    with pytest.raises(MalformedEventError) as caught:
        decode_frame(raw)
    assert words in str(caught.value)


def test_ack_and_heartbeat_frames():
    assert orjson.loads(ack_frame(7123456789, "pdd_refund_RefundCreated", 9, now_ms=5)) == {
        "id": 7123456789, "commandType": "Ack", "time": 5, "sendTime": 5,
        "type": "pdd_refund_RefundCreated", "mallID": 9}
    # the ack echoes the received frame's sendTime, as the public PDD clients do
    assert ack_for(REFUND, now_ms=5) == ack_frame(7123456789, "pdd_refund_RefundCreated", 9, now_ms=5,
                                                  send_time=REFUND["sendTime"])
    assert orjson.loads(ack_for(REFUND, now_ms=5))["sendTime"] == REFUND["sendTime"]
    assert orjson.loads(heartbeat_frame(now_ms=5)) == {"commandType": "HeartBeat", "time": 5, "sendTime": 5}


# -- the relayed webhook ------------------------------------------------------------------------

def request(frames=(REFUND,), tenant="t1", **kw):
    body, headers = pdd_request(list(frames), tenant, **kw)
    return adapter_request(body, headers)


def test_relayed_refund_decodes_for_the_rules():
    req = request([REFUND, HEARTBEAT])
    adapter.verify(req, credentials_for("t1", "pinduoduo"), time.time())
    events = adapter.decode(req)
    assert len(events) == 1  # the heartbeat is connection chatter
    [event] = normalised("pinduoduo", events)
    assert event.status is Status.REFUND_INITIATED
    assert event.order_id == "pinduoduo|251125-123456789"


def test_single_frame_and_query_mode():
    body, _ = pdd_request(REFUND)
    fields = dict(urllib.parse.parse_qsl(body.decode()))
    raw = fields.pop("data").encode()
    fields.pop("sign")
    query = {**fields}
    query["sign"] = api_sign({**query, "data": raw.decode()}, b"t1-pinduoduo-secret")
    req = adapter_request(raw, {"Content-Type": "application/json"}, query)
    adapter.verify(req, credentials_for("t1", "pinduoduo"), time.time())
    assert adapter.decode(req)[0]["message"]["content"]["tid"] == "251125-123456789"


@pytest.mark.parametrize("change", ["secret", "tamper", "other_tenant", "client_id", "old", "future", "no_sign",
                                    "no_timestamp", "bad_timestamp"])
def test_refusals(change):
    now = time.time()
    good = request()
    fields = dict(urllib.parse.parse_qsl(good.body.decode()))
    resign = lambda params: {**params, "sign": api_sign(params, b"t1-pinduoduo-secret")}  # noqa: E731
    if change == "secret":
        req = request(secret="wrong")
    elif change == "tamper":
        req = adapter_request(good.body.replace(b"RefundCreated", b"RefundClosed"))
    elif change == "other_tenant":
        req = request(tenant="t2")
    elif change == "client_id":
        req = adapter_request(urllib.parse.urlencode(resign({**fields, "client_id": "t2-pinduoduo-app"})).encode())
    elif change == "old":
        req = request(timestamp=int(now) - 301)
    elif change == "future":
        req = request(timestamp=int(now) + 301)
    elif change == "no_sign":
        req = adapter_request(urllib.parse.urlencode({k: v for k, v in fields.items() if k != "sign"}).encode())
    elif change == "no_timestamp":
        params = {k: v for k, v in fields.items() if k not in ("sign", "timestamp")}
        req = adapter_request(urllib.parse.urlencode(resign(params)).encode())
    else:
        req = adapter_request(urllib.parse.urlencode(resign({**fields, "timestamp": "soon"})).encode())
    with pytest.raises(SignatureError):
        adapter.verify(req, credentials_for("t1", "pinduoduo"), now)


def test_client_id_binding_is_optional():
    adapter.verify(request(), credentials_for("t1", "pinduoduo", app_key=""), time.time())


@pytest.mark.parametrize(("body", "words"), [
    (b"client_id=1", "no data"),
    (b"data=%7Bbad", "data is not JSON"),
    (b"data=%5B1%5D", "frame [0]"),
    (b'data={"commandType":"Common","message":{"content":"x"}}', "content is not JSON"),
    (b"x", "not a form"),
])
def test_malformed_bodies(body, words):
    with pytest.raises(MalformedEventError) as caught:
        adapter.decode(adapter_request(body))
    assert words in str(caught.value)


def test_replies():
    assert orjson.loads(adapter.success({"accepted": 2}).body) == {
        "success": True, "error_code": 0, "error_msg": "", "accepted": 2}
    assert orjson.loads(adapter.failure(401, "x").body) == {"success": False, "error_code": 401, "error_msg": "x"}


# -- hypothesis: garbage is malformed (400) or decodes into something the rules take; never a crash --

@settings(max_examples=300, deadline=None)
@given(text=garbage_json(["id", "commandType", "sendTime", "message", "type", "mallID", "content", "tid", "order_status"]))
def test_garbage_only_ever_raises_malformed(text):
    try:
        decode_frame(text)
    except MalformedEventError:
        pass
    try:
        normalised("pinduoduo", adapter.decode(adapter_request(urllib.parse.urlencode({"data": text}).encode())))
    except MalformedEventError:
        pass
