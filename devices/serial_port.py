"""Serial ports, opened once for every serial device (scanners, printers, scales).

pyserial opens and configures the port (baud rate, 8N1, raw, no flow control, an exclusive
``flock`` so a second reader cannot silently split a device's bytes with us); trio does the
I/O on the descriptor (``wait_readable`` / ``wait_writable``), never a thread per read. Only
the open runs in a thread (a USB adapter's open may block briefly), under
``SERIAL_OPEN_LIMITER``.

Two shapes: ``open_serial_port`` gives the pyserial port (non-blocking; the scanners read
its descriptor), ``open_serial_stream`` a ``trio.abc.Stream`` for request/answer devices
(printers, scales).
"""

from __future__ import annotations

import os
import termios
from collections.abc import Awaitable, Callable

import serial
import trio

from gateway._errors import DeviceUnavailableError

#: Opens a fresh byte stream to a device (TCP or serial); what the printer and scale drivers take.
StreamFactory = Callable[[], Awaitable[trio.abc.Stream]]

#: Opens of serial ports run in threads under this limiter (they may block on USB).
SERIAL_OPEN_LIMITER = trio.CapacityLimiter(4)


def _pyserial(path: str, baudrate: int) -> serial.Serial:
    return serial.Serial(path, baudrate=baudrate, timeout=0, exclusive=True)


def open_serial_port(path: str, baudrate: int = 9600) -> serial.Serial:
    """Open and configure a serial port for reading scans (blocking; run it in a thread).

    Args:
        path: the port, preferably a ``/dev/serial/by-id/...`` symlink.
        baudrate: the scanner's baud rate (9600 is the usual factory setting; a pty
            ignores it).

    Returns:
        The open port, non-blocking (``timeout=0``), input buffer flushed (bytes that
        arrived while nobody was reading are dropped, as pyserial does on every open),
        locked with ``flock`` so that a second reader (another gateway, a stray
        ``screen``) cannot silently split the scans with us.

    Raises:
        DeviceUnavailableError: the port does not exist, is locked, or cannot be set up.
    """
    try:
        return _pyserial(path, baudrate)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceUnavailableError(path, f"cannot open serial port: {exc}") from exc


def _open_serial_descriptor(path: str, baudrate: int) -> int:
    """Open and set up the port (blocking: a USB adapter's open may stall); a descriptor."""
    try:
        port = _pyserial(path, baudrate)
    except ValueError as exc:  # a baud rate the port refuses
        raise OSError(f"{path}: {exc}") from exc
    try:
        port.reset_input_buffer()  # whatever arrived before we listened is stale
        descriptor = os.dup(port.fileno())
    finally:
        port.close()
    try:
        attributes = termios.tcgetattr(descriptor)
        attributes[6][termios.VMIN] = 1
        attributes[6][termios.VTIME] = 0
        termios.tcsetattr(descriptor, termios.TCSANOW, attributes)
    except termios.error as exc:
        os.close(descriptor)
        raise OSError(f"{path}: cannot set the line up: {exc}") from exc
    return descriptor


async def open_serial_stream(path: str, baudrate: int = 9600) -> trio.abc.Stream:
    """A trio stream on a serial port: pyserial sets it up, ``FdStream`` reads and writes.

    The open runs in a thread; after it, ``FdStream`` waits with ``wait_readable`` /
    ``wait_writable`` on a duplicate of the port's descriptor (locked for us alone), so
    nothing is held while a device is silent. The line is set to VMIN=1/VTIME=0:
    pyserial's VMIN=0 makes an empty read return 0 bytes, which a stream takes for
    end-of-file, where VMIN=1 gives the EAGAIN that ``FdStream`` waits on.

    Raises:
        OSError: the port cannot be opened or set up (pyserial's ``SerialException`` is one).
    """
    descriptor = await trio.to_thread.run_sync(_open_serial_descriptor, path, baudrate)
    return trio.lowlevel.FdStream(descriptor)


__all__ = ["SERIAL_OPEN_LIMITER", "StreamFactory", "open_serial_port", "open_serial_stream"]
