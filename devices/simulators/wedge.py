"""A keyboard wedge simulated: a code typed as Linux ``input_event`` records, into a FIFO.

``key_records`` turns text into the records a USB keyboard wedge set up for a layout sends
(EV_MSC scan code, EV_KEY press and release, EV_SYN; Shift, AltGr (right Alt) and Ctrl+] for
GS around the keys that need them; a dead key's own character as the dead key then Space);
``HidScannerWriter`` writes them into a FIFO that the HID driver reads exactly as it reads
``/dev/input/event*``. Re-exported by ``devices.simulators.scanner`` with the other scanners.
"""

from __future__ import annotations

import os
from pathlib import Path

import trio

from devices.hid import (
    ALTGR,
    EV_KEY,
    EV_MSC,
    EV_SYN,
    INPUT_EVENT,
    KEY_CODES,
    KEY_PRESS,
    KEY_RELEASE,
    PLAIN,
    SHIFTED,
    US_LAYOUT,
    KeyLayout,
)
from devices.simulators._fd import write_all

MSC_SCAN = 4


def _typing_table(layout: KeyLayout) -> dict[str, tuple[int, int]]:
    """character -> (key code, level: ``PLAIN``, ``SHIFTED`` or ``ALTGR``), preferring the main
    block over the keypad and an undead key over a dead one."""
    table: dict[str, tuple[int, int]] = {}
    for code in sorted(layout.keys):
        plain, shifted = layout.keys[code]
        for char, level in ((plain, PLAIN), (shifted, SHIFTED)):
            if (code, level) not in layout.dead:
                table.setdefault(char, (code, level))
    for code in sorted(layout.altgr):
        if (code, ALTGR) not in layout.dead:
            table.setdefault(layout.altgr[code], (code, ALTGR))
    for code in sorted(layout.keys):  # a dead key last: typed as dead key + Space (Windows)
        for level, char in ((PLAIN, layout.keys[code][0]), (SHIFTED, layout.keys[code][1]),
                            (ALTGR, layout.altgr.get(code, ""))):
            if char and (code, level) in layout.dead:
                table.setdefault(char, (code, level))
    return table


def key_records(text: str, layout: KeyLayout = US_LAYOUT, *, time_s: float = 0.0) -> bytes:
    """The ``input_event`` records of a keyboard wedge typing ``text``.

    Each key: EV_MSC scan code, EV_KEY press, EV_SYN, EV_KEY release, EV_SYN -- as a USB
    keyboard reports it; Shift pressed around shifted characters, right Alt (AltGr) around a
    layout's AltGr characters; a dead key's own character as the dead key then Space; GS
    (0x1D) as Ctrl+]. ``"\\r"`` is Enter and ``"\\t"`` Tab. A character the layout cannot
    type raises ``ValueError`` (a real scanner would need a different setup).
    """
    table = _typing_table(layout)
    sec, usec = int(time_s), int(time_s % 1 * 1_000_000)
    pack = INPUT_EVENT.pack
    out: list[bytes] = []

    def key(code: int, value: int) -> None:
        out.append(pack(sec, usec, EV_MSC, MSC_SCAN, code))
        out.append(pack(sec, usec, EV_KEY, code, value))
        out.append(pack(sec, usec, EV_SYN, 0, 0))

    for char in text:
        level = PLAIN
        if char == "\x1d":
            modifier, code = KEY_CODES["KEY_LEFTCTRL"], KEY_CODES["KEY_RIGHTBRACE"]
        elif char in table:
            code, level = table[char]
            modifier = {PLAIN: 0, SHIFTED: KEY_CODES["KEY_LEFTSHIFT"], ALTGR: KEY_CODES["KEY_RIGHTALT"]}[level]
        else:
            raise ValueError(f"layout {layout.name!r} cannot type {char!r}")
        if modifier:
            key(modifier, KEY_PRESS)
        key(code, KEY_PRESS)
        key(code, KEY_RELEASE)
        if modifier:
            key(modifier, KEY_RELEASE)
        if (code, level) in layout.dead:
            key(KEY_CODES["KEY_SPACE"], KEY_PRESS)
            key(KEY_CODES["KEY_SPACE"], KEY_RELEASE)
    return b"".join(out)


class HidScannerWriter:
    """A keyboard wedge writing ``input_event`` records into a FIFO (the driver's "device").

    Args:
        path: a FIFO (``os.mkfifo``) the HID driver reads; created if missing.
        layout: the layout the simulated scanner is set up for.
    """

    def __init__(self, path: str | os.PathLike[str], layout: KeyLayout = US_LAYOUT) -> None:
        self.path = Path(path)
        self.layout = layout
        self.fd: int | None = None

    def __repr__(self) -> str:
        return f"HidScannerWriter({str(self.path)!r}, {'plugged' if self.fd is not None else 'unplugged'})"

    async def plug(self) -> None:
        """Open the FIFO for writing (waits until the driver has it open for reading)."""
        if not self.path.exists():
            os.mkfifo(self.path)
        while self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                await trio.sleep(0.005)

    def unplug(self) -> None:
        """Close the FIFO: the driver reads EOF, as an unplugged device."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    async def type(self, text: str, *, enter: str = "\r") -> None:
        """Type ``text`` followed by ``enter`` (``""`` for none)."""
        await self.send(key_records(text + enter, self.layout))

    async def send(self, records: bytes) -> None:
        """Write raw records (or any bytes: fuzzing)."""
        if self.fd is None:
            raise RuntimeError("the scanner is unplugged")
        await write_all(self.fd, records)


__all__ = ["MSC_SCAN", "HidScannerWriter", "key_records"]
