"""The device supervisor and registry (``devices.supervisor``), on trio's autojump clock.

A scripted device function stands in for a driver here; the drivers' own unplug/replug
tests run the real thing over ptys and sockets.
"""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from devices.supervisor import DeviceRegistry, supervise
from gateway._backoff import Backoff
from gateway._errors import DeviceUnavailableError


class Scripted:
    """A device function following a script: "open" (then stays up for hold_s), "absent", "bug"."""

    def __init__(self, script, hold_s=10.0):
        self.script = list(script)
        self.hold_s = hold_s
        self.calls = 0

    async def __call__(self, *, task_status=trio.TASK_STATUS_IGNORED):
        self.calls += 1
        step = self.script.pop(0) if self.script else "open-forever"
        if step == "absent":
            raise DeviceUnavailableError("/dev/scanner", "no such device")
        if step == "bug":
            raise KeyError("a driver bug")
        task_status.started()
        if step == "open-forever":
            await trio.sleep_forever()
        await trio.sleep(self.hold_s)
        raise DeviceUnavailableError("/dev/scanner", "unplugged")


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_device_that_comes_and_goes_is_reopened_and_its_state_follows(clock):
    registry = DeviceRegistry()
    state = registry.add("A1", "/dev/scanner", "scanner")
    state.clock = trio.current_time
    device = Scripted(["absent", "absent", "open", "absent", "open"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: supervise(state, device, backoff=Backoff(1.0, 8.0, jitter=0)))
        await trio.sleep(0.5)
        assert state.state == "down" and state.last_error == "no such device"
        await trio.sleep(3.0)  # absent, 1 s, absent, 2 s, open
        assert state.state == "up" and device.calls == 3
        await trio.sleep(10.0)  # unplugged after 10 s, reopened after backoff (reset by the open)
        assert state.reconnects >= 3
        await trio.sleep(10.0)
        assert state.state == "up"
        assert registry.summary() == {"up": 1, "down": 0, "starting": 0}
        nursery.cancel_scope.cancel()


async def test_a_driver_bug_is_logged_and_the_device_restarted(clock, caplog):
    registry = DeviceRegistry()
    state = registry.add("A1", "tcp:127.0.0.1:2001", "scanner")
    device = Scripted(["bug", "open"])
    with caplog.at_level(logging.ERROR, logger="devices.supervisor"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: supervise(state, device, backoff=Backoff(0.5, 4.0, jitter=0)))
            await trio.sleep(2.0)
            assert state.state == "up" and device.calls == 2
            nursery.cancel_scope.cancel()
    assert "failed unexpectedly" in caplog.text and "KeyError" in caplog.text
    assert state.reconnects == 1 and "KeyError" in state.last_error


async def test_a_device_that_never_comes_is_polled_at_the_capped_interval(clock):
    state = DeviceRegistry().add("A1", "/dev/gone", "scale")
    device = Scripted(["absent"] * 1000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: supervise(state, device, backoff=Backoff(0.1, 5.0, jitter=0)))
        await trio.sleep(60.0)
        nursery.cancel_scope.cancel()
    # 0.1 + 0.2 + ... + 3.2 = 6.3 s, then every 5 s: about 12 tries in a minute, never a busy loop
    assert 10 <= device.calls <= 20
    assert state.state == "down"


def test_the_registry_reports_each_device_and_counts_events():
    registry = DeviceRegistry()
    scanner = registry.add("A1", "/dev/serial/by-id/s1", "scanner")
    registry.add("A1", "tcp:127.0.0.1:9100", "printer")
    registry.add("B2", "/dev/input/by-id/k-event-kbd", "scanner")
    assert registry.add("A1", "/dev/serial/by-id/s1", "scanner") is scanner and len(registry) == 3
    scanner.mark_up()
    scanner.note_event()
    scanner.note_event()
    report = registry.report("A1")
    assert [r["device"] for r in report] == ["/dev/serial/by-id/s1", "tcp:127.0.0.1:9100"]
    assert report[0]["state"] == "up" and report[0]["events"] == 2 and report[0]["last_event_at"]
    assert registry.summary() == {"up": 1, "down": 0, "starting": 2}


async def test_a_refusal_is_retried_only_at_the_cap_and_without_a_traceback(clock, caplog):
    from gateway._errors import DeviceAuthError

    calls = []

    async def nvr(*, task_status=trio.TASK_STATUS_IGNORED):
        calls.append(trio.current_time())
        raise DeviceAuthError("nvr main", "the NVR refused the username or password")

    state = DeviceRegistry().add("A1", "nvr main", "nvr")
    with caplog.at_level(logging.WARNING, logger="devices.supervisor"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: supervise(state, nvr, backoff=Backoff(0.5, 60.0, jitter=0)))
            await trio.sleep(150)
            nursery.cancel_scope.cancel()
    assert len(calls) == 3, "at most one try a minute: NVRs lock an account after a few failed logins"
    assert state.state == "down" and "refused" in state.last_error
    assert "Traceback" not in caplog.text and "refused the username" in caplog.text
