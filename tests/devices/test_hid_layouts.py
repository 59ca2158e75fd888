"""Keyboard layouts with AltGr and dead keys: real ``input_event`` records, decoded (``hid``,
``hid_layouts``), and through the keyboard-wedge driver reading a FIFO (``hid_scanner``)."""

from __future__ import annotations

import functools
import os

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.hid import (
    ALTGR,
    EV_KEY,
    EV_SYN,
    INPUT_EVENT,
    KEY_CODES,
    KEY_PRESS,
    KEY_RELEASE,
    PLAIN,
    SHIFTED,
    US_LAYOUT,
    KeyDecoder,
    KeyLayout,
)
from devices.hid_layouts import DE_LAYOUT, FR_LAYOUT, LAYOUTS, layout_named
from devices.hid_scanner import serve_hid_scanner
from devices.scan import Scan
from devices.simulators.scanner import HidScannerWriter, key_records

K = KEY_CODES
GS = "\x1d"


def events(*pairs: tuple[str | int, int]) -> bytes:
    """Records for (key, value) pairs, each followed by EV_SYN, as the kernel sends them."""
    out = []
    for key, value in pairs:
        code = K[key] if isinstance(key, str) else key
        out.append(INPUT_EVENT.pack(1_764_000_000, 0, EV_KEY, code, value))
        out.append(INPUT_EVENT.pack(1_764_000_000, 0, EV_SYN, 0, 0))
    return b"".join(out)


def tap(key: str | int, *modifiers: str) -> list[tuple[str | int, int]]:
    """Press the modifiers, tap the key, release the modifiers (as a wedge types)."""
    return [*((m, KEY_PRESS) for m in modifiers), (key, KEY_PRESS), (key, KEY_RELEASE),
            *((m, KEY_RELEASE) for m in reversed(modifiers))]


def typist(layout: KeyLayout) -> dict[str, list[tuple[str | int, int]]]:
    """character -> the key events a scanner set up for ``layout`` sends for it (a dead
    key followed by Space, as for a Windows host); the main block before the keypad."""
    table: dict[str, list[tuple[str | int, int]]] = {}
    for code in sorted(layout.keys):
        plain, shifted = layout.keys[code]
        for char, level, mods in ((plain, PLAIN, ()), (shifted, SHIFTED, ("KEY_LEFTSHIFT",)),
                                  (layout.altgr.get(code, ""), ALTGR, ("KEY_RIGHTALT",))):
            if char and char != "\ufffd" and char not in table:
                dead = tap("KEY_SPACE") if (code, level) in layout.dead else []
                table[char] = [*tap(code, *mods), *dead]
    table[GS] = tap("KEY_RIGHTBRACE", "KEY_LEFTCTRL")
    return table


def typed(layout: KeyLayout, text: str) -> bytes:
    table = typist(layout)
    return events(*(pair for char in text for pair in table[char]))


ALT_0029 = [("KEY_LEFTALT", KEY_PRESS), *tap("KEY_KP0"), *tap("KEY_KP0"), *tap("KEY_KP2"), *tap("KEY_KP9"),
            ("KEY_LEFTALT", KEY_RELEASE)]


async def scans_of(tmp_path, layout: KeyLayout, records: bytes, count: int) -> list[Scan]:
    """Run the keyboard-wedge driver on a FIFO, write ``records``, return ``count`` scans."""
    path = tmp_path / "usb-Datalogic-event-kbd"
    os.mkfifo(path)
    writer = HidScannerWriter(path, layout)
    send, receive = trio.open_memory_channel[Scan](100)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_hid_scanner, str(path), send, station="P1", layout=layout))
            await writer.plug()
            await writer.send(records)
            got = [await receive.receive() for _ in range(count)]
            writer.unplug()
            nursery.cancel_scope.cancel()
    return got


# -- German --------------------------------------------------------------------------


async def test_german_altgr_characters_decode_through_the_driver(tmp_path):
    altgr = [*tap("KEY_Q", "KEY_RIGHTALT"), *tap("KEY_7", "KEY_RIGHTALT"), *tap("KEY_8", "KEY_RIGHTALT"),
             *tap("KEY_9", "KEY_RIGHTALT"), *tap("KEY_0", "KEY_RIGHTALT"), *tap("KEY_MINUS", "KEY_RIGHTALT"),
             *tap("KEY_102ND", "KEY_RIGHTALT"), *tap("KEY_RIGHTBRACE", "KEY_RIGHTALT")]
    aim = [*tap("KEY_9", "KEY_RIGHTALT"), *tap("KEY_C", "KEY_LEFTSHIFT"), *tap("KEY_0")]  # "]C0", ] by AltGr
    records = events(*aim, *tap("KEY_A"), *altgr, *tap("KEY_Y"), *tap("KEY_ENTER"))
    (scan,) = await scans_of(tmp_path, DE_LAYOUT, records, 1)
    assert scan.ok, scan.error
    assert scan.symbology == "]C0" and scan.text == "a@{[]}\\|~z"


async def test_an_altgr_combination_german_lacks_is_an_error_never_a_wrong_character(tmp_path):
    records = events(*tap("KEY_C", "KEY_LEFTSHIFT"), *tap("KEY_A", "KEY_RIGHTALT"), *tap("KEY_1"),
                     *tap("KEY_ENTER"),
                     *tap("KEY_Q", "KEY_RIGHTALT", "KEY_LEFTSHIFT"), *tap("KEY_ENTER"),  # AltGr+Shift: level 4
                     *tap("KEY_KP2", "KEY_RIGHTALT"), *tap("KEY_ENTER"))  # right Alt is AltGr, no Alt code
    first, second, third = await scans_of(tmp_path, DE_LAYOUT, records, 3)
    for scan in (first, second, third):
        assert not scan.ok and "U+FFFD" in (scan.error or ""), scan
    assert first.text.startswith("C") and "q" not in second.text and "@" not in second.text


def test_german_letters_digits_and_punctuation():
    decoder = KeyDecoder(DE_LAYOUT)
    plain = ["KEY_Z", "KEY_Y", "KEY_MINUS", "KEY_LEFTBRACE", "KEY_SEMICOLON", "KEY_APOSTROPHE", "KEY_RIGHTBRACE",
             "KEY_BACKSLASH", "KEY_102ND", "KEY_COMMA", "KEY_DOT", "KEY_SLASH", "KEY_KPDOT"]
    assert decoder.feed(events(*(pair for key in plain for pair in tap(key)))) == "yzßüöä+#<,.-,"
    shifted = ["KEY_1", "KEY_2", "KEY_3", "KEY_4", "KEY_5", "KEY_6", "KEY_7", "KEY_8", "KEY_9", "KEY_0",
               "KEY_MINUS", "KEY_Z", "KEY_LEFTBRACE", "KEY_RIGHTBRACE", "KEY_BACKSLASH", "KEY_102ND", "KEY_COMMA",
               "KEY_DOT", "KEY_SLASH"]
    assert decoder.feed(events(*(pair for key in shifted for pair in tap(key, "KEY_RIGHTSHIFT")))) \
        == "!\"§$%&/()=?YÜ*'>;:_"


def test_caps_lock_uppercases_umlauts_but_leaves_sharp_s():
    decoder = KeyDecoder(DE_LAYOUT)
    assert decoder.feed(events(*tap("KEY_CAPSLOCK"), *tap("KEY_LEFTBRACE"), *tap("KEY_MINUS"), *tap("KEY_Z"),
                               *tap("KEY_Q", "KEY_RIGHTALT"))) == "ÜßY@"


def test_dead_keys_type_as_on_a_windows_host():
    def decode(*keys: list[tuple[str | int, int]]) -> str:
        return KeyDecoder(DE_LAYOUT).feed(events(*(pair for key in keys for pair in key)))

    assert decode(tap("KEY_GRAVE"), tap("KEY_SPACE")) == "^"
    assert decode(tap("KEY_GRAVE"), tap("KEY_E")) == "ê"
    assert decode(tap("KEY_EQUAL"), tap("KEY_E", "KEY_LEFTSHIFT")) == "É"
    assert decode(tap("KEY_EQUAL", "KEY_LEFTSHIFT"), tap("KEY_A")) == "à"
    assert decode(tap("KEY_GRAVE"), tap("KEY_X")) == "^x"
    assert decode(tap("KEY_GRAVE"), tap("KEY_GRAVE")) == "^^"
    assert decode(tap("KEY_GRAVE"), tap("KEY_ENTER")) == "^\r"
    assert decode(tap("KEY_GRAVE", "KEY_LEFTSHIFT")) == "°"  # Shift+^ is not dead
    assert decode(tap("KEY_GRAVE"), tap("KEY_A", "KEY_RIGHTALT")) == "^\ufffd"
    waiting = KeyDecoder(DE_LAYOUT)
    assert waiting.feed(events(*tap("KEY_GRAVE"))) == "" and "dead='^'" in repr(waiting)


# -- GS, Alt codes and Ctrl ----------------------------------------------------------


@pytest.mark.parametrize("layout", [US_LAYOUT, DE_LAYOUT, FR_LAYOUT], ids=lambda layout: layout.name)
def test_alt_0029_and_ctrl_bracket_key_are_gs_on_every_layout(layout):
    decoder = KeyDecoder(layout)
    assert decoder.feed(events(*ALT_0029)) == GS
    assert decoder.feed(events(*tap("KEY_RIGHTBRACE", "KEY_LEFTCTRL"))) == GS  # positional, as keymaps do
    assert decoder.feed(key_records(f"1{GS}2", layout)) == f"1{GS}2"  # the simulator's Ctrl+]


def test_right_alt_is_still_alt_on_us_and_ctrl_alt_is_altgr_on_german():
    us = KeyDecoder(US_LAYOUT)
    right_alt_0029 = [(key if key != "KEY_LEFTALT" else "KEY_RIGHTALT", value) for key, value in ALT_0029]
    assert us.feed(events(*right_alt_0029)) == GS
    assert us.feed(events(*tap("KEY_Q", "KEY_RIGHTALT"))) == "q"  # US: unchanged, Alt + a letter is the letter
    de = KeyDecoder(DE_LAYOUT)
    assert de.feed(events(*tap("KEY_Q", "KEY_LEFTCTRL", "KEY_LEFTALT"))) == "@"  # Windows' AltGr
    assert de.feed(events(*tap("KEY_Y", "KEY_LEFTCTRL"))) == "\x1a"  # Ctrl + the key labelled Z: SUB


@pytest.mark.parametrize("layout", [US_LAYOUT, DE_LAYOUT, FR_LAYOUT], ids=lambda layout: layout.name)
async def test_a_gs1_code_with_alt_0029_on_every_layout(tmp_path, layout):
    table = typist(layout)
    records = events(*(pair for char in "]C101" for pair in table[char]), *ALT_0029,
                     *(pair for char in "10AB" for pair in table[char]), *tap("KEY_ENTER"))
    (scan,) = await scans_of(tmp_path, layout, records, 1)
    assert scan.text == f"01{GS}10AB" and scan.symbology == "]C1"


# -- French and changing keys ---------------------------------------------------------


def test_french_digits_need_shift_and_altgr_types_the_rest():
    decoder = KeyDecoder(FR_LAYOUT)
    digits = [f"KEY_{d}" for d in "1234567890"]
    assert decoder.feed(events(*(pair for key in digits for pair in tap(key)))) == "&é\"'(-è_çà"
    assert decoder.feed(events(*(pair for key in digits for pair in tap(key, "KEY_LEFTSHIFT")))) == "1234567890"
    assert decoder.feed(events(*tap("KEY_Q"), *tap("KEY_A"), *tap("KEY_W"), *tap("KEY_Z"), *tap("KEY_SEMICOLON"),
                               *tap("KEY_0", "KEY_RIGHTALT"), *tap("KEY_9", "KEY_RIGHTALT"))) == "aqzwm@^"
    assert decoder.feed(events(*tap("KEY_LEFTBRACE"), *tap("KEY_E"))) == "ê"  # ^ right of P is dead
    assert decoder.feed(events(*tap("KEY_GRAVE", "KEY_LEFTSHIFT"))) == "\ufffd"


def test_keys_change_two_or_three_levels():
    three = US_LAYOUT.with_keys("us+at", {"KEY_Q": ["q", "Q", "@"]})
    decoder = KeyDecoder(three)
    assert decoder.feed(events(*tap("KEY_Q", "KEY_RIGHTALT"), *tap("KEY_W", "KEY_RIGHTALT"), *ALT_0029)) \
        == "@\ufffd" + GS  # an AltGr table makes right Alt AltGr; the left Alt still sends Alt codes
    kept = DE_LAYOUT.with_keys("de2", {"KEY_Q": ("x", "X"), "KEY_GRAVE": ("^", "°")})
    assert KeyDecoder(kept).feed(events(*tap("KEY_Q"), *tap("KEY_Q", "KEY_RIGHTALT"), *tap("KEY_GRAVE"))) \
        == "x@^"  # two characters keep the AltGr one; a changed key is no longer dead
    assert repr(DE_LAYOUT) == "KeyLayout('de', 67 keys, 12 AltGr)"
    with pytest.raises(ValueError, match="AltGr character"):
        US_LAYOUT.with_keys("x", {"KEY_Q": ("q", "Q", "@", "!")})
    with pytest.raises(ValueError, match="modifier"):
        US_LAYOUT.with_keys("x", {"KEY_RIGHTALT": ("a", "A")})


def test_layout_named_builds_the_configured_layout():
    assert LAYOUTS["us"] is US_LAYOUT and layout_named("de") is DE_LAYOUT
    custom = layout_named("de", {"KEY_Z": ["z", "Z"], "KEY_E": ["e", "E", "€"]})
    assert KeyDecoder(custom).feed(events(*tap("KEY_Z"), *tap("KEY_Y"), *tap("KEY_Q", "KEY_RIGHTALT"))) == "zz@"
    with pytest.raises(ValueError, match="unknown layout 'dvorak'"):
        layout_named("dvorak")


# -- properties ---------------------------------------------------------------------


def _typable(layout: KeyLayout) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.sampled_from(sorted(typist(layout))), max_size=40)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), cut=st.integers(1, 97))
def test_whatever_a_german_or_french_scanner_types_decodes_back(data, cut):
    layout = data.draw(st.sampled_from([DE_LAYOUT, FR_LAYOUT]))
    text = data.draw(_typable(layout))
    records = typed(layout, text)
    decoder = KeyDecoder(layout)
    assert "".join(decoder.feed(records[i:i + cut]) for i in range(0, len(records), cut)) == text


KEYS = st.sampled_from(sorted({*K.values(), 0, 183, 255}))


@settings(max_examples=300)
@given(layout=st.sampled_from([DE_LAYOUT, FR_LAYOUT]), pairs=st.lists(st.tuples(KEYS, st.integers(-1, 3)),
                                                                        max_size=120))
def test_random_key_event_streams_never_raise(layout, pairs):
    decoder = KeyDecoder(layout)
    for code, value in pairs:
        text = decoder.key(code, value)
        assert isinstance(text, str) and len(text) <= 2  # at most a dead key and the next character


@settings(max_examples=200)
@given(data=st.binary(max_size=24 * 40))
def test_random_records_on_the_german_layout_never_raise(data):
    assert isinstance(KeyDecoder(DE_LAYOUT).feed(data), str)


@settings(max_examples=200)
@given(text=st.text(alphabet="abcxyzABCXYZ0123456789@{[]}\\|~^´`äöüß-_.,<>#'+*€", max_size=24),
       layout=st.sampled_from(["us", "de", "fr"]))
def test_the_simulated_wedge_types_what_the_decoder_reads_back_on_every_layout(text, layout):
    keys = LAYOUTS[layout]
    typable = "".join(c for c in text if _can_type(c, keys))
    decoder = KeyDecoder(keys)
    assert decoder.feed(key_records(typable + "\r", keys)) == typable + "\r"


def _can_type(char, layout):
    try:
        key_records(char, layout)
    except ValueError:
        return False
    return True


def test_the_simulated_german_wedge_types_altgr_and_dead_characters():
    records = key_records("]C0@{[~^´x", DE_LAYOUT)
    assert KeyDecoder(DE_LAYOUT).feed(records) == "]C0@{[~^´x"
    assert KEY_CODES["KEY_RIGHTALT"] in {code for _, _, kind, code, _ in INPUT_EVENT.iter_unpack(records) if kind == 1}
