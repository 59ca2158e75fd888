"""Kuaidi100 adapter: form param + sign = UPPER(MD5(param + salt))."""

from __future__ import annotations

import hashlib
import urllib.parse

import orjson
import pytest
from hypothesis import given, settings

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.kuaidi100 import Kuaidi100Adapter
from gateway._model import Status
from gateway._settings import Secret, SourceCredentials
from tests._support import (
    adapter_request,
    credentials_for,
    garbage_json,
    kuaidi100_param,
    kuaidi100_request,
    normalised,
)

adapter = Kuaidi100Adapter()
NOW = 1_764_036_000.0


def request(state="1", tenant="t1", **kw):
    body, headers = kuaidi100_request(kuaidi100_param("SF1234567890", state), tenant, **kw)
    return adapter_request(body, headers)


def test_rule_vector():
    param = '{"status":"polling","lastResult":{"state":"1","nu":"SF1"}}'
    expected = hashlib.md5((param + "salt").encode()).hexdigest().upper()
    assert expected == "38C82E37B2B5294E985742E80F55F209"
    body = urllib.parse.urlencode({"param": param, "sign": expected}).encode()
    adapter.verify(adapter_request(body), SourceCredentials(secret=Secret("salt")), NOW)
    lower = urllib.parse.urlencode({"param": param, "sign": expected.lower()}).encode()
    adapter.verify(adapter_request(lower), SourceCredentials(secret=Secret("salt")), NOW)


def test_picked_up_decodes_param_for_the_rules():
    req = request("1")
    adapter.verify(req, credentials_for("t1", "kuaidi100"), NOW)
    [decoded] = adapter.decode(req)
    assert decoded["param"]["lastResult"]["nu"] == "SF1234567890"
    [event] = normalised("kuaidi100", [decoded])
    assert event.status is Status.FULFILLMENT_STARTED
    assert event.waybill == "SF1234567890" and event.order_id == ""


@pytest.mark.parametrize("change", ["secret", "tamper", "other_tenant", "no_sign", "no_param", "empty_body"])
def test_refusals(change):
    good = request()
    if change == "secret":
        req = request(secret="wrong")
    elif change == "tamper":
        req = adapter_request(good.body.replace(b"SF1234567890", b"SF1234567891"))
    elif change == "other_tenant":
        req = request(tenant="t2")
    elif change == "no_sign":
        fields = dict(urllib.parse.parse_qsl(good.body.decode()))
        req = adapter_request(urllib.parse.urlencode({"param": fields["param"]}).encode())
    elif change == "no_param":
        req = adapter_request(b"sign=ABC")
    else:
        req = adapter_request(b"")
    with pytest.raises(SignatureError):
        adapter.verify(req, credentials_for("t1", "kuaidi100"), NOW)


@pytest.mark.parametrize(("body", "words"), [
    (b"param=%7Bnot-json&sign=X", "param is not JSON"),
    (b"param=%5B%5D&sign=X", "param must be a JSON object"),
    (b"sign=X", "no param"),
    (b"param=1&param=2", "repeated"),
    (b"just-text", "not a form"),
    (b"param=%FF", "UTF-8"),
])
def test_malformed_bodies(body, words):
    with pytest.raises(MalformedEventError) as caught:
        adapter.decode(adapter_request(body))
    assert words in str(caught.value)


def test_replies():
    assert orjson.loads(adapter.success({}).body) == {"result": True, "returnCode": "200", "message": "成功"}
    refused = orjson.loads(adapter.failure(401, "signature does not verify").body)
    assert refused == {"result": False, "returnCode": "401", "message": "signature does not verify"}


# -- hypothesis: garbage is malformed (400) or decodes into something the rules take; never a crash --

@settings(max_examples=300, deadline=None)
@given(text=garbage_json(["param", "status", "lastResult", "state", "nu", "data", "ftime", "context", "com"]))
def test_garbage_only_ever_raises_malformed(text):
    try:
        normalised("kuaidi100", adapter.decode(adapter_request(urllib.parse.urlencode({"param": text}).encode())))
    except MalformedEventError:
        pass
