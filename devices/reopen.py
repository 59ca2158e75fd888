"""Reopen a device that went away, with backoff: ``run_with_reopen``.

Every ``serve_*`` device function reads until its device disappears and then raises
``DeviceUnavailableError``. ``run_with_reopen`` turns that into "reconnects by itself":
it calls the function again after ``Backoff.next_delay()``, and resets the backoff each
time the device opens (the function's ``task_status.started()``), so a scanner that is
re-plugged after an hour is back within ``initial_s`` of reappearing, and one that
stays away is polled at most every ``max_s``.

Only ``DeviceUnavailableError`` is retried: any other error (a bad config, a bug)
propagates to the caller. The device supervisor adds logging, state and metrics on top.

    async with trio.open_nursery() as nursery:
        serve = functools.partial(serve_serial_scanner, path, send_channel, station="A1")
        await nursery.start(functools.partial(
            run_with_reopen, serve, device=path, backoff=Backoff(0.1, 5.0)))
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

import trio

from gateway._backoff import Backoff
from gateway._errors import DeviceUnavailableError

log = logging.getLogger(__name__)

#: A ``serve_*`` function with all but ``task_status`` bound (``functools.partial``).
ServeDevice = Callable[..., Awaitable[object]]


class _OpenedStatus:
    """The ``task_status`` handed to each attempt: an open resets the backoff.

    The first open also reports ``run_with_reopen`` itself as started; later opens only
    reset the backoff.
    """

    def __init__(self, outer: trio.TaskStatus[None], backoff: Backoff,
                 on_open: Callable[[], None] | None) -> None:
        self._outer: trio.TaskStatus[None] | None = outer
        self._backoff = backoff
        self._on_open = on_open

    def started(self, value: object = None) -> None:
        self._backoff.reset()
        if self._on_open is not None:
            self._on_open()
        if self._outer is not None:
            outer, self._outer = self._outer, None
            outer.started()


async def run_with_reopen(
    serve: ServeDevice,
    *,
    device: str,
    backoff: Backoff,
    on_open: Callable[[], None] | None = None,
    on_unavailable: Callable[[DeviceUnavailableError, float], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Run ``serve(task_status=...)`` for ever, reopening after ``DeviceUnavailableError``.

    Args:
        serve: the device function with everything but ``task_status`` bound.
        device: the device's name, for the log.
        backoff: the delay policy between attempts (reset at every successful open).
        on_open: called at every successful open (the supervisor's "up" state; tests
            wait for a reopen with it).
        on_unavailable: called with the error and the delay before the next attempt
            (state and metrics for the supervisor; tests count outages).
        task_status: ``started()`` at the device's first successful open.

    Raises:
        Whatever ``serve`` raises other than ``DeviceUnavailableError``.
    """
    status: trio.TaskStatus[None] = _OpenedStatus(task_status, backoff, on_open)
    while True:
        try:
            await serve(task_status=status)
            error = DeviceUnavailableError(device, "the device function returned")
        except DeviceUnavailableError as exc:
            error = exc
        delay = backoff.next_delay()
        log.warning("device %s unavailable (%s); reopening in %.2f s", device, error.message, delay)
        if on_unavailable is not None:
            on_unavailable(error, delay)
        await trio.sleep(delay)


__all__ = ["ServeDevice", "run_with_reopen"]
