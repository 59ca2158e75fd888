"""What each station's screen shows: the latest view of every station, and its followers.

The station service (one per pack station) builds a *view* after every scan, close, sign-in,
label or device change and calls ``StationDisplay.publish(station, view)``. Screens follow a
station with ``StationDisplay.subscribe(station)`` (the server turns that into Server-Sent
Events, ``gateway._server.station_page``). Pure trio, no HTTP.

Publishing never waits for a screen: each subscriber holds one slot, the newest view. A
screen that is slow (a tab in the background, a congested Wi-Fi link) skips the views it
missed and gets the newest one: a station screen shows the present, never a backlog, and the
pack line never waits for a screen. Every view carries ``seq`` so a gap is visible.

The view, a JSON-ready dict (every key may be missing; the page shows what is there)::

    {"station": "A1",                  # the station's name, as in [stations.*]
     "operator": "OP-0007",            # the signed-in badge, "" when nobody is signed in
     "seq": 12,                        # increases with every view the station publishes
     "session": None | {               # the open (or just closed) pack session
         "session_id": "...", "group_id": "...",
         "orders": ["douyin|69..", ...],           # the pack group's orders, primary first
         "state": "open" | "held" | "stopped" | "closed",
         "components": [{                          # the bill, as gateway._packline.values.BillComponent
             "component_id": "<order_id>#<n>", "order_id": "...", "sku": "...", "name": "...",
             "kind": "item" | "gift" | "gift_box" | "trial",
             "quantity": 2, "packed": 1,           # units expected / scanned OK so far
             "parcel": 1,                          # 1 = this parcel, 2.. = a later one ("后发")
             "status": "pending" | "packed" | "shipped" | "removed"}, ...]},
     "last": None | {                  # the latest verdict
         "verdict": "OK", ...,                     # a gateway._packline.values.Verdict value
         "message_zh": "...", "message_en": "...", # what to tell the packer, and what to do next
         "code": "<barcode>", "component_id": "..." | None,
         "at_ms": 0,                               # when (epoch ms)
         "alarm": False},                          # Verdict(x).alarm: the screen sounds an alarm
     "label": None | {"state": "queued" | "printing" | "printed" | "refused" | "uncertain",
                      "reason": "...", "job_id": "..."},
     "devices": [{"device": "scanner-1", "kind": "scanner", "state": "up" | "down" | ...,
                  "detail": "..."}, ...]}

``empty_view(station)`` is the view of a station that has published nothing yet.

Thread-safety: ``publish`` is called from the trio thread (a worker thread goes through
``trio.from_thread.run_sync``). Shutdown: ``close()`` ends every subscription, so the
server's streams finish and its graceful shutdown does not wait for open screens.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncGenerator
from typing import Any

import orjson
import trio

log = logging.getLogger(__name__)

View = dict[str, Any]


def empty_view(station: str) -> View:
    """The view of ``station`` before its service published anything: nobody signed in, no
    session, no verdict, no label, no devices known."""
    return {"station": station, "operator": "", "seq": 0, "session": None, "last": None, "label": None,
            "devices": []}


class _Follower:
    """One subscription: a one-view slot (the newest wins) and the event that says it is full."""

    __slots__ = ("latest", "ready")

    def __init__(self, latest: View | None) -> None:
        self.latest = latest
        self.ready = trio.Event()
        if latest is not None:
            self.ready.set()

    def offer(self, view: View) -> None:
        self.latest = view  # an unread older view is dropped here
        self.ready.set()

    async def take(self) -> View | None:
        """The newest view once there is one; ``None`` when woken without one (closed)."""
        await self.ready.wait()
        self.ready = trio.Event()
        view, self.latest = self.latest, None
        return view


class StationDisplay:
    """The latest view of every station and the screens that follow them.

    Example::

        display = StationDisplay()
        display.publish("A1", view)                  # from the station service, after each scan
        async with contextlib.aclosing(display.subscribe("A1")) as views:
            async for view in views:                 # the current view first, then each new one
                ...
    """

    def __init__(self) -> None:
        self._views: dict[str, View] = {}
        self._followers: dict[str, set[_Follower]] = {}
        self._closed = False

    def __repr__(self) -> str:
        following = sum(len(f) for f in self._followers.values())
        return f"<StationDisplay {len(self._views)} stations, {following} subscribers>"

    @property
    def closed(self) -> bool:
        return self._closed

    def stations(self) -> list[str]:
        """The stations that have published a view, sorted."""
        return sorted(self._views)

    def current(self, station: str) -> View | None:
        """The latest view of ``station``, ``None`` before its first ``publish``."""
        return self._views.get(station)

    def subscribers(self, station: str) -> int:
        """How many subscriptions follow ``station`` now (for tests and ``/healthz``-like reports)."""
        return len(self._followers.get(station, ()))

    def publish(self, station: str, view: View) -> None:
        """Make ``view`` the current view of ``station`` and hand it to its subscribers.

        Never blocks and never waits for a subscriber: one that has not taken the previous
        view yet gets this one instead.

        The view is copied (through JSON), so the caller may reuse or change its dict after.

        Raises:
            TypeError: ``view`` is not JSON-ready (a bug in the publisher: raised here rather
                than breaking every screen's stream).
        """
        try:
            snapshot: View = orjson.loads(orjson.dumps(view))
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            raise TypeError(f"station {station!r}: the view is not JSON-ready ({exc}); publish plain "
                            "dicts, lists, strings, numbers, booleans and None") from exc
        if not isinstance(snapshot, dict):
            raise TypeError(f"station {station!r}: a view is a dict, not {type(view).__name__}")
        self._views[station] = snapshot
        for follower in self._followers.get(station, ()):
            follower.offer(snapshot)

    async def subscribe(self, station: str) -> AsyncGenerator[View, None]:
        """Follow ``station``: its current view first (when it has one), then each new one.

        A slow consumer skips views published while it was busy and gets the newest one.
        The iteration ends when the display is closed. Cancelled, or closed with ``aclose()``
        (``contextlib.aclosing``), it stops following at once; left early by ``break`` or
        ``return`` without ``aclosing``, only when the generator is garbage-collected.

        The views are shared: do not change them.
        """
        async with contextlib.aclosing(self.subscribe_with_keepalive(station, math.inf)) as views:
            async for view in views:
                if view is not None:
                    yield view

    async def subscribe_with_keepalive(self, station: str, every_s: float) -> AsyncGenerator[View | None, None]:
        """As ``subscribe``, and ``None`` whenever ``every_s`` passed without a new view (a
        stream's cue to send a keep-alive).

        Why here: an async generator must not yield inside a cancel scope, and cancelling
        ``subscribe``'s ``__anext__`` from outside (``trio.move_on_after``) would end the
        subscription; the wait for a view is cancel-safe here, inside.
        """
        if self._closed:
            return
        follower = _Follower(self._views.get(station))
        followers = self._followers.setdefault(station, set())
        followers.add(follower)
        try:
            while not self._closed:
                view: View | None = None
                with trio.move_on_after(every_s):
                    view = await follower.take()  # cancel-safe: the slot keeps its view
                    if view is None:  # woken by close()
                        continue
                yield view
        finally:
            followers.discard(follower)
            if not followers and self._followers.get(station) is followers:
                del self._followers[station]

    def close(self) -> None:
        """End every subscription (at shutdown); later subscriptions end at once. The
        current views stay readable."""
        self._closed = True
        for followers in self._followers.values():
            for follower in followers:
                follower.ready.set()


__all__ = ["StationDisplay", "View", "empty_view"]
