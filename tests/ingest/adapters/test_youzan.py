"""Youzan adapter: Event-Sign = md5(client_id + body + secret), legacy body sign, URL-encoded msg."""

from __future__ import annotations

import hashlib
import urllib.parse

import orjson
import pytest
from hypothesis import given, settings

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.youzan import YouzanAdapter
from gateway._model import Status
from gateway._settings import Secret, SourceCredentials
from tests._support import adapter_request, credentials_for, garbage_json, normalised, youzan_request

adapter = YouzanAdapter()
NOW = 1_764_036_000.0
TID = "E20261125100000074004153"
SUCCESS_MSG = {"client_id": "ignored", "id": TID, "kdt_id": 56232, "kdt_name": "店", "type": "trade_TradeSuccess",
               "status": "TRADE_SUCCESS", "msg_id": "6dc15f0b-aaaa", "sendCount": 1, "version": 1764036000,
               "msg": {"tid": TID, "update_time": "2026-11-25 10:00:00", "remark": "a+b c&d"}}


def request(message=None, tenant="t1", **kw):
    message = dict(SUCCESS_MSG if message is None else message)
    message.pop("client_id", None)
    body, headers = youzan_request(message, tenant, **kw)
    return adapter_request(body, headers)


def test_published_rule_vector():
    body = b'{"client_id":"cid","msg":"%7B%7D"}'
    expected = "8f6a9679511891a3a4ec9fdacfd8d2cd"
    assert hashlib.md5(b"cid" + body + b"sec").hexdigest() == expected
    creds = SourceCredentials(secret=Secret("sec"), app_key="cid")
    adapter.verify(adapter_request(body, {"Event-Sign": expected}), creds, NOW)


def test_good_signature_decodes_msg_and_keeps_version_for_the_rules():
    req = request()
    adapter.verify(req, credentials_for("t1", "youzan"), NOW)
    [decoded] = adapter.decode(req)
    assert decoded["msg"] == SUCCESS_MSG["msg"]  # URL-decoded ("+" and "&" survive) and JSON-decoded
    [event] = normalised("youzan", [decoded])
    assert event.status is Status.DELIVERED
    assert event.order_id == f"youzan|{TID}"
    assert event.data["version"] == 1764036000
    assert event.data["trade_status"] == "TRADE_SUCCESS"


def test_legacy_body_sign_over_msg():
    req = request(legacy=True)
    assert "event-sign" not in req.headers
    adapter.verify(req, credentials_for("t1", "youzan"), NOW)
    bad = request(legacy=True, secret="nope")
    with pytest.raises(SignatureError):
        adapter.verify(bad, credentials_for("t1", "youzan"), NOW)


def test_header_sign_covers_every_body_field():
    good = request()
    tampered = adapter_request(good.body.replace(b"TRADE_SUCCESS", b"TRADE_CLOSED"), dict(good.headers))
    with pytest.raises(SignatureError):
        adapter.verify(tampered, credentials_for("t1", "youzan"), NOW)


@pytest.mark.parametrize("change", ["secret", "other_tenant", "missing", "client_id"])
def test_refusals(change):
    creds = credentials_for("t1", "youzan")
    if change == "secret":
        req = request(secret="wrong")
    elif change == "other_tenant":
        req = request(tenant="t2")
    elif change == "missing":
        good = request()
        req = adapter_request(good.body, {"Content-Type": "application/json"})
    else:  # correctly signed with t1's secret but naming another app in the body
        body = orjson.dumps({**SUCCESS_MSG, "client_id": "someone-else", "msg": "%7B%7D"})
        sign = hashlib.md5(b"t1-youzan-app" + body + b"t1-youzan-secret").hexdigest()
        req = adapter_request(body, {"Event-Sign": sign})
    with pytest.raises(SignatureError):
        adapter.verify(req, creds, NOW)


def test_no_client_id_configured_is_401():
    with pytest.raises(SignatureError, match="app_key"):
        adapter.verify(request(), credentials_for("t1", "youzan", app_key=""), NOW)


def test_a_retry_differs_only_in_send_count_and_has_the_same_event_id():
    first = adapter.decode(request())
    retry = adapter.decode(request({**SUCCESS_MSG, "sendCount": 2}))
    a, b = normalised("youzan", first + retry)
    assert a.fingerprint == b.fingerprint


@pytest.mark.parametrize(("body", "words"), [
    (b"not json", "not JSON"),
    (b"[]", "JSON object"),
    (b'{"id": "1"}', "no msg"),
    (b'{"msg": "%7Bbroken"}', "msg is not JSON"),
    (b'{"msg": "%5B1%5D"}', "msg must be a JSON object"),
    (b'{"msg": "%FF%FE"}', "UTF-8"),
])
def test_malformed_bodies(body, words):
    with pytest.raises(MalformedEventError) as caught:
        adapter.decode(adapter_request(body))
    assert words in str(caught.value)


def test_plain_json_msg_is_accepted_as_is():
    msg = orjson.dumps({"tid": "T+1"}).decode()
    [decoded] = adapter.decode(adapter_request(orjson.dumps({"msg": msg})))
    assert decoded["msg"] == {"tid": "T+1"}
    encoded = urllib.parse.quote_plus(msg)
    [decoded] = adapter.decode(adapter_request(orjson.dumps({"msg": encoded})))
    assert decoded["msg"] == {"tid": "T+1"}


def test_push_url_test_message_stores_nothing():
    assert adapter.decode(adapter_request(b'{"test": true, "msg": ""}')) == []


def test_replies():
    assert orjson.loads(adapter.success({}).body) == {"code": "200", "msg": "success"}
    refused = adapter.failure(400, "no msg field")
    assert refused.status == 400 and orjson.loads(refused.body) == {"code": "400", "msg": "no msg field"}


# -- hypothesis: garbage is malformed (400) or decodes into something the rules take; never a crash --

@settings(max_examples=300, deadline=None)
@given(text=garbage_json(["msg", "msg_id", "id", "type", "status", "version", "test", "tid", "update_time", "client_id"]))
def test_garbage_only_ever_raises_malformed(text):
    for body in (text.encode(), orjson.dumps({"msg": text}), orjson.dumps({"msg": urllib.parse.quote_plus(text)})):
        try:
            normalised("youzan", adapter.decode(adapter_request(body)))
        except MalformedEventError:
            pass
