"""The key-event decoder: real ``struct input_event`` records in, characters out (pure)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.hid import EV_KEY, EV_SYN, INPUT_EVENT, KEY_CODES, KEY_PRESS, KEY_RELEASE, US_LAYOUT, KeyDecoder
from devices.simulators.scanner import key_records

K = KEY_CODES


def events(*pairs: tuple[str | int, int]) -> bytes:
    """Records for (key, value) pairs, each followed by EV_SYN, as the kernel sends them."""
    out = []
    for key, value in pairs:
        code = K[key] if isinstance(key, str) else key
        out.append(INPUT_EVENT.pack(1_764_000_000, 123_456, EV_KEY, code, value))
        out.append(INPUT_EVENT.pack(1_764_000_000, 123_456, EV_SYN, 0, 0))
    return b"".join(out)


def tap(key: str) -> tuple[tuple[str, int], tuple[str, int]]:
    return (key, KEY_PRESS), (key, KEY_RELEASE)


def test_a_record_is_the_24_byte_kernel_struct():
    assert INPUT_EVENT.size == 24  # timeval (2 longs), u16 type, u16 code, s32 value on 64-bit Linux


def test_digits_letters_punctuation_and_enter_through_a_real_pipe():
    """Records go through a pipe, as the driver reads them from a file descriptor."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, key_records("]C0Order-42/a.b_c\r"))
        data = os.read(read_fd, 1 << 16)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert KeyDecoder().feed(data) == "]C0Order-42/a.b_c\r"


def test_either_shift_and_caps_lock():
    decoder = KeyDecoder()
    typed = decoder.feed(events(("KEY_RIGHTSHIFT", 1), *tap("KEY_A"), ("KEY_RIGHTSHIFT", 0), *tap("KEY_A"),
                                *tap("KEY_CAPSLOCK"), *tap("KEY_B"), *tap("KEY_1"),
                                ("KEY_LEFTSHIFT", 1), *tap("KEY_B"), ("KEY_LEFTSHIFT", 0), *tap("KEY_CAPSLOCK"),
                                *tap("KEY_C")))
    assert typed == "AaB1bc"  # caps on: b -> B, digits unchanged, Shift+b -> b


def test_gs_by_ctrl_bracket_and_by_alt_keypad_code():
    decoder = KeyDecoder()
    assert decoder.feed(events(("KEY_LEFTCTRL", 1), *tap("KEY_RIGHTBRACE"), ("KEY_LEFTCTRL", 0))) == "\x1d"
    alt_0029 = events(("KEY_LEFTALT", 1), *tap("KEY_KP0"), *tap("KEY_KP0"), *tap("KEY_KP2"), *tap("KEY_KP9"),
                      ("KEY_LEFTALT", 0))
    assert decoder.feed(alt_0029) == "\x1d"
    alt_0196 = events(("KEY_LEFTALT", 1), *tap("KEY_KP0"), *tap("KEY_KP1"), *tap("KEY_KP9"), *tap("KEY_KP6"),
                      ("KEY_LEFTALT", 0))
    assert decoder.feed(alt_0196) == "Ä"


def test_tab_keypad_enter_and_repeat():
    decoder = KeyDecoder()
    assert decoder.feed(events(*tap("KEY_TAB"), *tap("KEY_KP5"), ("KEY_7", 1), ("KEY_7", 2), ("KEY_7", 0),
                               *tap("KEY_KPENTER"))) == "\t577\r"


def test_an_unknown_key_is_u_fffd_not_silence_and_other_event_types_are_ignored():
    decoder = KeyDecoder()
    other = INPUT_EVENT.pack(0, 0, 2, 0, 5) + INPUT_EVENT.pack(0, 0, 4, 4, 30)  # EV_REL, EV_MSC
    assert decoder.feed(other + events(*tap("KEY_A"), (183, 1), (183, 0))) == "a\ufffd"  # 183 = KEY_F13


def test_records_split_anywhere_decode_the_same():
    data = key_records("]C1ABC\x1dx\r")
    decoder = KeyDecoder()
    assert "".join(decoder.feed(data[i:i + 7]) for i in range(0, len(data), 7)) == "]C1ABC\x1dx\r"


def test_layouts_can_be_replaced_key_by_key():
    german = US_LAYOUT.with_keys("de", {"KEY_Z": ("y", "Y"), "KEY_Y": ["z", "Z"], K["KEY_MINUS"]: ("ß", "?")})
    data = events(*tap("KEY_Z"), *tap("KEY_Y"), *tap("KEY_MINUS"))
    assert KeyDecoder(german).feed(data) == "yzß"
    assert KeyDecoder().feed(data) == "zy-"
    assert key_records("yzß", german) == key_records("zy-")  # the simulator types with the layout too
    with pytest.raises(ValueError, match="unknown key name"):
        US_LAYOUT.with_keys("x", {"KEY_NOPE": ("a", "A")})
    with pytest.raises(ValueError, match="shifted"):
        US_LAYOUT.with_keys("x", {"KEY_A": ("ab", "A")})
    assert "de" in repr(german)


TYPABLE = st.text(alphabet=st.sampled_from(sorted({c for pair in US_LAYOUT.keys.values() for c in pair} | {"\x1d"})),
                  max_size=60)


@settings(max_examples=300)
@given(text=TYPABLE, cut=st.integers(1, 97))
def test_whatever_the_simulator_types_decodes_back(text, cut):
    data = key_records(text)
    decoder = KeyDecoder()
    assert "".join(decoder.feed(data[i:i + cut]) for i in range(0, len(data), cut)) == text


@settings(max_examples=300)
@given(data=st.binary(max_size=24 * 40))
def test_random_records_never_raise(data):
    assert isinstance(KeyDecoder().feed(data), str)


@given(st.lists(st.tuples(st.integers(0, 255), st.integers(-1, 3)), max_size=80))
def test_random_key_events_never_raise(pairs):
    decoder = KeyDecoder()
    for code, value in pairs:
        assert isinstance(decoder.key(code, value), str)
