"""Cainiao adapter (UNCONFIRMED scheme): data_digest = base64(MD5(content + secret)), XML or JSON content."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse

import orjson
import pytest
from hypothesis import given, settings

from gateway._errors import MalformedEventError, SignatureError
from gateway._ingest.adapters.cainiao import CainiaoAdapter, xml_to_dict
from gateway._model import Status
from gateway._settings import Secret, SourceCredentials
from tests._support import adapter_request, cainiao_request, credentials_for, garbage_json, normalised

adapter = CainiaoAdapter()
NOW = 1_764_036_000.0
ACCEPT_XML = ("<request><mailNo>YT1234567890</mailNo><cpCode>YTO</cpCode><action>ACCEPT</action>"
              "<actionTime>2026-11-25 10:00:00</actionTime><desc>已揽收</desc></request>")
ACCEPT_JSON = orjson.dumps({"mailNo": "YT1234567890", "cpCode": "YTO", "action": "ACCEPT",
                            "actionTime": "2026-11-25 10:00:00", "desc": "已揽收"}).decode()


def request(interface=ACCEPT_XML, tenant="t1", **kw):
    body, headers = cainiao_request(interface, tenant, **kw)
    return adapter_request(body, headers)


def test_rule_vector_and_tolerated_encodings():
    content, secret = "<a>1</a>", "sk"
    expected = "PLed8XxFHd4WFKGVEEqpig=="
    assert base64.b64encode(hashlib.md5((content + secret).encode()).digest()).decode() == expected
    hex_text = hashlib.md5((content + secret).encode()).hexdigest()
    creds = SourceCredentials(secret=Secret(secret))
    for digest in (expected, base64.b64encode(hex_text.encode()).decode(), hex_text, hex_text.upper()):
        body = urllib.parse.urlencode({"logistics_interface": content, "data_digest": digest}).encode()
        adapter.verify(adapter_request(body), creds, NOW)
    swapped_case = expected.swapcase()  # base64 is case-sensitive
    body = urllib.parse.urlencode({"logistics_interface": content, "data_digest": swapped_case}).encode()
    with pytest.raises(SignatureError):
        adapter.verify(adapter_request(body), creds, NOW)


@pytest.mark.parametrize("interface", [ACCEPT_XML, ACCEPT_JSON], ids=["xml", "json"])
def test_accept_decodes_for_the_rules(interface):
    req = request(interface)
    adapter.verify(req, credentials_for("t1", "cainiao"), NOW)
    [decoded] = adapter.decode(req)
    assert decoded["logistics_interface"]["mailNo"] == "YT1234567890"
    [event] = normalised("cainiao", [decoded])
    assert event.status is Status.FULFILLMENT_STARTED
    assert event.waybill == "YT1234567890"


@pytest.mark.parametrize("change", ["secret", "tamper", "other_tenant", "partner", "missing"])
def test_refusals(change):
    good = request()
    if change == "secret":
        req = request(secret="wrong")
    elif change == "tamper":
        req = adapter_request(good.body.replace(b"ACCEPT", b"SIGNED"))
    elif change == "other_tenant":
        req = request(tenant="t2")
    elif change == "partner":  # t1's secret, but naming another partner
        req = request(partner_code="t2-cainiao-app")
    else:
        req = adapter_request(b"msg_type=TRACE_PUSH")
    with pytest.raises(SignatureError):
        adapter.verify(req, credentials_for("t1", "cainiao"), NOW)


def test_partner_binding_is_optional():
    adapter.verify(request(partner_code="anyone"), credentials_for("t1", "cainiao", app_key=""), NOW)


def test_xml_shapes():
    assert xml_to_dict("<r><a>1</a><a>2</a><b><c> x </c></b><d/></r>") == \
        {"a": ["1", "2"], "b": {"c": "x"}, "d": ""}
    assert xml_to_dict("<mailNo>YT1</mailNo>") == {"mailNo": "YT1"}


@pytest.mark.parametrize(("interface", "words"), [
    ("<r><a>1</r>", "not well-formed"),
    ('<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', "DOCTYPE"),
    ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><a>&x;</a></r>', "DOCTYPE"),
    ('<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>', "DOCTYPE"),
    ("{broken", "not JSON"),
    ("[1, 2]", "JSON object or XML"),
    ("<a>" * 40 + "x" + "</a>" * 40, "deeper"),
])
def test_malformed_interfaces(interface, words):
    with pytest.raises(MalformedEventError) as caught:
        adapter.decode(request(interface))
    assert words in str(caught.value)


def test_malformed_forms():
    for body in (b"data_digest=x", b"\xff\xfe", b"logistics_interface=a&logistics_interface=b"):
        with pytest.raises(MalformedEventError):
            adapter.decode(adapter_request(body))


def test_replies():
    assert orjson.loads(adapter.success({}).body) == {"success": "true"}
    refused = orjson.loads(adapter.failure(400, "bad").body)
    assert refused == {"success": "false", "errorCode": "400", "errorMsg": "bad"}


# -- hypothesis: garbage is malformed (400) or decodes into something the rules take; never a crash --

@settings(max_examples=300, deadline=None)
@given(text=garbage_json(["mailNo", "action", "actionTime", "cpCode", "desc"]))
def test_garbage_only_ever_raises_malformed(text):
    xml = "<r>" + "".join(f"<{k}>{v}</{k}>" for k, v in orjson.loads(text).items()) + "</r>" \
        if text.startswith("{") else text
    for interface in (text, xml, "<" + text):
        try:
            normalised("cainiao", adapter.decode(adapter_request(
                urllib.parse.urlencode({"logistics_interface": interface}).encode())))
        except MalformedEventError:
            pass
