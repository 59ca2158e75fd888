"""run_with_reopen: reopen after DeviceUnavailableError with backoff, reset at every open."""

from __future__ import annotations

import functools
import random

import pytest
import trio

from devices.reopen import run_with_reopen
from gateway._backoff import Backoff
from gateway._errors import DeviceError, DeviceUnavailableError


class FlakyDevice:
    """Fails to open ``failures_before_open`` times, then runs ``run_s`` and drops, repeatedly."""

    def __init__(self, failures_before_open: int, run_s: float) -> None:
        self.failures_before_open = failures_before_open
        self.run_s = run_s
        self.attempts: list[float] = []
        self.opens = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.attempts.append(trio.current_time())
        if len(self.attempts) % (self.failures_before_open + 1):
            raise DeviceUnavailableError("dev", "cannot open")
        self.opens += 1
        task_status.started()
        await trio.sleep(self.run_s)
        raise DeviceUnavailableError("dev", "went away")


async def test_backs_off_while_failing_and_resets_once_open(autojump_clock):
    device = FlakyDevice(failures_before_open=3, run_s=100.0)
    delays: list[float] = []
    backoff = Backoff(1.0, 8.0, jitter=0.0, rng=random.Random(1))
    with trio.move_on_after(200):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(
                run_with_reopen, device.serve, device="dev", backoff=backoff,
                on_unavailable=lambda error, delay: delays.append(delay)))
            assert device.opens == 1  # started = the first successful open
            await trio.sleep_forever()
    # 3 failed opens (1, 2, 4 s), open, runs 100 s, drops -> reset: 1 s, then 3 failures again
    assert delays[:4] == [1.0, 2.0, 4.0, 1.0]
    assert delays[4:7] == [2.0, 4.0, 8.0]
    assert device.opens == 2


async def test_only_unavailable_is_retried():
    async def broken(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        raise DeviceError("dev", "the config names a baud rate this port refuses")

    with pytest.raises(DeviceError, match="baud rate"):
        await run_with_reopen(broken, device="dev", backoff=Backoff(0.01, 0.1))


async def test_a_serve_function_that_returns_is_reopened_too(autojump_clock):
    calls = []

    async def returns(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        calls.append(1)
        task_status.started()

    errors: list[str] = []
    with trio.move_on_after(1):
        await run_with_reopen(returns, device="dev", backoff=Backoff(0.1, 0.1, jitter=0.0),
                              on_unavailable=lambda error, delay: errors.append(error.message))
    assert len(calls) >= 5 and errors[0] == "the device function returned"
