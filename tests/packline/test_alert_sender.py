"""The alert sender (``gateway._packline.alert_sender``): the durable queue delivered to a real
HTTP "WeCom robot" on 127.0.0.1, from a real RocksDB store.

The robot is an ASGI app served by the gateway's own HTTP/1.1 server; it answers from a
script (``{"errcode": 45009}`` = WeCom's rate limit) and records what it received. Backoff
timing runs on trio's autojump clock; waits poll the clock in small steps because the store
is written from a worker thread, during which the autojump clock may advance.
"""

from __future__ import annotations

import logging
import socket
import time

import orjson
import pytest
import trio
import trio.testing

from gateway._metrics import Metrics
from gateway._packline.alert_sender import AlertSender
from gateway._packline.alerts import (
    RECORD_KIND,
    SENT_KIND,
    AlertWake,
    alert_write,
    intercept_alert,
    make_alert,
    new_alerts,
    queued_alerts,
    refund_stop_alert,
    serve_alerts,
    shortfall_alert,
    waybill_reused_alert,
    wecom_body,
)
from gateway._server import serve_http1
from gateway._settings import AlertsSection, Secret
from tests.packline.test_alerts import T0, open_db

ROBOT_KEY = "robot-key-0f5e-SECRET"


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Robot:
    """A WeCom group robot: answers ``script`` in turn (then ``errcode 0``), records bodies."""

    def __init__(self, script=()):
        self.script = list(script)
        self.received: list[tuple[str, bytes, dict]] = []
        self.accepted: list[dict] = []

    async def __call__(self, scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        parsed = orjson.loads(body)
        self.received.append((scope["path"], scope["query_string"], parsed))
        status, answer = self.script.pop(0) if self.script else (200, {"errcode": 0, "errmsg": "ok"})
        if status == 200 and answer.get("errcode") == 0:
            self.accepted.append(parsed)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})


async def start_robot(nursery, robot, port) -> trio.Event:
    stop = trio.Event()
    await nursery.start(lambda task_status: serve_http1(robot, [("127.0.0.1", port)], shutdown_trigger=stop.wait,
                                                        task_status=task_status))
    return stop


async def until(predicate, limit_s=30.0, step_s=0.5):
    """Poll on the virtual clock, bounded in REAL seconds: the autojump clock runs ahead
    while a worker thread commits, so a virtual bound could run out before the thread is done."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await trio.sleep(step_s)


def settings_for(port, **changes) -> AlertsSection:
    values = {"url": Secret(f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key={ROBOT_KEY}"),
              "retry_initial_s": 1.0, "retry_max_s": 30.0, "timeout_s": 5.0, **changes}
    return AlertsSection(**values)


# -- delivery ------------------------------------------------------------------------------------


async def test_an_alert_survives_a_down_and_rate_limited_robot_and_arrives_once(tmp_path, clock, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # other tests (the CLI) quieten httpx's logger
    port = free_port()
    robot = Robot([(200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
                   (200, {"errcode": 45009, "errmsg": "api freq out of limit"})])
    metrics = Metrics()
    alert = intercept_alert("t1", "O1", "SF123", "picked_up", T0)
    with open_db(tmp_path) as store:
        store.commit(alert_write(alert))
        async with trio.open_nursery() as nursery:
            sender: AlertSender = await nursery.start(
                lambda task_status: serve_alerts(store, settings_for(port, format="text",
                                                                     mentioned_mobiles=("13800001111",)),
                                                 metrics, task_status=task_status))
            await until(lambda: sender.status.failed_attempts >= 3)  # connection refused, 3 times
            record = store.get_record("t1", RECORD_KIND, alert.alert_id)
            assert record["attempts"] >= 3 and "ConnectError" in record["last_error"]
            assert record["next_attempt_ms"] > 0
            stop = await start_robot(nursery, robot, port)
            await until(lambda: robot.accepted)
            await until(lambda: store.get_record("t1", RECORD_KIND, alert.alert_id) is None)
            await trio.sleep(120)  # nothing more is sent
            stop.set()
            nursery.cancel_scope.cancel()
        assert len(robot.received) == 3 and len(robot.accepted) == 1
        path, query, body = robot.received[-1]
        assert path == "/cgi-bin/webhook/send" and query == f"key={ROBOT_KEY}".encode()
        assert body == wecom_body(alert, "text", ["13800001111"])
        assert store.get_record("t1", SENT_KIND, alert.alert_id)["attempts"] >= 6
        assert new_alerts(store, [alert]) == []  # delivered: a re-check does not raise it again
    assert sender.status.delivered == 1 and sender.status.queued == 0
    rendered = metrics.render().decode()
    assert 'gateway_alerts_total{result="delivered"} 1.0' in rendered
    assert "gateway_alerts_queued 0.0" in rendered
    assert ROBOT_KEY not in caplog.text
    assert f"HTTP Request: POST http://127.0.0.1:{port}/cgi-bin/webhook/send " in caplog.text  # httpx's, redacted
    assert "BACK after" in caplog.text


async def test_a_queued_alert_is_delivered_after_a_gateway_restart(tmp_path, clock):
    port = free_port()
    alert = waybill_reused_alert("t1", "SF9", "O2", "O1", T0)
    settings = settings_for(port)
    with open_db(tmp_path) as store:
        store.commit(alert_write(alert))
        async with trio.open_nursery() as nursery:
            sender = await nursery.start(lambda task_status: serve_alerts(store, settings, task_status=task_status))
            await until(lambda: sender.status.failed_attempts >= 2)
            nursery.cancel_scope.cancel()
    robot = Robot()
    with open_db(tmp_path) as store:  # the "restarted" gateway
        kept = store.get_record("t1", RECORD_KIND, alert.alert_id)
        assert kept["attempts"] >= 2 and kept["last_error"]
        async with trio.open_nursery() as nursery:
            stop = await start_robot(nursery, robot, port)
            await nursery.start(lambda task_status: serve_alerts(store, settings, task_status=task_status))
            await until(lambda: store.get_record("t1", RECORD_KIND, alert.alert_id) is None)
            stop.set()
            nursery.cancel_scope.cancel()
    assert robot.accepted == [wecom_body(alert, "markdown")]


async def test_alerts_go_oldest_first_and_a_refused_message_does_not_block_the_rest(tmp_path, clock, caplog):
    port = free_port()
    robot = Robot([(200, {"errcode": 40058, "errmsg": "invalid content"})])
    first = refund_stop_alert("t1", "G1", ["O1"], "O1", T0)
    second = refund_stop_alert("t1", "G2", ["O2"], "O2", T0 + 1)
    third = refund_stop_alert("t1", "G3", ["O3"], "O3", T0 + 2)
    fourth = refund_stop_alert("t1", "G4", ["O4"], "O4", T0 + 3)
    wake = AlertWake()
    # the refused message waits a day: far beyond this test, however the autojump clock runs
    settings = settings_for(port, retry_initial_s=86_400.0, retry_max_s=86_400.0)
    with open_db(tmp_path) as store:
        for alert in (third, first, second):
            store.commit(alert_write(alert))
        async with trio.open_nursery() as nursery:
            await start_robot(nursery, robot, port)
            await nursery.start(lambda task_status: serve_alerts(store, settings, wake=wake, task_status=task_status))
            await until(lambda: len(robot.accepted) == 2)
            store.commit(alert_write(fourth))
            wake.notify()
            await until(lambda: len(robot.accepted) == 3)
            nursery.cancel_scope.cancel()
        refused = store.get_record("t1", RECORD_KIND, first.alert_id)
        assert refused["attempts"] == 1 and refused["last_error"] == "errcode 40058: invalid content"
    ids = [b["markdown"]["content"].rsplit("告警 ID: ", 1)[1] for b in robot.accepted]
    assert ids == ["refund_stop:t1:O2", "refund_stop:t1:O3", "refund_stop:t1:O4"]
    assert robot.received[0][2] == wecom_body(first, "markdown")  # the oldest went first
    assert "alert refund_stop:t1:O1 refused by WeCom (errcode 40058: invalid content)" in caplog.text
    assert "BACK after" not in caplog.text  # the endpoint never failed


async def test_http_errors_and_non_wecom_answers_are_retried(tmp_path, clock):
    port = free_port()
    robot = Robot([(502, {"error": "bad gateway"}), (200, {"no": "errcode"})])
    alert = refund_stop_alert("t1", "G1", ["O1"], "O1", T0)
    with open_db(tmp_path) as store:
        store.commit(alert_write(alert))
        async with trio.open_nursery() as nursery:
            await start_robot(nursery, robot, port)
            sender = await nursery.start(lambda task_status: serve_alerts(store, settings_for(port),
                                                                          task_status=task_status))
            await until(lambda: robot.accepted)
            nursery.cancel_scope.cancel()
    assert len(robot.received) == 3 and sender.status.failed_attempts == 2


async def test_without_a_url_alerts_are_logged_once_and_kept(tmp_path, clock, caplog):
    caplog.set_level(logging.INFO, logger="gateway._packline.alerts")
    alert = shortfall_alert("t1", "G1", ["O1"], {"GIFT-A": 2}, T0)
    wake = AlertWake()
    with open_db(tmp_path) as store:
        store.commit(alert_write(alert))
        async with trio.open_nursery() as nursery:
            sender = await nursery.start(lambda task_status: serve_alerts(store, AlertsSection(), wake=wake,
                                                                          task_status=task_status))
            await trio.sleep(300)
            wake.notify()
            await trio.sleep(5)
            nursery.cancel_scope.cancel()
        assert store.get_record("t1", RECORD_KIND, alert.alert_id) is not None
    assert sender.status.state == "disabled" and sender.status.queued == 1
    assert caplog.text.count("ALERT gift_stock_shortfall:t1:G1") == 1
    assert "赠品库存不足" in caplog.text and "kept for the operators' board" in caplog.text


async def test_the_queue_bound_drops_the_oldest_low_severity_alerts_logged_and_counted(tmp_path, clock, caplog):
    caplog.set_level(logging.WARNING, logger="gateway._packline.alerts")
    metrics = Metrics()
    alerts = [make_alert("print_uncertain", "t1", "J1", "info", "面单可能未打印", "Label", [], [], T0),
              make_alert("refund_stop", "t1", "O1", "critical", "退款", "Refund", [], ["O1"], T0 + 1),
              make_alert("print_uncertain", "t1", "J2", "info", "面单可能未打印", "Label", [], [], T0 + 2),
              make_alert("waybill_timeout", "t1", "G1", "warning", "超时", "Timeout", [], ["O2"], T0 + 3),
              make_alert("print_uncertain", "t1", "J3", "info", "面单可能未打印", "Label", [], [], T0 + 4)]
    with open_db(tmp_path) as store:
        for alert in alerts:
            store.commit(alert_write(alert))
        async with trio.open_nursery() as nursery:
            sender = await nursery.start(lambda task_status: serve_alerts(store, AlertsSection(max_queued=3),
                                                                          metrics, task_status=task_status))
            nursery.cancel_scope.cancel()
        kept = [a.alert_id for a in queued_alerts(store)]
        assert kept == ["refund_stop:t1:O1", "waybill_timeout:t1:G1", "print_uncertain:t1:J3"]
        assert [r["decision"] for r in store.iter_audit("t1")][-2:] == ["alert_dropped", "alert_dropped"]
    assert sender.status.dropped == 2
    assert "print_uncertain:t1:J1 [info] DROPPED" in caplog.text and "print_uncertain:t1:J2" in caplog.text
    assert 'gateway_alerts_total{result="dropped"} 2.0' in metrics.render().decode()


def test_the_sender_and_its_settings_never_show_the_url(tmp_path):
    settings = settings_for(8)
    with open_db(tmp_path) as store:
        sender = AlertSender(store, settings)
        assert ROBOT_KEY not in repr(sender) and ROBOT_KEY not in repr(settings)
        assert repr(sender) == "<AlertSender http://127.0.0.1:8/cgi-bin/webhook/send idle queued=0>"
