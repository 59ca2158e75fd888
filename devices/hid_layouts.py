"""The built-in keyboard layouts of keyboard-wedge scanners: ``us``, ``de``, ``fr`` (pure data).

A keyboard-wedge scanner does not send characters: it presses the keys that type them on
the host layout it is set up for (its "keyboard country"). The gateway must decode with
the same layout, or a German scanner's ``@`` (AltGr+Q) arrives as ``q`` -- so the
scanner's layout is named in ``gateway.toml`` (``layout = "de"``) and single keys can be
changed on top (``keys``), for scanners or hosts with their own variant.

* ``us``: US English, the default and what the decoder always had.
* ``de``: German QWERTZ as Windows and Linux have it: Z and Y swapped, ``ß ü ö ä``, the
  digit row's shifted characters ``! " § $ % & / ( ) =``, and AltGr for ``@ { [ ] } \\ | ~``
  (and ``² ³ € µ``). ``^`` (left of 1), ``´`` and the grave accent (right of ß) are dead
  keys: see ``devices.hid`` (a scanner sends a dead key followed by Space to type it
  alone). The keypad's decimal key types ``,``.
* ``fr``: French AZERTY (Windows): A/Q and Z/W swapped, M right of L; the digit row types
  ``& é " ' ( - è _ ç à`` and needs Shift for the digits 1-0 (Caps Lock on that row
  follows Linux, ``É``, where Windows types the digit: keep Caps Lock off);
  AltGr for ``~ # { [ | \\ ^ @ ] } € ¤`` and the grave accent; ``^ ¨`` (right of P) and
  AltGr ``~`` and grave accent are dead keys. Shift + ``²`` types nothing on Windows:
  U+FFFD here.

Characters outside these tables (a key a layout lacks, AltGr + a key without an AltGr
character) decode to U+FFFD, which makes the read an error, never a wrong character.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from devices.hid import ALTGR, KEY_CODES, PLAIN, SHIFTED, US_LAYOUT, KeyLayout

# key name -> (plain, shifted[, AltGr]) characters, as a string of 2 or 3 characters.
_DE_KEYS: Mapping[str, str] = {
    "KEY_GRAVE": "^°", "KEY_1": "1!", "KEY_2": '2"²', "KEY_3": "3§³", "KEY_4": "4$", "KEY_5": "5%",
    "KEY_6": "6&", "KEY_7": "7/{", "KEY_8": "8([", "KEY_9": "9)]", "KEY_0": "0=}", "KEY_MINUS": "ß?\\",
    "KEY_EQUAL": "´`", "KEY_Q": "qQ@", "KEY_E": "eE€", "KEY_Y": "zZ", "KEY_Z": "yY", "KEY_M": "mMµ",
    "KEY_LEFTBRACE": "üÜ", "KEY_RIGHTBRACE": "+*~", "KEY_SEMICOLON": "öÖ", "KEY_APOSTROPHE": "äÄ",
    "KEY_BACKSLASH": "#'", "KEY_102ND": "<>|", "KEY_COMMA": ",;", "KEY_DOT": ".:", "KEY_SLASH": "-_",
    "KEY_KPDOT": ",,",
}
_DE_DEAD = (("KEY_GRAVE", PLAIN), ("KEY_EQUAL", PLAIN), ("KEY_EQUAL", SHIFTED))

_FR_KEYS: Mapping[str, str] = {
    "KEY_GRAVE": "²\ufffd", "KEY_1": "&1", "KEY_2": "é2~", "KEY_3": '"3#', "KEY_4": "'4{", "KEY_5": "(5[",
    "KEY_6": "-6|", "KEY_7": "è7`", "KEY_8": "_8\\", "KEY_9": "ç9^", "KEY_0": "à0@", "KEY_MINUS": ")°]",
    "KEY_EQUAL": "=+}", "KEY_Q": "aA", "KEY_W": "zZ", "KEY_E": "eE€", "KEY_LEFTBRACE": "^¨",
    "KEY_RIGHTBRACE": "$£¤", "KEY_A": "qQ", "KEY_SEMICOLON": "mM", "KEY_APOSTROPHE": "ù%",
    "KEY_BACKSLASH": "*µ", "KEY_102ND": "<>", "KEY_Z": "wW", "KEY_M": ",?", "KEY_COMMA": ";.",
    "KEY_DOT": ":/", "KEY_SLASH": "!§",
}
_FR_DEAD = (("KEY_2", ALTGR), ("KEY_7", ALTGR), ("KEY_LEFTBRACE", PLAIN), ("KEY_LEFTBRACE", SHIFTED))


def _built(name: str, keys: Mapping[str, str], dead: Sequence[tuple[str, int]]) -> KeyLayout:
    """US with ``keys`` changed (the keys a layout does not list type as on US), ``dead`` marked."""
    layout = US_LAYOUT.with_keys(name, {key: tuple(chars) for key, chars in keys.items()})
    return replace(layout, dead=frozenset((KEY_CODES[key], level) for key, level in dead))


DE_LAYOUT = _built("de", _DE_KEYS, _DE_DEAD)
FR_LAYOUT = _built("fr", _FR_KEYS, _FR_DEAD)
#: The built-in layouts by the name ``gateway.toml`` gives them (``layout = "de"``).
LAYOUTS: Mapping[str, KeyLayout] = MappingProxyType({"us": US_LAYOUT, "de": DE_LAYOUT, "fr": FR_LAYOUT})


def layout_named(name: str, keys: Mapping[str, Sequence[str]] | None = None) -> KeyLayout:
    """The built-in layout ``name`` with ``keys`` changed (``KeyLayout.with_keys``).

    Args:
        name: ``"us"``, ``"de"`` or ``"fr"``.
        keys: key name -> [character, shifted character (, AltGr character)].

    Raises:
        ValueError: an unknown layout, or what ``with_keys`` refuses.
    """
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r} (built in: {', '.join(sorted(LAYOUTS))})")
    base = LAYOUTS[name]
    if not keys:
        return base
    changes: dict[str | int, Sequence[str]] = {key: chars for key, chars in keys.items()}
    return base.with_keys(f"{name}+keys", changes)


__all__ = ["DE_LAYOUT", "FR_LAYOUT", "LAYOUTS", "layout_named"]
