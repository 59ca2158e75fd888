"""A serial scale on a pty: answers MT-SICS commands, or streams continuous frames.

``open_scale_simulator()`` creates a pseudo-terminal and serves its master side from a
trio task; the driver opens ``simulator.path`` (the slave) as it would ``/dev/ttyUSB0``.

* ``mode="sics"``: ``S`` answers ``S S      1.234 kg`` when the weight is stable,
  ``S I`` while it is not (or for the first ``busy_replies`` requests), ``S +``/``S -``
  when ``overload``/``underload``; ``SI`` answers ``S D`` for a moving weight; ``Z``
  zeroes (``Z A``); anything else is ``ES``.
* ``mode="continuous"``: every ``frame_interval_s`` a frame like ``ST,GS,+  1.234kg``
  (``US`` while moving, ``OL`` over range), first the ``settling`` values (moving),
  then ``weight``.

Set ``weight``, ``stable`` and the flags from the test at any time.
"""

from __future__ import annotations

import os
import tty
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Literal

import trio


class ScaleSimulator:
    """The simulated scale's state; ``path`` is the serial device to open."""

    def __init__(self, weight: Decimal | str = "1.234", unit: str = "kg", *,
                 mode: Literal["sics", "continuous"] = "sics", frame_interval_s: float = 0.02,
                 settling: tuple[Decimal | str, ...] = ()) -> None:
        self.weight = Decimal(weight)
        self.unit = unit
        self.mode = mode
        self.stable = True
        self.busy_replies = 0
        self.overload = False
        self.underload = False
        self.silent = False
        self.frame_interval_s = frame_interval_s
        self.settling = [Decimal(value) for value in settling]
        self.commands: list[str] = []
        self.path = ""

    def __repr__(self) -> str:
        return f"ScaleSimulator({self.path!r}, {self.weight} {self.unit}, mode={self.mode})"

    def reply(self, command: str) -> str:
        """The MT-SICS reply line (without CR LF) to ``command``."""
        self.commands.append(command)
        if command in ("S", "SI"):
            if self.busy_replies > 0:
                self.busy_replies -= 1
                return "S I"
            if self.overload or self.underload:
                return "S +" if self.overload else "S -"
            if not self.stable:
                return "S I" if command == "S" else f"S D {self.weight:>10} {self.unit}"
            return f"S S {self.weight:>10} {self.unit}"
        if command == "Z":
            self.weight = Decimal("0.000")
            return "Z A"
        return "ES"

    def frame(self) -> str:
        """The next continuous frame (without CR LF)."""
        if self.overload:
            return f"OL,GS,+{0:>8.3f}{self.unit}"
        if self.settling:
            value, state = self.settling.pop(0), "US"
        else:
            value, state = self.weight, "ST" if self.stable else "US"
        sign = "-" if value < 0 else "+"
        return f"{state},GS,{sign}{abs(value):>8}{self.unit}"

    async def _answer(self, stream: trio.abc.Stream) -> None:
        buffer = b""
        while chunk := await stream.receive_some(1024):
            buffer += chunk
            while b"\n" in buffer or b"\r" in buffer:
                cut = min(i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0)
                line, buffer = buffer[:cut].strip(), buffer[cut + 1:]
                if line and not self.silent:
                    await stream.send_all(self.reply(line.decode("ascii", "replace")).encode() + b"\r\n")

    async def _stream_frames(self, stream: trio.abc.Stream) -> None:
        while True:
            if not self.silent:
                await stream.send_all(self.frame().encode() + b"\r\n")
            await trio.sleep(self.frame_interval_s)

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Create the pty, report its path via ``task_status``, serve until cancelled."""
        master, slave = os.openpty()
        try:
            tty.setraw(slave)   # no echo or line editing before the driver sets the line up
            self.path = os.ttyname(slave)
            stream = trio.lowlevel.FdStream(master)
            task_status.started(self.path)
            async with stream:
                if self.mode == "sics":
                    await self._answer(stream)
                else:
                    await self._stream_frames(stream)
        finally:
            # The slave stays open while serving, so the master never reads EIO between
            # the driver's opens.
            os.close(slave)


@asynccontextmanager
async def open_scale_simulator(weight: Decimal | str = "1.234", unit: str = "kg", *,
                               mode: Literal["sics", "continuous"] = "sics", frame_interval_s: float = 0.02,
                               settling: tuple[Decimal | str, ...] = ()) -> AsyncIterator[ScaleSimulator]:
    """A running ``ScaleSimulator`` for the duration of the ``async with``."""
    simulator = ScaleSimulator(weight, unit, mode=mode, frame_interval_s=frame_interval_s, settling=settling)
    async with trio.open_nursery() as nursery:
        await nursery.start(simulator.run)
        yield simulator
        nursery.cancel_scope.cancel()


__all__ = ["ScaleSimulator", "open_scale_simulator"]
