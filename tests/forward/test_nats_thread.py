"""The asyncio-loop thread behind the NATS sink, called from trio: results, errors, cancellation
(the asyncio task is cancelled and its ``finally`` runs on its own loop) and a clean close."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from gateway._forward.nats_thread import AsyncioThread


async def test_a_coroutine_runs_on_the_loop_thread_and_returns():
    io = AsyncioThread("test-io")

    async def where(x: int) -> tuple[str, int, bool]:
        loop = asyncio.get_running_loop()
        return threading.current_thread().name, x * 2, isinstance(loop, asyncio.SelectorEventLoop)

    try:
        assert await io.run(where, 21) == ("test-io", 42, True)
    finally:
        await io.aclose()
    assert io.closed and not io._thread.is_alive()


async def test_an_exception_crosses_back_to_trio():
    io = AsyncioThread()

    async def fail() -> None:
        raise ValueError("from asyncio")

    try:
        with pytest.raises(ValueError, match="from asyncio"):
            await io.run(fail)
    finally:
        await io.aclose()


async def test_trio_cancellation_cancels_the_asyncio_task():
    io = AsyncioThread()
    cleaned = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.set()

    try:
        with trio.move_on_after(0.2):
            await io.run(forever)
        await trio.to_thread.run_sync(cleaned.wait, 5)
        assert cleaned.is_set()
    finally:
        await io.aclose()


async def test_close_runs_the_last_call_then_refuses_work():
    io = AsyncioThread()
    closed = []

    async def last() -> None:
        closed.append(threading.current_thread().name)

    async def nothing() -> None:
        return None

    await io.run(nothing)
    await io.aclose(last)
    assert closed == ["nats-io"]
    with pytest.raises(RuntimeError, match="closed"):
        await io.run(nothing)
    await io.aclose()  # twice is fine


async def test_a_never_started_thread_closes_without_a_thread():
    io = AsyncioThread()
    await io.aclose()
    assert io.loop.is_closed()
