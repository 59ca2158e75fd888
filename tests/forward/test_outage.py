"""What the log says during an upstream outage (``gateway._forward.outage``).

Pure part: a fake clock drives ``OutageLog`` through a 45-minute outage. Real part: the
gateway in-process forwards to a real upstream on 127.0.0.1 that is down, then back.
"""

from __future__ import annotations

import logging
import re

import pytest

from gateway._forward.outage import Backlog, OutageLog, format_duration, public_url
from tests._support.upstream import Upstream
from tests.forward.test_forwarder import auth, drained, post_flow, start_gateway, wait_for

LOGGER = "gateway._forward.forwarder"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog, level=logging.INFO):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= level]


def test_a_long_outage_is_announced_reminded_and_its_end_and_drain_reported(caplog):
    clock = Clock()
    pending = {"events": 500}
    outage = OutageLog("http://erp.example/in", lambda: Backlog(pending["events"], 2 * 1024**2, 30.0),
                       lambda: pending["events"], caught_up_events=100, remind_every_s=60, clock=clock)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    outage.failed("ConnectError: refused", 1.0)
    down = lines(caplog, logging.WARNING)
    assert len(down) == 1 and "upstream DOWN" in down[0] and "500 events" in down[0] and "refused" in down[0]
    for _ in range(45 * 60 // 5):  # a retry every 5 s for 45 minutes
        clock.now += 5
        outage.failed("ConnectError: refused", 5.0)
    warnings = lines(caplog, logging.WARNING)
    reminders = [w for w in warnings if "still DOWN" in w]
    assert 44 <= len(reminders) <= 46, "one reminder a minute, not one per retry and not silence"
    assert "45m00s" in reminders[-1] and "541 attempts" in reminders[-1] and "oldest 30s old" in reminders[-1]
    assert not [line for line in lines(caplog, logging.INFO) if "BACK" in line]
    clock.now += 3
    outage.delivered(100)
    back = [line for line in lines(caplog) if "BACK" in line]
    assert len(back) == 1 and "45m03s down" in back[0] and "541 failed attempts" in back[0]
    pending["events"] = 250
    clock.now += 2
    outage.delivered(250)
    assert not [line for line in lines(caplog) if "drained" in line]
    pending["events"] = 60
    clock.now += 2
    outage.delivered(190)
    drained_lines = [line for line in lines(caplog) if "drained" in line]
    assert drained_lines == ["outbox drained after the outage: 540 events delivered in 4s"]
    outage.delivered(10)  # business as usual: nothing more is said
    assert len([line for line in lines(caplog) if "drained" in line or "BACK" in line]) == 2


def test_a_short_blip_is_one_line_down_and_one_line_back(caplog):
    clock = Clock()
    outage = OutageLog("http://erp/", lambda: Backlog(3, 900, None), lambda: 0, clock=clock)
    caplog.set_level(logging.INFO, logger=LOGGER)
    outage.failed("HTTP 503", 0.5)
    clock.now += 0.5
    outage.failed("HTTP 503", 1.0)
    clock.now += 1
    outage.delivered(3)
    said = lines(caplog)
    assert [("DOWN" in s, "BACK" in s, "drained" in s) for s in said] == [
        (True, False, False), (False, True, False), (False, False, True)]
    assert not outage.down


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:pa55@erp.example:8443/in?key=SECRET", "https://erp.example:8443/in"),
    ("http://[::1]:9000/x", "http://[::1]:9000/x"),
    ("", "(no url)"),
])
def test_the_upstream_is_named_without_credentials_or_query(url, shown):
    assert public_url(url) == shown


def test_durations_read_at_a_glance():
    assert [format_duration(s) for s in (0, 59.9, 60, 725, 3600 * 3 + 125)] == ["0s", "59s", "1m00s", "12m05s",
                                                                               "3h02m"]


async def test_the_real_forwarder_says_down_and_back_and_drained(tmp_path, nursery, caplog):
    upstream = Upstream().start()
    upstream.stop()  # down from the start; the same port comes back below
    caplog.set_level(logging.INFO, logger=LOGGER)
    services, shutdown, client = await start_gateway(nursery, tmp_path, upstream, retry_initial_s=0.05,
                                                     retry_max_s=0.2)
    sent = await post_flow(client, 4)
    await wait_for(lambda: services.forwarder.status.consecutive_failures >= 5)
    said = lines(caplog)
    assert len([s for s in said if "upstream DOWN" in s]) == 1, said
    down = next(s for s in said if "upstream DOWN" in s)  # said at the first failure: the events queued by then
    waiting = int(re.search(r"; (\d+) events \(", down).group(1))  # type: ignore[union-attr]
    assert 0 < waiting <= sent and "nothing is lost" in down, down
    assert (await client.get("/api/v1/outbox", headers=auth(services))).json()["backlog_events"] == sent
    upstream.start()
    try:
        await wait_for(drained(services))
        await wait_for(lambda: [s for s in lines(caplog) if "drained after the outage" in s], limit_s=5)
        said = lines(caplog)
        assert len([s for s in said if "upstream is BACK" in s]) == 1
        drained_line = next(s for s in said if "drained after the outage" in s)  # at most one batch left then
        delivered = int(re.search(r": (\d+) events delivered", drained_line).group(1))  # type: ignore[union-attr]
        assert 0 < delivered <= sent, drained_line
    finally:
        shutdown.set()
        upstream.stop()
