"""Douyin adapter: event-sign = md5(app_key + body + app_secret), app-id binding, the array envelope."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given, settings

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest import ADAPTERS
from gateway._ingest.adapters.douyin import DouyinAdapter
from gateway._model import Status
from gateway._settings import Secret, SourceCredentials
from tests._support import adapter_request, credentials_for, douyin_request, garbage_json, normalised

adapter = DouyinAdapter()
NOW = 1_764_036_000.0
PAID = {"tag": "101", "msg_id": "7000000000000000001",
        "data": {"p_id": 6919000000000000001, "s_ids": [6919000000000000002], "shop_id": 77, "order_status": 2,
                 "order_type": 0, "biz": 2, "pay_amount": 12900, "pay_time": 1764036000, "pay_type": 1}}


def request(messages=(PAID,), tenant="t1", **kw):
    body, headers = douyin_request(list(messages), tenant, **kw)
    return adapter_request(body, headers)


def test_registered_under_its_source_name():
    assert ADAPTERS["douyin"] is not None and ADAPTERS["douyin"].source == "douyin"


def test_published_rule_vector():
    # Computed by hand from the rule: md5("app-1" + body + "s3cret"), lower-case hex.
    body = b'[{"tag":"101","msg_id":"1","data":"{\\"p_id\\":1}"}]'
    expected = "01ae0caa88b5668aefca6ea8d73143ae"
    assert hashlib.md5(b"app-1" + body + b"s3cret").hexdigest() == expected
    creds = SourceCredentials(secret=Secret("s3cret"), app_key="app-1")
    adapter.verify(adapter_request(body, {"app-id": "app-1", "event-sign": expected}), creds, NOW)
    adapter.verify(adapter_request(body, {"app-id": "app-1", "event-sign": expected.upper()}), creds, NOW)


def test_good_signature_decodes_data_in_place_for_the_rules():
    req = request()
    adapter.verify(req, credentials_for("t1", "douyin"), NOW)
    events = adapter.decode(req)
    assert events[0]["data"]["p_id"] == 6919000000000000001  # the JSON string is now an object
    [event] = normalised("douyin", events)
    assert event.status is Status.PENDING_REVIEW
    assert event.order_id == "douyin|6919000000000000001"
    assert event.source_event_id == "7000000000000000001"


@pytest.mark.parametrize("change", ["secret", "tamper", "other_tenant", "app_id"])
def test_wrong_signature_inputs_are_refused(change):
    creds = credentials_for("t1", "douyin")
    if change == "secret":
        req = request(secret="not-the-secret")
    elif change == "tamper":
        good = request()
        req = adapter_request(good.body.replace(b'101', b'106', 1), dict(good.headers))
    elif change == "other_tenant":
        req = request(tenant="t2")  # t2's app key and secret, sent to t1
    else:
        good = request()
        req = adapter_request(good.body, {**good.headers, "app-id": "t2-douyin-app"})
    with pytest.raises(SignatureError):
        adapter.verify(req, creds, NOW)


def test_a_signature_made_with_another_tenants_secret_under_our_app_key_fails():
    req = request(secret="t2-douyin-secret", app_key="t1-douyin-app")
    with pytest.raises(SignatureError, match="does not verify"):
        adapter.verify(req, credentials_for("t1", "douyin"), NOW)


@pytest.mark.parametrize("missing", ["app-id", "event-sign"])
def test_missing_headers_are_401(missing):
    good = request()
    headers = {k: v for k, v in good.headers.items() if k != missing}
    with pytest.raises(SignatureError, match="missing"):
        adapter.verify(adapter_request(good.body, headers), credentials_for("t1", "douyin"), NOW)


def test_no_app_key_configured_is_401_not_a_crash():
    with pytest.raises(SignatureError, match="app_key"):
        adapter.verify(request(), credentials_for("t1", "douyin", app_key=""), NOW)


def test_allow_list():
    creds = credentials_for("t1", "douyin", allow_ips=("10.0.0.5",))
    good = request()
    with pytest.raises(SignatureError, match="allow-list"):
        adapter.verify(good, creds, NOW)
    adapter.verify(adapter_request(good.body, dict(good.headers), peer="10.0.0.5"), creds, NOW)


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "not JSON"),
    (b'{"tag": "101"}', "JSON array"),
    (b"[3]", "[0]: not a JSON object"),
    (b'[{"msg_id": "1", "data": "{}"}]', "tag"),
    (b'[{"tag": "101", "data": "{}"}]', "msg_id"),
    (b'[{"tag": "101", "msg_id": "1", "data": "{oops"}]', "[0].data is not JSON"),
    (b'[{"tag": "101", "msg_id": "1", "data": "[1]"}]', "[0].data must be a JSON object"),
    (b'[{"tag": "101", "msg_id": "1"}]', "[0].data"),
])
def test_malformed_bodies(body, words):
    with pytest.raises(MalformedEventError) as caught:
        adapter.decode(adapter_request(body))
    assert words in str(caught.value)


def test_product_changed_without_an_order_is_skipped():
    product = {"tag": "400", "msg_id": "9", "data": {"product_id": 5}}
    events = adapter.decode(request([product, PAID]))
    assert [e["tag"] for e in events] == ["101"]


def test_replies_are_douyins_own_shapes():
    assert orjson.loads(adapter.success({"accepted": 1}).body) == {"code": 0, "msg": "success"}
    refused = adapter.failure(401, "signature does not verify")
    assert refused.status == 401 and orjson.loads(refused.body) == {"code": 1, "msg": "fail"}


def test_secret_never_in_errors_or_reprs():
    creds = credentials_for("t1", "douyin")
    for req in (request(secret="x"), adapter_request(b"[]", {"app-id": "t1-douyin-app"})):
        with pytest.raises(SignatureError) as caught:
            adapter.verify(req, creds, NOW)
        assert "t1-douyin-secret" not in str(caught.value)
    assert "t1-douyin-secret" not in repr(creds)


# -- hypothesis: garbage is malformed (400) or decodes into something the rules take; never a crash --

@settings(max_examples=300, deadline=None)
@given(text=garbage_json(["tag", "msg_id", "data", "p_id", "s_ids", "logistics_msg", "logistics_code", "update_time"]))
def test_garbage_only_ever_raises_malformed(text):
    try:
        normalised("douyin", adapter.decode(adapter_request(text.encode())))
    except MalformedEventError:
        pass
