"""A keyboard-wedge scanner's ``layout`` and ``keys`` in gateway.toml, and the driver built from them."""

from __future__ import annotations

import os

import pytest
import trio

from devices.hid import EV_KEY, EV_SYN, INPUT_EVENT, KEY_CODES, KEY_PRESS, KEY_RELEASE
from devices.scan import Scan
from devices.simulators.scanner import HidScannerWriter
from gateway._errors import ConfigError
from gateway._packline.devices import scanner_driver
from gateway._settings import load_settings

HID = "[stations.A1]\n[[stations.A1.scanners]]\nkind = 'hid'\npath = '{path}'\n"


def write(tmp_path, text):
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_german_layout_with_changed_keys_loads(tmp_path):
    text = HID.format(path="/dev/input/by-id/usb-Scanner-event-kbd") + \
        "layout = 'de'\nkeys = { KEY_Z = ['z', 'Z'], KEY_Y = ['y', 'Y'], KEY_E = ['e', 'E', '€'] }\n"
    (scanner,) = load_settings(write(tmp_path, text)).stations["A1"].scanners
    assert scanner.layout == "de"
    assert scanner.keys == (("KEY_Z", ("z", "Z")), ("KEY_Y", ("y", "Y")), ("KEY_E", ("e", "E", "€")))


def test_the_default_is_us_without_changes(tmp_path):
    (scanner,) = load_settings(write(tmp_path, HID.format(path="/dev/input/x"))).stations["A1"].scanners
    assert scanner.layout == "us" and scanner.keys == ()


def records(*keys: tuple[str, tuple[str, ...]]) -> bytes:
    out = []
    for key, modifiers in keys:
        for code, value in [*((m, KEY_PRESS) for m in modifiers), (key, KEY_PRESS), (key, KEY_RELEASE),
                            *((m, KEY_RELEASE) for m in modifiers)]:
            out.append(INPUT_EVENT.pack(0, 0, EV_KEY, KEY_CODES[code], value) + INPUT_EVENT.pack(0, 0, EV_SYN, 0, 0))
    return b"".join(out)


async def test_the_pack_line_driver_decodes_with_the_configured_layout(tmp_path):
    fifo = tmp_path / "usb-Scanner-event-kbd"
    os.mkfifo(fifo)
    text = HID.format(path=fifo) + "layout = 'de'\nkeys = { KEY_X = ['x', 'X', '#'] }\n"
    (scanner,) = load_settings(write(tmp_path, text)).stations["A1"].scanners
    send, receive = trio.open_memory_channel[Scan](10)
    writer = HidScannerWriter(fifo)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(scanner_driver("A1", scanner, send))
            await writer.plug()
            await writer.send(records(("KEY_9", ("KEY_RIGHTALT",)), ("KEY_C", ("KEY_LEFTSHIFT",)), ("KEY_0", ()),
                                      ("KEY_Z", ()), ("KEY_Q", ("KEY_RIGHTALT",)), ("KEY_X", ("KEY_RIGHTALT",)),
                                      ("KEY_ENTER", ())))
            scan = await receive.receive()
            writer.unplug()
            nursery.cancel_scope.cancel()
    assert scan.ok and scan.symbology == "]C0" and scan.text == "y@#", scan


SCANNER = "[stations.A1]\n[[stations.A1.scanners]]\n"
AT = "stations.A1.scanners[0]"


@pytest.mark.parametrize(("text", "line", "key", "words"), [
    (HID + "layout = 'dvorak'\n", 5, f"{AT}.layout", "unknown layout 'dvorak': give one of de, fr, us"),
    (HID + "layout = 7\n", 5, f"{AT}.layout", "must be a string"),
    (SCANNER + "kind = 'serial'\npath = '/dev/s'\nlayout = 'de'\n", 5, f"{AT}.layout",
     'only a keyboard-wedge scanner (kind = "hid")'),
    (SCANNER + "kind = 'tcp_client'\nhost = 'h'\nport = 1\nkeys = { KEY_Z = ['y', 'Y'] }\n", 6, f"{AT}.keys",
     "remove it"),
    (HID + "keys = 'yz'\n", 5, f"{AT}.keys", "must be a table of KEY_* names"),
    (HID + "keys = { KEY_NOPE = ['a', 'A'] }\n", 5, f"{AT}.keys.KEY_NOPE", "unknown key name 'KEY_NOPE'"),
    (HID + "layout = 'de'\nkeys = { KEY_Z = ['y'] }\n", 6, f"{AT}.keys.KEY_Z", "give [character, shifted"),
    (HID + "keys = { KEY_Z = ['y', 'Y', '@', '!'] }\n", 5, f"{AT}.keys.KEY_Z", "AltGr character"),
    (HID + "keys = { KEY_Z = ['yy', 'Y'] }\n", 5, f"{AT}.keys.KEY_Z", "each one character"),
    (HID + "keys = { KEY_Z = 'yY' }\n", 5, f"{AT}.keys.KEY_Z", "must be a list of strings"),
    (HID + "keys = { KEY_Z = [1, 2] }\n", 5, f"{AT}.keys.KEY_Z", "must be a list of strings"),
    (HID + "keys = { KEY_LEFTSHIFT = ['a', 'A'] }\n", 5, f"{AT}.keys.KEY_LEFTSHIFT", "modifier"),
    (HID + "layot = 'de'\n", 5, f"{AT}.layot", "unknown key (allowed:"),
])
def test_a_wrong_layout_or_keys_names_file_line_and_key(tmp_path, text, line, key, words):
    path = write(tmp_path, text.replace("{path}", "/dev/input/by-id/usb-Scanner-event-kbd"))
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    error = refused.value
    assert (error.line, error.key) == (line, key), str(error)
    assert words in error.message, str(error)
    assert str(path) in str(error)


def test_the_reference_in_the_module_docstring_names_the_new_keys():
    from gateway._settings import stations

    assert 'layout = "us"' in (stations.__doc__ or "") and "keys = {" in (stations.__doc__ or "")
