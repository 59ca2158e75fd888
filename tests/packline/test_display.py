"""StationDisplay: the current view, subscriptions, newest-view-wins, unsubscribe on cancel, close."""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

import pytest
import trio
import trio.testing

from gateway._packline.display import StationDisplay, empty_view


def view(seq: int, station: str = "A1", **extra: Any) -> dict[str, Any]:
    return {"station": station, "operator": "OP-0007", "seq": seq, "session": None, "last": None,
            "label": None, "devices": [], **extra}


def test_current_and_stations():
    display = StationDisplay()
    assert display.current("A1") is None
    display.publish("A1", view(1))
    display.publish("B2", view(1, "B2"))
    display.publish("A1", view(2))
    assert display.current("A1") == view(2)
    assert display.stations() == ["A1", "B2"]
    assert "2 stations" in repr(display)


def test_publish_copies_the_view():
    display = StationDisplay()
    mine = view(1, devices=[{"device": "scanner-1", "state": "up"}])
    display.publish("A1", mine)
    mine["devices"][0]["state"] = "down"
    mine["seq"] = 99
    assert display.current("A1") == view(1, devices=[{"device": "scanner-1", "state": "up"}])


def test_publish_refuses_what_is_not_json_ready():
    display = StationDisplay()
    with pytest.raises(TypeError, match="not JSON-ready"):
        display.publish("A1", view(1, last={"at": object()}))
    with pytest.raises(TypeError, match="a view is a dict"):
        display.publish("A1", [1, 2])  # type: ignore[arg-type]
    assert display.current("A1") is None
    display.publish("A1", view(1, last={"at": datetime.date(2026, 1, 2)}))  # orjson writes dates
    assert display.current("A1") == view(1, last={"at": "2026-01-02"})


def test_empty_view_has_every_key():
    assert set(empty_view("A1")) == {"station", "operator", "seq", "session", "last", "label", "devices"}


async def test_subscribe_gets_the_current_view_then_each_new_one():
    display = StationDisplay()
    display.publish("A1", view(1))
    display.publish("B2", view(1, "B2"))  # another station: not followed
    seen: list[int] = []

    async def follow(task_status=trio.TASK_STATUS_IGNORED):
        async with contextlib.aclosing(display.subscribe("A1")) as views:
            task_status.started()
            async for current in views:
                seen.append(current["seq"])
                if current["seq"] == 3:
                    return

    async with trio.open_nursery() as nursery:
        await nursery.start(follow)
        await trio.testing.wait_all_tasks_blocked()
        assert seen == [1]
        display.publish("A1", view(2))
        await trio.testing.wait_all_tasks_blocked()
        display.publish("B2", view(2, "B2"))
        display.publish("A1", view(3))
    assert seen == [1, 2, 3]
    assert display.subscribers("A1") == 0


async def test_a_station_without_a_view_waits_for_its_first():
    display = StationDisplay()
    with trio.move_on_after(1) as scope:
        async for first in display.subscribe("A1"):
            assert first["seq"] == 5
            break
        pytest.fail("ended without a view")  # pragma: no cover
    assert scope.cancelled_caught
    assert display.subscribers("A1") == 0

    async with trio.open_nursery() as nursery:
        got: list[dict[str, Any]] = []

        async def follow():
            async for first in display.subscribe("A1"):
                got.append(first)
                return

        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        display.publish("A1", view(5))
    assert got == [view(5)]


async def test_a_slow_subscriber_gets_the_newest_view_and_never_blocks_publish():
    display = StationDisplay()
    display.publish("A1", view(0))
    busy = trio.Event()
    seen: list[int] = []

    async def slow():
        async for current in display.subscribe("A1"):
            seen.append(current["seq"])
            if current["seq"] == 0:
                await busy.wait()  # a screen that does not read for a while
            if current["seq"] == 100:
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow)
        await trio.testing.wait_all_tasks_blocked()
        for seq in range(1, 101):  # 100 views while it is busy: publish returns every time
            display.publish("A1", view(seq))
        busy.set()
    assert seen == [0, 100]


async def test_many_subscribers_each_get_the_views():
    display = StationDisplay()
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}

    async def follow(number: int):
        async for current in display.subscribe("A1"):
            seen[number].append(current["seq"])
            if current["seq"] == 2:
                return

    async with trio.open_nursery() as nursery:
        for number in seen:
            nursery.start_soon(follow, number)
        await trio.testing.wait_all_tasks_blocked()
        assert display.subscribers("A1") == 3
        display.publish("A1", view(1))
        await trio.testing.wait_all_tasks_blocked()
        display.publish("A1", view(2))
    assert seen == {0: [1, 2], 1: [1, 2], 2: [1, 2]}


async def test_cancelling_a_subscriber_unsubscribes_it():
    display = StationDisplay()
    display.publish("A1", view(1))
    async with trio.open_nursery() as nursery:

        async def follow():
            async for _ in display.subscribe("A1"):
                pass

        nursery.start_soon(follow)
        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        assert display.subscribers("A1") == 2
        nursery.cancel_scope.cancel()
    assert display.subscribers("A1") == 0
    assert "0 subscribers" in repr(display)
    display.publish("A1", view(2))  # nobody left to offer it to: fine


async def test_breaking_out_with_aclosing_unsubscribes_at_once():
    display = StationDisplay()
    display.publish("A1", view(1))
    async with contextlib.aclosing(display.subscribe("A1")) as views:
        async for _ in views:
            assert display.subscribers("A1") == 1
            break
    assert display.subscribers("A1") == 0


async def test_close_ends_every_subscription():
    display = StationDisplay()
    display.publish("A1", view(1))
    ended: list[str] = []

    async def follow(station: str):
        async for _ in display.subscribe(station):
            pass
        ended.append(station)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow, "A1")
        nursery.start_soon(follow, "B2")  # no view yet: waiting for its first
        await trio.testing.wait_all_tasks_blocked()
        display.close()
    assert sorted(ended) == ["A1", "B2"]
    assert display.closed
    assert [v async for v in display.subscribe("A1")] == []
    assert display.current("A1") == view(1)


async def test_subscribe_with_keepalive_says_none_when_idle(autojump_clock):
    display = StationDisplay()
    display.publish("A1", view(1))
    seen: list[tuple[float, int | None]] = []
    start = trio.current_time()
    async with trio.open_nursery() as nursery:

        async def follow():
            async with contextlib.aclosing(display.subscribe_with_keepalive("A1", 15.0)) as views:
                async for current in views:
                    seen.append((trio.current_time() - start, None if current is None else current["seq"]))
                    if current and current["seq"] == 2:
                        return

        nursery.start_soon(follow)
        await trio.sleep(40)  # two idle periods: two keep-alive cues, the subscription stays
        assert display.subscribers("A1") == 1
        display.publish("A1", view(2))
    assert seen == [(0.0, 1), (15.0, None), (30.0, None), (40.0, 2)]
    assert display.subscribers("A1") == 0
