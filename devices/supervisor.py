"""Keep every configured device alive: a supervisor per device, a registry of their states.

``supervise`` runs one device function (a ``serve_*`` of a scanner, or a poller of a printer,
NVR or scale) for as long as the gateway runs:

* the device opens -> state ``up`` (the backoff starts again from its first step);
* it goes away (``DeviceUnavailableError``: USB unplugged, TCP reset, NVR down) -> state
  ``down`` with the reason, reopened after a capped, jittered backoff, for ever: a scanner
  plugged back after an hour is up again within ``max_s`` of reappearing;
* another ``DeviceError`` (an NVR refusing our password) -> ``down`` with the reason, tried
  again only after the backoff's cap: a locked-out account must not be hammered;
* anything else a driver raises (a bug, a surprise from a library) is logged with its
  traceback, counted, and the device is restarted the same way. This is the gateway's one
  broad ``except`` (STYLE 6): a faulty driver must never take the pack line down with it.

``DeviceRegistry`` holds one ``DeviceState`` per device; the local API
(``GET /api/v1/devices``), ``/healthz`` and the metrics read it. It is plain data, updated
by the supervisors and by whoever consumes the device's output (``note_event``: a scan, a
label, a weight).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import trio

from devices.reopen import ServeDevice, run_with_reopen
from gateway._backoff import Backoff
from gateway._errors import DeviceError, DeviceUnavailableError

log = logging.getLogger(__name__)

DeviceKind = Literal["scanner", "printer", "scale", "nvr"]
DeviceStatus = Literal["starting", "up", "down"]


@dataclass
class DeviceState:
    """What one device is doing, for operators and installers.

    Attributes:
        station: the pack station it belongs to.
        device: its stable identity (by-id path, ``tcp:HOST:PORT`` or configured name).
        kind: scanner, printer, scale or nvr.
        state: starting (never opened yet), up, or down.
        since: when ``state`` last changed (unix seconds).
        reconnects: how often it went down after having been up, or failed to open.
        events: scans read, labels printed, weights taken.
        last_event_at: when the last of those happened.
        last_error: the last reason it went down ("" while it never did).
        detail: what the device says about itself while up ("paper out", "clock +40.2 s").
    """

    station: str
    device: str
    kind: DeviceKind
    state: DeviceStatus = "starting"
    since: float = field(default_factory=time.time)
    reconnects: int = 0
    events: int = 0
    last_event_at: float | None = None
    last_error: str = ""
    detail: str = ""
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def mark_up(self) -> None:
        """The device opened."""
        if self.state != "up":
            self.state, self.since = "up", self.clock()
            log.info("%s %s at station %s is up", self.kind, self.device, self.station)

    def mark_down(self, reason: str) -> None:
        """The device went away or could not be opened, for ``reason``."""
        self.reconnects += 1
        self.last_error = reason
        if self.state != "down":
            self.state, self.since = "down", self.clock()

    def note_event(self) -> None:
        """A scan, a label or a weight went through this device."""
        self.events += 1
        self.last_event_at = self.clock()

    def report(self) -> dict[str, Any]:
        """The API's view (``GET /api/v1/devices``)."""
        return {"station": self.station, "device": self.device, "kind": self.kind, "state": self.state,
                "since": round(self.since, 3), "reconnects": self.reconnects, "events": self.events,
                "last_event_at": round(self.last_event_at, 3) if self.last_event_at else None,
                "last_error": self.last_error, "detail": self.detail}


class DeviceRegistry:
    """Every configured device's ``DeviceState``, in configuration order."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], DeviceState] = {}
        self._by_station: dict[str, list[DeviceState]] = {}

    def add(self, station: str, device: str, kind: DeviceKind) -> DeviceState:
        """Register a device (once) and return its state."""
        key = (station, device)
        if key not in self._states:
            state = self._states[key] = DeviceState(station, device, kind)
            self._by_station.setdefault(station, []).append(state)
        return self._states[key]

    def of_station(self, station: str) -> list[DeviceState]:
        """The devices of one station, in configuration order (a station screen shows them at
        every scan: no walk over the whole line's devices)."""
        return self._by_station.get(station, [])

    def get(self, station: str, device: str) -> DeviceState | None:
        return self._states.get((station, device))

    def __iter__(self) -> Iterator[DeviceState]:
        return iter(self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def report(self, station: str | None = None) -> list[dict[str, Any]]:
        """Each device's report, optionally of one station."""
        return [s.report() for s in (self if station is None else self.of_station(station))]

    def summary(self) -> dict[str, int]:
        """Devices per state, for ``/healthz``."""
        counts = {"up": 0, "down": 0, "starting": 0}
        for state in self:
            counts[state.state] += 1
        return counts


async def supervise(state: DeviceState, serve: ServeDevice, *, backoff: Backoff) -> NoReturn:
    """Run ``serve`` for ever under ``state``: reopened after it goes away, restarted after a bug.

    Args:
        state: where the device's state goes (``DeviceRegistry.add``).
        serve: the device function with everything but ``task_status`` bound; it calls
            ``task_status.started()`` once its device is open and raises
            ``DeviceUnavailableError`` when the device goes away.
        backoff: the delay policy between attempts (reset at every successful open).

    Cancellation: cancels the device function, which closes its device.
    """

    def unavailable(error: DeviceUnavailableError, delay_s: float) -> None:
        state.mark_down(error.message)

    while True:
        try:
            await run_with_reopen(serve, device=state.device, backoff=backoff, on_open=state.mark_up,
                                  on_unavailable=unavailable)
        except DeviceError as exc:  # refused us (wrong password): say so, retry slowly, never hammer
            delay = backoff.max_s
            log.warning("%s %s at station %s: %s; trying again in %.0f s", state.kind, state.device, state.station,
                        exc.message, delay)
            state.mark_down(exc.message)
            await trio.sleep(delay)
        except Exception as exc:  # the one broad except: a driver bug must not stop the pack line
            delay = backoff.next_delay()
            log.exception("%s %s at station %s failed unexpectedly; restarting it in %.1f s", state.kind,
                          state.device, state.station, delay)
            state.mark_down(f"driver error: {type(exc).__name__}: {exc}")
            await trio.sleep(delay)


__all__ = ["DeviceKind", "DeviceRegistry", "DeviceState", "DeviceStatus", "supervise"]
