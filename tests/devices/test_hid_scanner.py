"""The keyboard-wedge driver: real input_event records through a FIFO; the grab's wiring.

CI has no ``/dev/input`` (nor ``/dev/uinput``): the exclusive grab of a real device is
exercised here only against a stand-in for ``evdev.InputDevice`` (see the README).
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import types

import pytest
import trio

from devices import hid_scanner
from devices.framing import FramingConfig
from devices.hid import EV_KEY, INPUT_EVENT
from devices.hid_scanner import is_evdev_node, open_key_source, serve_hid_scanner
from devices.reopen import run_with_reopen
from devices.scan import Scan
from devices.simulators.scanner import HidScannerWriter, key_records
from gateway._backoff import Backoff
from gateway._errors import DeviceUnavailableError

GTIN = "09501101020917"


async def receive(channel: trio.MemoryReceiveChannel[Scan], count: int = 1) -> list[Scan]:
    with trio.fail_after(5):
        return [await channel.receive() for _ in range(count)]


async def test_typed_codes_become_scans(tmp_path):
    path = tmp_path / "usb-Zebra_DS2208-event-kbd"
    os.mkfifo(path)
    writer = HidScannerWriter(path)
    send, scans = trio.open_memory_channel[Scan](100)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_hid_scanner, str(path), send, station="P1"))
            await writer.plug()
            await writer.type(f"]C101{GTIN}17261231\x1d10Lot-b")  # GS typed as Ctrl+]
            await writer.type("]C0SF-1002")
            gs1, order = await receive(scans, 2)
            assert gs1.ok and gs1.gtin == GTIN and gs1.element("10") == "Lot-b" and gs1.device_id == str(path)
            assert order.ok and order.text == "SF-1002"
            writer.unplug()
            nursery.cancel_scope.cancel()


async def test_fnc1_substitute_and_tab_terminator(tmp_path):
    path = tmp_path / "kbd"
    writer = HidScannerWriter(path)
    os.mkfifo(path)
    send, scans = trio.open_memory_channel[Scan](10)
    framing = FramingConfig(terminator="tab", fnc1_substitute="~")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_hid_scanner, str(path), send, station="P1", framing=framing))
            await writer.plug()
            await writer.type(f"]d201{GTIN}10A~21B", enter="\t")
            (scan,) = await receive(scans)
            assert scan.ok and scan.gs1 == (("01", GTIN), ("10", "A"), ("21", "B"))
            writer.unplug()
            nursery.cancel_scope.cancel()


async def test_unplug_and_replug_resumes(tmp_path):
    path = tmp_path / "usb-Honeywell-event-kbd"
    os.mkfifo(path)
    writer = HidScannerWriter(path)
    send, scans = trio.open_memory_channel[Scan](100)
    opens = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            serve = functools.partial(serve_hid_scanner, str(path), send, station="P1")
            await nursery.start(functools.partial(
                run_with_reopen, serve, device=str(path), backoff=Backoff(0.01, 0.05),
                on_open=lambda: opens.append(trio.current_time())))
            await writer.plug()
            await writer.type("]C0ONE")
            await writer.type("]C0HAL", enter="")
            assert (await receive(scans))[0].text == "ONE"
            await trio.sleep(0.02)
            writer.unplug()  # the reader sees EOF, as ENODEV from an unplugged device
            (partial,) = await receive(scans)
            assert partial.text == "HAL" and "went away" in (partial.error or "")
            await writer.plug()  # waits until the driver has reopened the FIFO
            await writer.type("]C0TWO")
            assert (await receive(scans))[0].text == "TWO"
            assert len(opens) == 2
            writer.unplug()
            nursery.cancel_scope.cancel()


async def test_garbage_records_become_scans_with_errors_not_crashes(tmp_path):
    path = tmp_path / "kbd"
    os.mkfifo(path)
    writer = HidScannerWriter(path)
    send, scans = trio.open_memory_channel[Scan](100)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_hid_scanner, str(path), send, station="P1"))
            await writer.plug()
            f13 = INPUT_EVENT.pack(0, 0, EV_KEY, 183, 1) + INPUT_EVENT.pack(0, 0, EV_KEY, 183, 0)  # no character
            await writer.send(bytes(range(256)) * 3 + key_records("]C0X") + f13 + key_records("\r"))
            await writer.type("]E09501101020918")  # bad check digit
            await writer.type("]C0OK")
            got = []
            while not got or got[-1].text != "OK":
                got.extend(await receive(scans))
            assert got[-1].ok and all(not scan.ok for scan in got[:-1])
            assert len(got) == 3 and "U+FFFD" in (got[0].error or "") and "check digit" in (got[1].error or "")
            writer.unplug()
            nursery.cancel_scope.cancel()


def test_a_fifo_or_a_missing_path_is_not_an_evdev_node(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    assert not is_evdev_node(str(tmp_path / "fifo")) and not is_evdev_node(str(tmp_path / "missing"))
    with pytest.raises(DeviceUnavailableError, match="cannot open"):
        open_key_source(str(tmp_path / "missing"))


class FakeInputDevice:
    """Stands in for ``evdev.InputDevice`` on a machine without ``/dev/input``."""

    busy = False
    log: list[str] = []

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = "Fake Scanner"
        self.fd, self.write_fd = os.pipe()
        os.set_blocking(self.fd, False)

    def grab(self) -> None:
        if FakeInputDevice.busy:
            raise OSError(errno.EBUSY, "Device or resource busy")
        self.log.append("grab")

    def ungrab(self) -> None:
        self.log.append("ungrab")

    def close(self) -> None:
        self.log.append("close")
        os.close(self.fd)
        os.close(self.write_fd)


@pytest.fixture
def fake_evdev(monkeypatch):
    monkeypatch.setitem(sys.modules, "evdev", types.SimpleNamespace(InputDevice=FakeInputDevice))
    monkeypatch.setattr(hid_scanner, "is_evdev_node", lambda path: True)
    FakeInputDevice.busy = False
    FakeInputDevice.log = []
    return FakeInputDevice


def test_an_evdev_device_is_grabbed_and_released(fake_evdev):
    fd, release = open_key_source("/dev/input/by-id/usb-x-event-kbd")
    assert fake_evdev.log == ["grab"] and fd >= 0
    release()
    assert fake_evdev.log == ["grab", "ungrab", "close"]


def test_a_grab_held_elsewhere_is_unavailable_with_a_reason(fake_evdev):
    fake_evdev.busy = True
    with pytest.raises(DeviceUnavailableError, match="another process holds the grab"):
        open_key_source("/dev/input/by-id/usb-x-event-kbd")
    assert fake_evdev.log == ["close"]
