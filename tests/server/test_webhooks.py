"""Platform webhooks end to end: the real daemon, real HTTP on 127.0.0.1, real RocksDB, each platform's
own signature and reply."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from typing import Any

import httpx
import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway._daemon import serve_gateway
from gateway._settings import load_settings
from tests._support import (
    PLATFORM_SOURCES,
    SECRETS,
    cainiao_request,
    douyin_request,
    erp_event,
    kuaidi100_param,
    kuaidi100_request,
    pdd_request,
    platform_app_key,
    platform_secret,
    signed,
    tmall_request,
    top_sign,
    top_timestamp,
    write_platform_config,
    xiaohongshu_request,
    youzan_request,
)

P_ID = "6919000000000000001"
PDD_TID = "251125-123456789"


def douyin_paid(msg_id: str = "7000000000000000001", tag: str = "101") -> dict[str, Any]:
    return {"tag": tag, "msg_id": msg_id,
            "data": {"p_id": int(P_ID), "s_ids": [6919000000000000002], "shop_id": 77, "order_status": 2,
                     "order_type": 0, "biz": 2, "pay_amount": 12900, "pay_time": 1764036000, "pay_type": 1}}


def pdd_frame(frame_id: int, topic: str, **content: Any) -> dict[str, Any]:
    return {"id": frame_id, "commandType": "Common", "sendTime": 1764036000000,
            "message": {"type": topic, "mallID": 9, "content": {"tid": PDD_TID, "mall_id": 9, **content}}}


YOUZAN_PAID = {"id": "E20261125100000074004153", "kdt_id": 56232, "kdt_name": "店", "type": "trade_TradeBuyerPay",
               "status": "WAIT_SELLER_SEND_GOODS", "msg_id": "6dc15f0b-0001", "sendCount": 1, "version": 1764036000,
               "msg": {"tid": "E20261125100000074004153", "update_time": "2026-11-25 10:00:00"}}
TMALL_PAY = {"id": "6142200092063758446", "topic": "taobao_trade_TradeBuyerPay", "pub_time": "2026-11-25 10:00:00",
             "content": {"tid": 586070597376760, "oid": 586070597376760, "payment": "30.36"}}
XHS_PAID = {"msgTag": "msg_fulfillment_status_change", "sellerId": "s-1",
            "data": {"orderId": "P771234", "orderStatus": 2, "updateTime": 1764036000000}}
CAINIAO_ACCEPT = ("<request><mailNo>YT1234567890</mailNo><cpCode>YTO</cpCode><action>ACCEPT</action>"
                  "<actionTime>2026-11-25 10:00:00</actionTime><desc>已揽收</desc></request>")

# One good request per source, and the order it should create (None: waybill only).
GOOD = {
    "douyin": (lambda t, **kw: douyin_request([douyin_paid()], t, **kw), f"douyin|{P_ID}", "PENDING_REVIEW"),
    "youzan": (lambda t, **kw: youzan_request(dict(YOUZAN_PAID), t, **kw), "youzan|E20261125100000074004153",
               "PENDING_REVIEW"),
    "xiaohongshu": (lambda t, **kw: xiaohongshu_request([XHS_PAID], t, **kw), "xiaohongshu|P771234",
                    "PENDING_REVIEW"),
    "tmall": (lambda t, **kw: tmall_request(TMALL_PAY, t, **kw), "tmall|586070597376760", "PENDING_REVIEW"),
    "pinduoduo": (lambda t, **kw: pdd_request([pdd_frame(1, "pdd_trade_TradeConfirmed", order_status=1)], t, **kw),
                  f"pinduoduo|{PDD_TID}", "PENDING_REVIEW"),
    "kuaidi100": (lambda t, **kw: kuaidi100_request(kuaidi100_param("SF0000000001", "1"), t, **kw), None, None),
    "cainiao": (lambda t, **kw: cainiao_request(CAINIAO_ACCEPT, t, **kw), None, None),
}
SUCCESS_REPLY = {
    "douyin": {"code": 0, "msg": "success"},
    "youzan": {"code": "200", "msg": "success"},
    "xiaohongshu": {"success": True, "error_code": 0, "error_msg": ""},
    "tmall": {"response": {"flag": "success", "code": "0", "message": "success"}},
    "pinduoduo": {"success": True, "error_code": 0, "error_msg": "", "accepted": 1},
    "kuaidi100": {"result": True, "returnCode": "200", "message": "成功"},
    "cainiao": {"success": "true"},
}


@pytest.fixture
async def gateway(tmp_path, nursery):
    settings = load_settings(write_platform_config(tmp_path))
    shutdown = trio.Event()
    services = await nursery.start(serve_gateway, settings, shutdown)
    base = services.bound[0]
    async with httpx.AsyncClient(base_url=base if "://" in base else f"http://{base}", timeout=10) as client:
        client.services = services
        client.auth_headers = {"Authorization": f"Bearer {services.api_token}"}
        yield client
    shutdown.set()


async def send(client: httpx.AsyncClient, source: str, request: tuple[bytes, dict[str, str]], tenant: str = "t1"):
    body, headers = request
    return await client.post(f"/webhooks/{source}/{tenant}", content=body, headers=headers)


def event_log(client, tenant="t1"):
    return list(client.services.store.iter_events(tenant))


def status_of(client, order_id, tenant="t1"):
    order = client.services.store.get_order(tenant, order_id)
    return order.status.value if order is not None else None


# -- the flows the issue names ------------------------------------------------------------------

async def test_douyin_paid_is_pending_review(gateway):
    response = await send(gateway, "douyin", douyin_request([douyin_paid()]))
    assert response.status_code == 200, response.text
    assert response.json() == {"code": 0, "msg": "success"}
    assert status_of(gateway, f"douyin|{P_ID}") == "PENDING_REVIEW"
    [logged] = event_log(gateway)
    assert logged["source"] == "douyin" and logged["raw_status"] == "101"


async def test_kuaidi100_pickup_of_a_known_waybill_starts_fulfilment(gateway):
    body, headers = signed([erp_event(1, "PACKED", order="DY1", waybill="SF1234567890")])
    assert (await gateway.post("/webhooks/erp/t1", content=body, headers=headers)).status_code == 200
    assert status_of(gateway, "douyin|DY1") == "PACKED"
    response = await send(gateway, "kuaidi100", kuaidi100_request(kuaidi100_param("SF1234567890", "1")))
    assert response.status_code == 200, response.text
    assert response.json() == {"result": True, "returnCode": "200", "message": "成功"}
    assert status_of(gateway, "douyin|DY1") == "FULFILLMENT_STARTED"


async def test_pinduoduo_refund_is_refund_initiated(gateway):
    confirmed = await send(gateway, "pinduoduo", pdd_request([pdd_frame(1, "pdd_trade_TradeConfirmed", order_status=1)]))
    assert confirmed.status_code == 200, confirmed.text
    assert status_of(gateway, f"pinduoduo|{PDD_TID}") == "PENDING_REVIEW"
    refund = pdd_frame(2, "pdd_refund_RefundCreated", refund_id=55, refund_status=2)
    response = await send(gateway, "pinduoduo", pdd_request([refund, {"commandType": "HeartBeat"}]))
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "error_code": 0, "error_msg": "", "accepted": 1}
    assert status_of(gateway, f"pinduoduo|{PDD_TID}") == "REFUND_INITIATED"


async def test_unknown_status_is_quarantined_and_listed(gateway):
    response = await send(gateway, "douyin", douyin_request([douyin_paid("m-999", tag="999")]))
    assert response.status_code == 200
    assert response.json() == {"code": 0, "msg": "success"}  # kept, so the platform must not retry
    listed = (await gateway.get("/api/v1/tenants/t1/quarantine", headers=gateway.auth_headers)).json()
    assert listed["count"] == 1
    assert listed["items"][0]["raw_status"] == "999"
    assert listed["items"][0]["reason"] == "unknown_status"


async def test_youzan_retry_is_a_duplicate_with_the_platforms_success_reply(gateway):
    first = await send(gateway, "youzan", youzan_request(dict(YOUZAN_PAID)))
    assert first.status_code == 200 and first.json() == {"code": "200", "msg": "success"}
    retry = await send(gateway, "youzan", youzan_request({**YOUZAN_PAID, "sendCount": 2}))
    assert retry.status_code == 200 and retry.json() == {"code": "200", "msg": "success"}
    assert len(event_log(gateway)) == 1
    assert status_of(gateway, "youzan|E20261125100000074004153") == "PENDING_REVIEW"


async def test_douyin_same_body_again_is_one_event(gateway):
    request = douyin_request([douyin_paid()])
    for _ in range(3):
        response = await send(gateway, "douyin", request)
        assert response.status_code == 200 and response.json() == {"code": 0, "msg": "success"}
    assert len(event_log(gateway)) == 1


@pytest.mark.parametrize("source", PLATFORM_SOURCES)
async def test_every_source_accepts_its_own_signed_push(gateway, source):
    build, order_id, status = GOOD[source]
    response = await send(gateway, source, build("t1"))
    assert response.status_code == 200, response.text
    assert response.json() == SUCCESS_REPLY[source]
    assert len(event_log(gateway)) == 1
    if order_id is not None:
        assert status_of(gateway, order_id) == status


@pytest.mark.parametrize("source", PLATFORM_SOURCES)
async def test_bad_signature_is_401_and_stores_nothing(gateway, source):
    build, order_id, _ = GOOD[source]
    response = await send(gateway, source, build("t1", secret="not-the-secret"))
    assert response.status_code == 401
    assert "not-the-secret" not in response.text and platform_secret("t1", source) not in response.text
    assert event_log(gateway) == []
    if order_id is not None:
        assert status_of(gateway, order_id) is None
    assert gateway.services.store.quarantine_count("t1") == 0


@pytest.mark.parametrize("source", PLATFORM_SOURCES)
async def test_one_tenants_secret_does_not_verify_another_tenants_webhook(gateway, source):
    build, _, _ = GOOD[source]
    response = await send(gateway, source, build("t1"), tenant="t2")
    assert response.status_code == 401
    assert event_log(gateway, "t1") == [] and event_log(gateway, "t2") == []


async def test_unknown_tenant_gets_the_platforms_failure_shape(gateway):
    response = await send(gateway, "douyin", douyin_request([douyin_paid()]), tenant="nobody")
    assert response.status_code == 401 and response.json() == {"code": 1, "msg": "fail"}


async def test_tampered_body_is_401(gateway):
    body, headers = douyin_request([douyin_paid()])
    response = await send(gateway, "douyin", (body.replace(b"101", b"106", 1), headers))
    assert response.status_code == 401
    assert event_log(gateway) == []


async def test_replayed_tmall_and_pinduoduo_requests_are_401(gateway):
    old_top = top_timestamp(time.time() - 3600)
    assert (await send(gateway, "tmall", tmall_request(TMALL_PAY, timestamp=old_top))).status_code == 401
    old_pdd = int(time.time()) - 3600
    frame = pdd_frame(1, "pdd_trade_TradeConfirmed", order_status=1)
    assert (await send(gateway, "pinduoduo", pdd_request([frame], timestamp=old_pdd))).status_code == 401
    assert event_log(gateway) == []


async def test_malformed_but_signed_body_is_400_with_the_platforms_shape(gateway):
    body = b'[{"tag": "101", "msg_id": "1", "data": "{not json"}]'
    headers = douyin_request([], "t1")[1]
    import hashlib

    headers["event-sign"] = hashlib.md5(platform_app_key("t1", "douyin").encode() + body
                                        + platform_secret("t1", "douyin").encode()).hexdigest()
    response = await send(gateway, "douyin", (body, headers))
    assert response.status_code == 400 and response.json() == {"code": 1, "msg": "fail"}
    reply = await send(gateway, "kuaidi100", kuaidi100_request({"status": "abort", "lastResult": {}}))
    assert reply.status_code == 400 and reply.json()["result"] is False and reply.json()["returnCode"] == "400"
    assert event_log(gateway) == []


async def test_oversize_body_is_413(gateway):
    big = douyin_paid()
    big["data"]["remark"] = "x" * (5 * 1024 * 1024)
    response = await send(gateway, "douyin", douyin_request([big]))
    assert response.status_code == 413
    assert response.json() == {"code": 1, "msg": "fail"}
    assert event_log(gateway) == []


async def test_a_full_outbox_gives_every_platform_503_in_its_own_shape(tmp_path):
    extra = "[store]\noutbox_max_events = 2\noutbox_reserve_events = 0\n"
    settings = load_settings(write_platform_config(tmp_path, extra))
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, trio.Event())
        base = services.bound[0]
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            body, headers = signed([erp_event(1), erp_event(2)])
            assert (await client.post("/webhooks/erp/t1", content=body, headers=headers)).status_code == 200
            for source in PLATFORM_SOURCES:
                build, order_id, _ = GOOD[source]
                response = await send(client, source, build("t1"))
                assert response.status_code == 503, (source, response.text)
                assert int(response.headers["Retry-After"]) > 0
                assert response.json() != SUCCESS_REPLY[source]  # the platform must retry
                if order_id is not None:
                    assert services.store.get_order("t1", order_id) is None
        assert len(list(services.store.iter_events("t1"))) == 2  # only the ERP batch
        nursery.cancel_scope.cancel()


async def test_no_secret_reaches_the_logs(gateway, caplog):
    caplog.set_level("DEBUG")
    for source in PLATFORM_SOURCES:
        build, _, _ = GOOD[source]
        await send(gateway, source, build("t1"))
        await send(gateway, source, build("t1", secret="a-wrong-secret"))
        await send(gateway, source, build("t1"), tenant="t2")
        await send(gateway, source, (b"{garbage", {"content-type": "application/json"}))
    body, headers = signed([erp_event(1)])
    await gateway.post("/webhooks/erp/t1", content=body, headers=headers)
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "refused" in logged  # the refusals were logged ...
    for tenant in ("t1", "t2"):
        for source in PLATFORM_SOURCES:
            assert platform_secret(tenant, source) not in logged  # ... without a secret
    assert not any(secret in logged for secret in SECRETS.values())


# -- fuzzing: garbage never gets a 5xx and never stores anything ----------------------------------

@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory):
    """The daemon in a thread of its own, so synchronous hypothesis tests can post to it."""
    settings_ = load_settings(write_platform_config(tmp_path_factory.mktemp("fuzz")))
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        box["token"] = trio.lowlevel.current_trio_token()
        box["shutdown"] = trio.Event()
        async with trio.open_nursery() as nursery:
            box["services"] = await nursery.start(serve_gateway, settings_, box["shutdown"])
            ready.set()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported to the test thread below
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="fuzz-gateway", daemon=True)
    thread.start()
    assert ready.wait(30), "the gateway did not start"
    assert "error" not in box, box.get("error")
    base = box["services"].bound[0]
    with httpx.Client(base_url=base if "://" in base else f"http://{base}", timeout=10) as client:
        client.services = box["services"]
        yield client
    trio.from_thread.run_sync(box["shutdown"].set, trio_token=box["token"])
    thread.join(30)


HEADER_NAMES = ["app-id", "event-sign", "Event-Sign", "x-xhs-signature", "Content-Type", "X-Anything"]
ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
header_values = ascii_text.map(str.strip)  # h11 refuses to send surrounding blanks
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
garbage_bodies = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),  # stdlib: big ints, like any sender
    st.dictionaries(ascii_text, st.text(max_size=40), max_size=6).map(lambda d: urllib.parse.urlencode(d).encode()),
)


def signed_garbage(source: str, body: bytes) -> tuple[bytes, dict[str, str], dict[str, str]]:
    """A request whose signature is right for t1 but whose payload is ``body`` (garbage)."""
    import base64
    import hashlib
    import hmac

    secret = platform_secret("t1", source)
    app = platform_app_key("t1", source)
    text = body.decode("utf-8", "replace")
    if source == "douyin":
        return body, {"app-id": app, "event-sign": hashlib.md5(app.encode() + body + secret.encode()).hexdigest()}, {}
    if source == "youzan":
        return body, {"Event-Sign": hashlib.md5(app.encode() + body + secret.encode()).hexdigest()}, {}
    if source == "xiaohongshu":
        return body, {"x-xhs-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}, {}
    if source == "kuaidi100":
        sign = hashlib.md5((text + secret).encode()).hexdigest().upper()
        return urllib.parse.urlencode({"param": text, "sign": sign}).encode(), {}, {}
    if source == "cainiao":
        digest = base64.b64encode(hashlib.md5((text + secret).encode()).digest()).decode()
        form = {"logistics_interface": text, "data_digest": digest, "partner_code": app}
        return urllib.parse.urlencode(form).encode(), {}, {}
    if source == "pinduoduo":
        params = {"client_id": app, "timestamp": str(int(time.time())), "data": text}
        concat = "".join(k + params[k] for k in sorted(params) if params[k])
        params["sign"] = hashlib.md5((secret + concat + secret).encode()).hexdigest().upper()
        return urllib.parse.urlencode(params).encode(), {}, {}
    params = {"app_key": app, "timestamp": top_timestamp(), "sign_method": "md5", "topic": text, "content": text}
    params["sign"] = top_sign("md5", secret, "".join(k + params[k] for k in sorted(params) if params[k]))
    return urllib.parse.urlencode(params).encode(), {}, {}


def check_reply(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.text)
    orjson.loads(response.content)  # always a JSON body in the platform's own shape


def nothing_stored(client) -> None:
    store = client.services.store
    for tenant in ("t1", "t2"):
        assert list(store.iter_events(tenant)) == []
        assert store.quarantine_count(tenant) == 0


@pytest.mark.parametrize("source", PLATFORM_SOURCES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=garbage_bodies, headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=4),
       query=st.dictionaries(st.sampled_from(["sign", "timestamp", "client_id", "app_key", "x"]), ascii_text,
                             max_size=3))
def test_unsigned_garbage_never_5xx_and_stores_nothing(live_gateway, source, body, headers, query):
    response = live_gateway.post(f"/webhooks/{source}/t1", content=body, headers=headers, params=query)
    check_reply(response)
    assert response.status_code in (400, 401, 413), response.text
    nothing_stored(live_gateway)


@pytest.mark.parametrize("source", PLATFORM_SOURCES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=garbage_bodies)
def test_signed_garbage_never_5xx_and_stores_nothing(live_gateway, source, body):
    content, headers, query = signed_garbage(source, body)
    response = live_gateway.post(f"/webhooks/{source}/t1", content=content, headers=headers, params=query)
    check_reply(response)
    nothing_stored(live_gateway)


async def test_a_pickup_reported_before_the_waybill_is_applied_when_the_waybill_arrives(gateway):
    pickup = await send(gateway, "kuaidi100", kuaidi100_request(kuaidi100_param("SF5550000001", "1")))
    assert pickup.status_code == 200  # the carrier is answered: the event is kept, not refused
    [waiting] = gateway.services.store.iter_quarantine("t1")
    assert waiting["reason"] == "unknown_waybill" and waiting["waybill"] == "SF5550000001"

    body, headers = signed([erp_event(1, "PACKED", order="DY7", waybill="SF5550000001")])
    assert (await gateway.post("/webhooks/erp/t1", content=body, headers=headers)).status_code == 200
    # the ERP's waybill releases the carrier's event: the committer commits it right after
    with trio.fail_after(10):
        while status_of(gateway, "douyin|DY7") != "FULFILLMENT_STARTED":  # noqa: ASYNC110
            await trio.sleep(0.01)
    assert gateway.services.store.quarantine_count("t1") == 0
    released = [e for e in event_log(gateway) if e.get("released_from_quarantine")]
    assert [(e["source"], e["order_id"]) for e in released] == [("kuaidi100", "douyin|DY7")]
