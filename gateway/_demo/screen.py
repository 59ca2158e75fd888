"""A demo station's screen as a simulated person reads it: ``GET /stations/<name>/view``.

The same view the station page shows (``gateway._server.station_page``): the session with its
bill, and ``last``, the verdict of the latest scan. The demo's packers (``gateway._demo.packer``)
wait on it for each verdict; the demo's customs clerk (``gateway._demo.customs``) watches it
for a parcel held for its customs declaration. Reading it never changes anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import trio

log = logging.getLogger("gateway.demo")

#: How often a person looks at the screen while waiting for a verdict.
LOOK_EVERY_S = 0.1
#: A verdict not on the screen by then is taken as lost (the packer carries on).
VERDICT_WAIT_S = 10.0


class StationScreen:
    """The station's screen: ``GET /stations/<name>/view`` on the gateway ``client`` talks to."""

    def __init__(self, client: httpx.AsyncClient, station: str) -> None:
        self.client = client
        self.station = station

    def __repr__(self) -> str:
        return f"StationScreen({self.station!r})"

    async def view(self) -> dict[str, Any]:
        """The current view; ``{}`` when the screen cannot be read (logged at DEBUG)."""
        try:
            reply = await self.client.get(f"/stations/{self.station}/view")
            if reply.status_code == 200:
                view: dict[str, Any] = reply.json()
                return view
        except httpx.HTTPError as exc:
            log.debug("station screen %s not readable: %s", self.station, exc)
        return {}

    async def wait_for(self, done: Callable[[dict[str, Any]], bool], limit_s: float = VERDICT_WAIT_S
                       ) -> dict[str, Any] | None:
        """The first view for which ``done`` holds, or ``None`` after ``limit_s``."""
        with trio.move_on_after(limit_s):
            while True:
                view = await self.view()
                if view and done(view):
                    return view
                await trio.sleep(LOOK_EVERY_S)
        return None


def verdict_of(view: Mapping[str, Any] | None) -> str:
    """The verdict of the latest scan on the screen (``""`` when none is shown)."""
    last = (view or {}).get("last")
    return str(last.get("verdict") or "") if isinstance(last, Mapping) else ""


def held_orders(view: Mapping[str, Any], verdict: str) -> tuple[str, ...]:
    """The order ids of the session the screen shows held with ``verdict`` (empty: none)."""
    session = view.get("session")
    if not isinstance(session, Mapping) or session.get("state") != "held" or verdict_of(view) != verdict:
        return ()
    return tuple(str(order_id) for order_id in session.get("orders") or ())


__all__ = ["LOOK_EVERY_S", "VERDICT_WAIT_S", "StationScreen", "held_orders", "verdict_of"]
