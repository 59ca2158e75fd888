"""One asyncio event loop on its own thread, called from trio: the bridge to nats-py.

The official NATS client (nats-py) is asyncio-only; the gateway is trio all the way. Measured
on the 2-core box (nats-py 2.16, trio 0.35, three local servers): one dedicated thread running
its own asyncio loop, called through ``asyncio.run_coroutine_threadsafe`` and woken back on
trio through the trio token, ran as fast as plain asyncio (~8k acknowledged events/s) and
stopped cleanly on Ctrl-C; ``trio-asyncio`` cost twice the CPU per event and hung on Ctrl-C.
So::

    trio task  --run(coroutine_function, *args)-->  asyncio loop thread ("nats-io")
               <--result / exception (trio token)--

Rules this module keeps:

* The loop is an explicit ``asyncio.SelectorEventLoop()`` (never a policy's default loop, which
  may be something else on another platform or under another library).
* Everything that touches a nats-py object runs as a coroutine ON this loop (``run``); the
  client is not thread-safe, so no other thread calls into it.
* Waiting from trio does not hold a worker thread: the concurrent future's done-callback wakes
  the trio task through ``TrioToken.run_sync_soon``.
* Cancelling the trio side cancels the asyncio task (``Future.cancel`` propagates), so a
  coroutine's ``finally`` runs on the loop; the trio task does not wait for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

log = logging.getLogger(__name__)

T = TypeVar("T")


class AsyncioThread:
    """A daemon thread running one asyncio loop until ``aclose``.

    Args:
        name: the thread's name (shown by ``py-spy``, ``top -H`` and thread dumps).
    """

    def __init__(self, name: str = "nats-io") -> None:
        self.name = name
        self.loop = asyncio.SelectorEventLoop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._started else "new"
        return f"<AsyncioThread {self.name} {state}>"

    @property
    def closed(self) -> bool:
        """``aclose`` was called: ``submit`` and ``run`` refuse work."""
        return self._closed

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:  # let their finally blocks run once, on their own loop
                    self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                self.loop.close()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(self, function: Callable[..., Awaitable[T]], *args: Any) -> concurrent.futures.Future[T]:
        """Schedule ``function(*args)`` on the loop; a ``concurrent.futures.Future`` of its result.

        Raises:
            RuntimeError: the thread is closed.
        """
        if self._closed:
            raise RuntimeError(f"{self!r}: closed")
        self.start()

        async def call() -> T:
            return await function(*args)

        return asyncio.run_coroutine_threadsafe(call(), self.loop)

    async def run(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await ``function(*args)`` on the loop from a trio task and return its result.

        Raises:
            Whatever the coroutine raises. On trio cancellation the asyncio task is cancelled
            and ``trio.Cancelled`` propagates at once.
        """
        future = self.submit(function, *args)
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def wake(_: concurrent.futures.Future[T]) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:  # the trio run ended meanwhile: nobody waits
                pass

        future.add_done_callback(wake)
        try:
            await done.wait()
        except BaseException:
            future.cancel()
            raise
        return future.result()

    async def aclose(self, last: Callable[[], Awaitable[object]] | None = None, timeout_s: float = 5.0) -> None:
        """Run ``last`` (e.g. close the client) on the loop, stop the loop and join the thread.

        Bounded by ``timeout_s``; shielded, so a cancelled caller still releases the thread.
        """
        if self._closed:
            return
        with trio.CancelScope(shield=True):
            with trio.move_on_after(timeout_s):
                if last is not None and self._started:
                    try:
                        await self.run(last)
                    except Exception as exc:  # closing a broken client: report and carry on stopping
                        log.warning("%s: closing: %s: %s", self.name, type(exc).__name__, exc)
            self._closed = True
            if self._started:
                self.loop.call_soon_threadsafe(self.loop.stop)
                await trio.to_thread.run_sync(self._thread.join, timeout_s)
            else:
                self.loop.close()


__all__ = ["AsyncioThread"]
