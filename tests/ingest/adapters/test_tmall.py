"""Tmall/Taobao adapter: TOP sign methods md5 / hmac / hmac-sha256, GMT+8 timestamp window, TMC content."""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse

import orjson
import pytest
from hypothesis import given, settings

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.tmall import TmallAdapter, format_timestamp, parse_timestamp
from gateway._model import Status
from gateway._settings import Secret, SourceCredentials
from tests._support import (
    adapter_request,
    credentials_for,
    garbage_json,
    normalised,
    tmall_request,
    top_sign,
    top_timestamp,
)

adapter = TmallAdapter()
PAY = {"id": "6142200092063758446", "topic": "taobao_trade_TradeBuyerPay", "pub_time": "2026-11-25 10:00:00",
       "user_id": "2200", "user_nick": "shop",
       "content": {"tid": 586070597376760, "oid": 586070597376760, "buyer_nick": "b***", "payment": "30.36",
                   "status": "WAIT_SELLER_SEND_GOODS"}}


def request(message=PAY, tenant="t1", **kw):
    body, headers = tmall_request(message, tenant, **kw)
    return adapter_request(body, headers)


def test_top_documentation_example():
    # open.taobao.com's signing example: secret "helloworld", md5 -> 66987CB115214E59E6EC978214934FB8.
    params = {"app_key": "12345678", "fields": "num_iid,title,nick,price,num", "format": "json",
              "method": "taobao.item.seller.get", "num_iid": "11223344", "session": "test",
              "sign_method": "md5", "timestamp": "2016-01-01 12:00:00", "v": "2.0"}
    params["sign"] = "66987CB115214E59E6EC978214934FB8"
    body = urllib.parse.urlencode(params).encode()
    at = parse_timestamp("2016-01-01 12:00:00")
    adapter.verify(adapter_request(body), SourceCredentials(secret=Secret("helloworld")), at)


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
def test_every_sign_method_verifies_and_decodes_for_the_rules(method):
    req = request(method=method)
    adapter.verify(req, credentials_for("t1", "tmall"), time.time())
    [decoded] = adapter.decode(req)
    assert decoded["content"]["tid"] == 586070597376760
    assert "sign" not in decoded and "app_key" not in decoded
    [event] = normalised("tmall", [decoded])
    assert event.status is Status.PENDING_REVIEW
    assert event.order_id == "tmall|586070597376760"
    assert event.source_event_id == "6142200092063758446"


def test_hmac_variants_match_independent_computation():
    signed = "app_keyAmethodxtimestamp2026-11-25 10:00:00"
    assert top_sign("hmac", "s", signed) == hmac.new(b"s", signed.encode(), hashlib.md5).hexdigest().upper()
    assert top_sign("hmac-sha256", "s", signed) == hmac.new(b"s", signed.encode(), hashlib.sha256).hexdigest().upper()


def test_configured_sign_method_restricts():
    creds = credentials_for("t1", "tmall", sign_method="hmac-sha256")
    adapter.verify(request(method="hmac-sha256"), creds, time.time())
    with pytest.raises(SignatureError, match="not allowed"):
        adapter.verify(request(method="md5"), creds, time.time())


def test_unknown_sign_method_is_refused():
    body, _ = tmall_request(PAY, method="md5")
    fields = dict(urllib.parse.parse_qsl(body.decode()))
    fields["sign_method"] = "sha1"
    with pytest.raises(SignatureError, match="unsupported"):
        adapter.verify(adapter_request(urllib.parse.urlencode(fields).encode()), credentials_for("t1", "tmall"),
                       time.time())


@pytest.mark.parametrize("offset_s", [-601, 601, -86400 * 365])
def test_timestamp_outside_ten_minutes_is_refused(offset_s):
    now = time.time()
    req = request(timestamp=top_timestamp(now + offset_s))
    with pytest.raises(SignatureError, match="replay window"):
        adapter.verify(req, credentials_for("t1", "tmall"), now)


def test_timestamp_inside_the_window_and_gmt8():
    now = time.time()
    adapter.verify(request(timestamp=top_timestamp(now - 590)), credentials_for("t1", "tmall"), now)
    assert parse_timestamp("2026-11-25 10:00:00") == 1_795_572_000  # 02:00 UTC
    assert format_timestamp(1_795_572_000) == "2026-11-25 10:00:00"


@pytest.mark.parametrize("change", ["secret", "tamper", "other_tenant", "app_key", "no_sign", "no_timestamp",
                                    "bad_timestamp"])
def test_refusals(change):
    now = time.time()
    good = request()
    fields = dict(urllib.parse.parse_qsl(good.body.decode()))
    if change == "secret":
        req = request(secret="wrong")
    elif change == "tamper":
        req = adapter_request(urllib.parse.urlencode({**fields, "topic": "taobao_trade_TradeClose"}).encode())
    elif change == "other_tenant":
        req = request(tenant="t2")
    elif change == "app_key":
        params = {**fields, "app_key": "t2-tmall-app"}
        params["sign"] = top_sign("hmac-sha256", "t1-tmall-secret",
                                  "".join(k + params[k] for k in sorted(params) if k != "sign"))
        req = adapter_request(urllib.parse.urlencode(params).encode())
    elif change == "no_sign":
        req = adapter_request(urllib.parse.urlencode({k: v for k, v in fields.items() if k != "sign"}).encode())
    elif change == "no_timestamp":
        req = adapter_request(urllib.parse.urlencode({k: v for k, v in fields.items() if k != "timestamp"}).encode())
    else:
        req = adapter_request(urllib.parse.urlencode({**fields, "timestamp": "yesterday"}).encode())
    with pytest.raises(SignatureError):
        adapter.verify(req, credentials_for("t1", "tmall"), now)


def test_json_body_signed_qimen_style():
    body = orjson.dumps([{**PAY, "content": orjson.dumps(PAY["content"]).decode()}])
    query = {"app_key": "t1-tmall-app", "sign_method": "md5", "timestamp": top_timestamp()}
    concat = "".join(k + query[k] for k in sorted(query)) + body.decode()
    query["sign"] = top_sign("md5", "t1-tmall-secret", concat)
    req = adapter_request(body, {"Content-Type": "application/json"}, query)
    adapter.verify(req, credentials_for("t1", "tmall"), time.time())
    assert adapter.decode(req)[0]["content"]["status"] == "WAIT_SELLER_SEND_GOODS"
    tampered = adapter_request(body.replace(b"BuyerPay", b"TradeClose"), {}, query)
    with pytest.raises(SignatureError):
        adapter.verify(tampered, credentials_for("t1", "tmall"), time.time())


def test_several_messages_in_one_form():
    messages = [PAY, {**PAY, "id": "2", "topic": "taobao_refund_RefundCreated", "content": {"tid": 1, "refund_id": 9}}]
    wire = [{**m, "content": orjson.dumps(m["content"]).decode()} for m in messages]
    req = request({"messages": orjson.dumps(wire).decode()})
    adapter.verify(req, credentials_for("t1", "tmall"), time.time())
    assert [m["topic"] for m in adapter.decode(req)] == ["taobao_trade_TradeBuyerPay", "taobao_refund_RefundCreated"]


@pytest.mark.parametrize(("body", "words"), [
    (b"topic=x&content=%7Bbad", "form.content is not JSON"),
    (b"content=%7B%7D", "topic"),
    (b"topic=x&content=1", "must be a JSON object"),
    (b"messages=%7B%7D", "JSON array"),
    (b"messages=%5B1%5D", "a message must be a JSON object"),
    (b'{"topic": 1}', "topic"),
    (b"[{bad", "not JSON"),
    (b"a=1&a=2", "repeated"),
])
def test_malformed_bodies(body, words):
    with pytest.raises(MalformedEventError) as caught:
        adapter.decode(adapter_request(body))
    assert words in str(caught.value)


def test_query_and_form_may_not_both_give_a_field():
    with pytest.raises(MalformedEventError, match="both"):
        adapter.verify(adapter_request(b"sign=A", {}, {"sign": "B"}), credentials_for("t1", "tmall"), time.time())


def test_replies():
    assert orjson.loads(adapter.success({}).body) == {"response": {"flag": "success", "code": "0", "message": "success"}}
    refused = orjson.loads(adapter.failure(401, "x").body)
    assert refused == {"response": {"flag": "failure", "code": "401", "message": "x"}}


# -- hypothesis: garbage is malformed (400) or decodes into something the rules take; never a crash --

@settings(max_examples=300, deadline=None)
@given(text=garbage_json(["id", "topic", "pub_time", "content", "tid", "oid", "status", "messages"]))
def test_garbage_only_ever_raises_malformed(text):
    forms = ({"topic": text, "content": text}, {"messages": text}, {"id": "1", "topic": "t", "content": text})
    for body in (text.encode(), *(urllib.parse.urlencode(f).encode() for f in forms)):
        try:
            normalised("tmall", adapter.decode(adapter_request(body)))
        except MalformedEventError:
            pass
