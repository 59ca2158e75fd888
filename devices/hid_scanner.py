"""Keyboard-wedge (USB HID) scanners through evdev, grabbed so scans never reach a console.

Configure the scanner by its ``/dev/input/by-id/usb-...-event-kbd`` symlink (stable over
re-plugs; also its ``device_id``). ``serve_hid_scanner`` opens it with the ``evdev``
library and takes an exclusive grab (the ``EVIOCGRAB`` ioctl): from then on its key
events reach only this process, not the login console or a desktop session where they
would type into whatever has focus. The grab ends when the device is closed.

The records are read from the device's file descriptor with
``trio.lowlevel.wait_readable`` (``scan_reader.fd_chunks``) and decoded by our own
``hid.KeyDecoder`` from their raw 24-byte form, not by evdev's reader: the same code
then runs on records written into a pipe, which is how the tests (and a replay of a
recorded capture) feed it. A path that is not an evdev node (a FIFO) is read as such a
raw record stream, without a grab, and logged as such (a regular file cannot be waited
on: replay a capture through a FIFO).

An unplugged scanner makes the read fail with ENODEV (EOF for a pipe): the driver sends
the pending partial read as a ``Scan`` with an error and raises
``DeviceUnavailableError``.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import stat
from collections.abc import Callable
from typing import NoReturn

import trio

from devices.framing import FramingConfig
from devices.hid import INPUT_EVENT, US_LAYOUT, KeyDecoder, KeyLayout
from devices.scan import Scan
from devices.scan_reader import ScanAssembler, fd_chunks, read_scans
from gateway._errors import DeviceUnavailableError

log = logging.getLogger(__name__)

#: The character-device major number of Linux input devices (``/dev/input/event*``).
INPUT_MAJOR = 13


def is_evdev_node(path: str) -> bool:
    """True when ``path`` (after symlinks) is a Linux input device node."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and os.major(info.st_rdev) == INPUT_MAJOR


def open_key_source(path: str, *, grab: bool = True) -> tuple[int, Callable[[], None]]:
    """Open a keyboard-wedge scanner (grabbed) or a raw record stream for reading.

    Args:
        path: the ``/dev/input/by-id/...-event-kbd`` link, or a FIFO of records.
        grab: take the exclusive grab of an evdev device (always, in production).

    Returns:
        The non-blocking file descriptor and a function that releases and closes it.

    Raises:
        DeviceUnavailableError: no such device, no permission, or another process holds
            the grab (EBUSY).
    """
    if not is_evdev_node(path):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise DeviceUnavailableError(path, f"cannot open: {exc.strerror}") from exc
        log.info("%s is not an evdev node: reading raw input_event records, no grab", path)
        return fd, lambda: os.close(fd)

    import evdev  # Linux only; imported here so the pure decoder runs anywhere

    try:
        device = evdev.InputDevice(path)
    except OSError as exc:
        raise DeviceUnavailableError(path, f"cannot open input device: {exc.strerror}") from exc
    if grab:
        try:
            device.grab()
        except OSError as exc:
            device.close()
            hint = "another process holds the grab" if exc.errno == errno.EBUSY else exc.strerror
            raise DeviceUnavailableError(path, f"cannot grab the scanner: {hint}") from exc
    log.info("keyboard-wedge scanner %s (%s) open%s", path, device.name, ", grabbed" if grab else "")

    def release() -> None:
        try:
            if grab:
                device.ungrab()
        except OSError:
            pass  # unplugged: the grab went with the device
        finally:
            device.close()

    return int(device.fd), release


async def serve_hid_scanner(
    path: str,
    send_channel: trio.MemorySendChannel[Scan],
    *,
    station: str,
    framing: FramingConfig | None = None,
    layout: KeyLayout = US_LAYOUT,
    grab: bool = True,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Read scans typed by a keyboard-wedge scanner until it goes away.

    Args:
        path: the scanner's ``/dev/input/by-id/...-event-kbd`` link; the ``device_id``.
        send_channel: every read goes here as a ``Scan`` (errors included).
        station: the pack station this scanner belongs to.
        framing: default: reads end with Enter (``"cr"``); Tab is ``"tab"``. A wedge
            cannot type GS: set ``fnc1_substitute`` to what the scanner types instead,
            or configure it to send Ctrl+] / Alt+0029, which decode to GS. Typed
            characters are framed as UTF-8, whatever ``encoding`` says.
        layout: the key table (default US; ``hid_layouts.LAYOUTS`` has ``de`` and ``fr``, with
            AltGr); change keys with ``KeyLayout.with_keys``.
        grab: take the exclusive grab (leave on in production).
        task_status: ``started()`` once the device is open (and grabbed).

    Raises:
        DeviceUnavailableError: cannot open or grab, or the device went away.

    Cancellation: releases the grab and closes the device.
    """
    config = dataclasses.replace(framing or FramingConfig(), encoding="utf-8")
    fd, release = open_key_source(path, grab=grab)
    try:
        decoder = KeyDecoder(layout)
        records = fd_chunks(fd, path, max_bytes=INPUT_EVENT.size * 512)

        async def read_typed() -> bytes:
            while True:
                data = await records()
                if not data:
                    return b""
                text = decoder.feed(data)
                if text:
                    return text.encode("utf-8", errors="surrogatepass")

        assembler = ScanAssembler(config, station=station, device_id=path)
        task_status.started()
        await read_scans(read_typed, assembler, send_channel)
    finally:
        trio.lowlevel.notify_closing(fd)
        release()


__all__ = ["INPUT_MAJOR", "is_evdev_node", "open_key_source", "serve_hid_scanner"]
