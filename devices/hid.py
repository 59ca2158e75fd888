"""Keyboard-wedge scanners: Linux ``input_event`` records -> characters (pure, no I/O).

Most pack-station scanners are USB keyboards out of the box: they "type" each code and
then Enter (or Tab). The kernel hands every key as ``struct input_event`` records on
``/dev/input/event*``; on 64-bit Linux a record is 24 bytes::

    struct timeval time;   /* two longs */
    __u16 type;            /* EV_SYN 0 ends a packet, EV_KEY 1, EV_MSC 4 (scan codes) */
    __u16 code;            /* KEY_A 30, KEY_ENTER 28, ... (input-event-codes.h) */
    __s32 value;           /* 1 press, 0 release, 2 auto-repeat */

``KeyDecoder`` turns that record stream into text: Shift (either side), Caps Lock,
digits, letters and the usual punctuation through a ``KeyLayout`` (default ``US_LAYOUT``;
config replaces keys for other layouts), Enter -> ``"\\r"`` and Tab -> ``"\\t"`` so the
ordinary ``Framer`` ends the read, and the two ways a wedge can send GS (the FNC1 of GS1
codes), Ctrl+] and Alt + keypad ``0029``. A key the layout does not know becomes U+FFFD,
which ``decode_scan`` reports as an error: never a silently shortened code.

The decoder reads the raw records from any bytes, so tests write real records into a
pipe and run exactly the code production runs on an evdev node (``hid_scanner``).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

#: ``struct input_event`` in the platform's native layout (24 bytes on 64-bit Linux).
INPUT_EVENT = struct.Struct("llHHi")
EV_SYN, EV_KEY, EV_MSC = 0, 1, 4
KEY_RELEASE, KEY_PRESS, KEY_REPEAT = 0, 1, 2

KEY_ESC, KEY_ENTER, KEY_TAB, KEY_KPENTER = 1, 28, 15, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58
KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT = 29, 97, 56, 100
KEY_RIGHTBRACE, KEY_NUMLOCK = 27, 69
_SHIFTS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
_CTRLS = frozenset({KEY_LEFTCTRL, KEY_RIGHTCTRL})
_ALTS = frozenset({KEY_LEFTALT, KEY_RIGHTALT})
#: Keys that change no text (lock keys a scanner may toggle, Esc).
_SILENT = frozenset({KEY_NUMLOCK, KEY_ESC, 70})  # 70 = KEY_SCROLLLOCK

# name, code, character, character with Shift (input-event-codes.h; US layout).
_US_ROWS: tuple[tuple[str, int, str, str], ...] = (
    *((f"KEY_{d}", 2 + i, d, s) for i, (d, s) in enumerate(zip("1234567890", "!@#$%^&*()", strict=True))),
    ("KEY_MINUS", 12, "-", "_"), ("KEY_EQUAL", 13, "=", "+"), ("KEY_TAB", 15, "\t", "\t"),
    *((f"KEY_{c.upper()}", 16 + i, c, c.upper()) for i, c in enumerate("qwertyuiop")),
    ("KEY_LEFTBRACE", 26, "[", "{"), ("KEY_RIGHTBRACE", 27, "]", "}"), ("KEY_ENTER", 28, "\r", "\r"),
    *((f"KEY_{c.upper()}", 30 + i, c, c.upper()) for i, c in enumerate("asdfghjkl")),
    ("KEY_SEMICOLON", 39, ";", ":"), ("KEY_APOSTROPHE", 40, "'", '"'), ("KEY_GRAVE", 41, "`", "~"),
    ("KEY_BACKSLASH", 43, "\\", "|"),
    *((f"KEY_{c.upper()}", 44 + i, c, c.upper()) for i, c in enumerate("zxcvbnm")),
    ("KEY_COMMA", 51, ",", "<"), ("KEY_DOT", 52, ".", ">"), ("KEY_SLASH", 53, "/", "?"),
    ("KEY_KPASTERISK", 55, "*", "*"), ("KEY_SPACE", 57, " ", " "),
    ("KEY_KP7", 71, "7", "7"), ("KEY_KP8", 72, "8", "8"), ("KEY_KP9", 73, "9", "9"),
    ("KEY_KPMINUS", 74, "-", "-"), ("KEY_KP4", 75, "4", "4"), ("KEY_KP5", 76, "5", "5"),
    ("KEY_KP6", 77, "6", "6"), ("KEY_KPPLUS", 78, "+", "+"), ("KEY_KP1", 79, "1", "1"),
    ("KEY_KP2", 80, "2", "2"), ("KEY_KP3", 81, "3", "3"), ("KEY_KP0", 82, "0", "0"),
    ("KEY_KPDOT", 83, ".", "."), ("KEY_102ND", 86, "\\", "|"), ("KEY_KPENTER", 96, "\r", "\r"),
    ("KEY_KPSLASH", 98, "/", "/"),
)
#: Every key name this module knows -> its code (layout rows and modifiers).
KEY_CODES: Mapping[str, int] = MappingProxyType({
    **{name: code for name, code, _, _ in _US_ROWS},
    "KEY_ESC": KEY_ESC, "KEY_LEFTSHIFT": KEY_LEFTSHIFT, "KEY_RIGHTSHIFT": KEY_RIGHTSHIFT,
    "KEY_CAPSLOCK": KEY_CAPSLOCK, "KEY_LEFTCTRL": KEY_LEFTCTRL, "KEY_RIGHTCTRL": KEY_RIGHTCTRL,
    "KEY_LEFTALT": KEY_LEFTALT, "KEY_RIGHTALT": KEY_RIGHTALT, "KEY_NUMLOCK": KEY_NUMLOCK,
})
_KEYPAD_DIGITS: Mapping[int, str] = MappingProxyType(
    {KEY_CODES[f"KEY_KP{d}"]: d for d in "0123456789"})


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Key code -> (character, character with Shift): what the host's layout would type.

    Args:
        name: for logs and ``repr`` (``"us"``, ``"de"``...).
        keys: the table; keys missing from it decode to U+FFFD.
    """

    name: str
    keys: Mapping[int, tuple[str, str]]

    def with_keys(self, name: str, changes: Mapping[str | int, tuple[str, str] | list[str]]) -> KeyLayout:
        """A copy with some keys changed, e.g. German: ``{"KEY_Z": ("y", "Y"), "KEY_Y": ("z", "Z")}``.

        Args:
            name: the new layout's name.
            changes: key name (``"KEY_Z"``) or code -> (character, shifted character).

        Raises:
            ValueError: an unknown key name, or not exactly two characters given.
        """
        table = dict(self.keys)
        for key, chars in changes.items():
            code = key if isinstance(key, int) else KEY_CODES.get(key)
            if code is None:
                raise ValueError(f"unknown key name {key!r} (use KEY_* names of input-event-codes.h)")
            if len(chars) != 2 or not all(isinstance(c, str) and len(c) == 1 for c in chars):
                raise ValueError(f"{key}: give [character, shifted character], got {chars!r}")
            table[code] = (chars[0], chars[1])
        return KeyLayout(name, MappingProxyType(table))

    def __repr__(self) -> str:
        return f"KeyLayout({self.name!r}, {len(self.keys)} keys)"


US_LAYOUT = KeyLayout("us", MappingProxyType({code: (plain, shifted) for _, code, plain, shifted in _US_ROWS}))


class KeyDecoder:
    """``input_event`` records in, typed characters out; keeps modifier state between calls.

    Args:
        layout: the key table (default ``US_LAYOUT``).
    """

    __slots__ = ("_alt_digits", "_alts", "_caps", "_ctrls", "_partial", "_shifts", "layout")

    def __init__(self, layout: KeyLayout = US_LAYOUT) -> None:
        self.layout = layout
        self._partial = b""
        self._shifts: set[int] = set()
        self._ctrls: set[int] = set()
        self._alts: set[int] = set()
        self._caps = False
        self._alt_digits = ""

    def __repr__(self) -> str:
        return f"KeyDecoder({self.layout!r}, shift={bool(self._shifts)}, caps={self._caps})"

    def feed(self, data: bytes) -> str:
        """Decode raw records (any chunking: a partial record waits for its rest)."""
        if self._partial:
            data = self._partial + data
        usable = len(data) - len(data) % INPUT_EVENT.size
        self._partial = data[usable:]
        out: list[str] = []
        for _sec, _usec, kind, code, value in INPUT_EVENT.iter_unpack(memoryview(data)[:usable]):
            if kind == EV_KEY:
                text = self.key(code, value)
                if text:
                    out.append(text)
        return "".join(out)

    def key(self, code: int, value: int) -> str:
        """One ``EV_KEY`` event: the character it types, or ``""``.

        Args:
            code: the key code (``KEY_A`` = 30 ...).
            value: 1 press, 0 release, 2 auto-repeat (typed again, as a console would).
        """
        held = self._shifts if code in _SHIFTS else self._ctrls if code in _CTRLS \
            else self._alts if code in _ALTS else None
        if held is not None:
            if value != KEY_RELEASE:
                held.add(code)
                return ""
            held.discard(code)
            return self._end_alt_code() if held is self._alts and not held else ""
        if value == KEY_RELEASE:
            return ""
        if code == KEY_CAPSLOCK:
            if value == KEY_PRESS:
                self._caps = not self._caps
            return ""
        if code in _SILENT:
            return ""
        if self._alts and code in _KEYPAD_DIGITS:
            self._alt_digits += _KEYPAD_DIGITS[code]
            return ""
        chars = self.layout.keys.get(code)
        if chars is None:
            return "\ufffd"
        plain, shifted = chars
        if self._ctrls:
            return _control_character(plain)
        char = shifted if self._shifts else plain
        if self._caps and plain.isalpha():
            char = plain if self._shifts else plain.upper()
        return char

    def _end_alt_code(self) -> str:
        """Alt released: the character of the keypad digits typed while it was held."""
        digits, self._alt_digits = self._alt_digits, ""
        if not digits:
            return ""
        number = int(digits)
        if number > 255:
            return "\ufffd"
        # Windows convention: a leading 0 means the ANSI (Latin-1) table, else code page 437.
        return chr(number) if number < 128 or digits.startswith("0") else bytes([number]).decode("cp437")


def _control_character(plain: str) -> str:
    """Ctrl + a key: ``Ctrl+]`` is GS (0x1D), ``Ctrl+M`` CR...; others are unknown."""
    if len(plain) == 1 and "@" <= plain.upper() <= "_":
        return chr(ord(plain.upper()) & 0x1F)
    return "\ufffd"


__all__ = [
    "EV_KEY", "EV_MSC", "EV_SYN", "INPUT_EVENT", "KEY_CODES", "KEY_PRESS", "KEY_RELEASE", "KEY_REPEAT",
    "US_LAYOUT", "KeyDecoder", "KeyLayout",
]
