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
``hid_layouts.LAYOUTS`` has the built-in ``us``, ``de`` and ``fr``, config changes keys on
top), Enter -> ``"\\r"`` and Tab -> ``"\\t"`` so the ordinary ``Framer`` ends the read,
and the two ways a wedge can send GS (the FNC1 of GS1 codes), Ctrl+] and Alt + keypad
``0029``. A key the layout does not know becomes U+FFFD, which ``decode_scan`` reports as
an error: never a silently shortened code, never a wrong character.

European layouts have a third level: AltGr (the right Alt, ``KEY_RIGHTALT``) + a key
types the layout's ``altgr`` entry (German AltGr+Q = ``@``). On a layout with such a
table, right Alt is AltGr and nothing else, and Ctrl + either Alt counts as AltGr too
(Windows reads Ctrl+Alt as AltGr, so a scanner made for Windows may send it); a key
without an AltGr entry, or AltGr with Shift (a fourth level no built-in layout has),
types U+FFFD. Alt codes (Alt + keypad digits) then need the left Alt; on a layout
without an AltGr table (US) either Alt sends them, as before.

Dead keys (German ``^``, ``´`` and the grave accent; French ``^ ¨``) behave as on
Windows, the host a scanner's keyboard emulation is made for: the dead key types nothing
yet; followed by Space it types itself, followed by a letter it can accent it types that
accented letter (``^`` then ``e`` -> ``ê``), followed by anything else both characters. Ctrl + a key types the
control character of the layout's letter (German Ctrl+Z, the key labelled Z, is SUB),
of any other key by its US position: Ctrl + the key right of P is GS on every layout,
as a scanner sends GS whatever its keyboard country.

The decoder reads the raw records from any bytes, so tests write real records into a
pipe and run exactly the code production runs on an evdev node (``hid_scanner``).
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
#: Keys ``with_keys`` refuses to change: the decoder reads them before the table.
_NOT_TYPING = frozenset({*_SHIFTS, *_CTRLS, *_ALTS, KEY_CAPSLOCK, *_SILENT})
#: A dead key's character -> the combining mark it puts on the next letter.
_COMBINING: Mapping[str, str] = MappingProxyType(
    {"^": "\u0302", "´": "\u0301", "`": "\u0300", "~": "\u0303", "¨": "\u0308"})
#: Levels of a key, as ``KeyLayout.dead`` names them.
PLAIN, SHIFTED, ALTGR = 0, 1, 2


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Key code -> (character, character with Shift), and AltGr characters: what the host's
    layout would type.

    Args:
        name: for logs and ``repr`` (``"us"``, ``"de"``...).
        keys: the table; keys missing from it decode to U+FFFD.
        altgr: key code -> the character AltGr + that key types; empty (US): right Alt
            is an Alt like the left one.
        dead: the dead keys, as (key code, level): ``PLAIN`` 0, ``SHIFTED`` 1, ``ALTGR`` 2.
    """

    name: str
    keys: Mapping[int, tuple[str, str]]
    altgr: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    dead: frozenset[tuple[int, int]] = frozenset()

    def with_keys(self, name: str, changes: Mapping[str | int, Sequence[str]]) -> KeyLayout:
        """A copy with some keys changed, e.g. ``{"KEY_Z": ("y", "Y"), "KEY_Q": ("q", "Q", "@")}``.

        Two characters change what the key types plain and with Shift, and leave its
        AltGr character as it was; a third is its AltGr character (on a layout without
        AltGr table, the first one given makes right Alt AltGr). A changed key is not
        dead any more.

        Args:
            name: the new layout's name.
            changes: key name (``"KEY_Z"``) or code -> (character, shifted character
                [, AltGr character]), each exactly one character.

        Raises:
            ValueError: an unknown key name, a modifier or lock key, or not two or three
                single characters.
        """
        table, altgr, dead = dict(self.keys), dict(self.altgr), set(self.dead)
        for key, chars in changes.items():
            code = key if isinstance(key, int) else KEY_CODES.get(key)
            if code is None:
                raise ValueError(f"unknown key name {key!r} (use KEY_* names of input-event-codes.h, "
                                 "e.g. KEY_Z, KEY_MINUS, KEY_102ND)")
            if code in _NOT_TYPING:
                raise ValueError(f"{key} is a modifier or lock key: it cannot type a character")
            if len(chars) not in (2, 3) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
                raise ValueError(f"{key}: give [character, shifted character] or [character, shifted "
                                 f"character, AltGr character], each one character; got {chars!r}")
            table[code] = (chars[0], chars[1])
            if len(chars) == 3:
                altgr[code] = chars[2]
            dead -= {(code, PLAIN), (code, SHIFTED), (code, ALTGR)}
        return KeyLayout(name, MappingProxyType(table), MappingProxyType(altgr), frozenset(dead))

    def __repr__(self) -> str:
        altgr = f", {len(self.altgr)} AltGr" if self.altgr else ""
        return f"KeyLayout({self.name!r}, {len(self.keys)} keys{altgr})"


US_LAYOUT = KeyLayout("us", MappingProxyType({code: (plain, shifted) for _, code, plain, shifted in _US_ROWS}))


class KeyDecoder:
    """``input_event`` records in, typed characters out; keeps modifier state between calls.

    Args:
        layout: the key table (default ``US_LAYOUT``).
    """

    __slots__ = ("_alt_digits", "_alts", "_caps", "_ctrls", "_dead", "_partial", "_shifts", "layout")

    def __init__(self, layout: KeyLayout = US_LAYOUT) -> None:
        self.layout = layout
        self._partial = b""
        self._shifts: set[int] = set()
        self._ctrls: set[int] = set()
        self._alts: set[int] = set()
        self._caps = False
        self._alt_digits = ""
        self._dead = ""

    def __repr__(self) -> str:
        dead = f", dead={self._dead!r}" if self._dead else ""
        return f"KeyDecoder({self.layout!r}, shift={bool(self._shifts)}, caps={self._caps}{dead})"

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
        """One ``EV_KEY`` event: the character(s) it types, or ``""``.

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
            return self._typed(self._end_alt_code()) if held is self._alts and not held else ""
        if value == KEY_RELEASE:
            return ""
        if code == KEY_CAPSLOCK:
            if value == KEY_PRESS:
                self._caps = not self._caps
            return ""
        if code in _SILENT:
            return ""
        if self._altgr_held():
            char = self.layout.altgr.get(code, "\ufffd") if not self._shifts else "\ufffd"
            return self._dead_key(char) if (code, ALTGR) in self.layout.dead else self._typed(char)
        if self._alts and code in _KEYPAD_DIGITS:
            self._alt_digits += _KEYPAD_DIGITS[code]
            return ""
        chars = self.layout.keys.get(code)
        if chars is None:
            return self._typed("\ufffd")
        plain, shifted = chars
        if self._ctrls:
            return self._typed(_control_character(plain, code))
        char = shifted if self._shifts else plain
        if self._caps and plain.isalpha() and len(plain.upper()) == 1:  # "ß".upper() is "SS"
            char = plain if self._shifts else plain.upper()
        if (code, SHIFTED if self._shifts else PLAIN) in self.layout.dead:
            return self._dead_key(char)
        return self._typed(char)

    def _altgr_held(self) -> bool:
        """AltGr is down: right Alt, or Ctrl + Alt, on a layout with an AltGr table."""
        return bool(self.layout.altgr) and (KEY_RIGHTALT in self._alts or bool(self._alts and self._ctrls))

    def _dead_key(self, char: str) -> str:
        """A dead key: waits for the next character (a second dead key: both, as Windows)."""
        if self._dead:
            first, self._dead = self._dead, ""
            return first + char
        self._dead = char
        return ""

    def _typed(self, text: str) -> str:
        """``text`` after a pending dead key: Space types the dead key, a letter it can
        accent the accented letter, anything else both."""
        if not text or not self._dead:
            return text
        dead, self._dead = self._dead, ""
        if text == " ":
            return dead
        composed = unicodedata.normalize("NFC", text + _COMBINING.get(dead, ""))
        return composed if len(composed) == 1 and composed != text else dead + text

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


def _control_character(plain: str, code: int) -> str:
    """Ctrl + a key: the control character of the layout's ASCII letter, else of the key's
    US character (``Ctrl+]`` is GS, 0x1D, on every layout); others are unknown."""
    if not ("a" <= plain.lower() <= "z" and plain.isascii()):
        plain = US_LAYOUT.keys.get(code, ("",))[0]
    if len(plain) == 1 and "@" <= plain.upper() <= "_":
        return chr(ord(plain.upper()) & 0x1F)
    return "\ufffd"


__all__ = [
    "ALTGR", "EV_KEY", "EV_MSC", "EV_SYN", "INPUT_EVENT", "KEY_CODES", "KEY_PRESS", "KEY_RELEASE", "KEY_REPEAT",
    "PLAIN", "SHIFTED", "US_LAYOUT", "KeyDecoder", "KeyLayout",
]
