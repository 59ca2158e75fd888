"""Serial scanners (RS-232, USB CDC-ACM, USB-serial adapters) through pyserial.

Configure the port by its ``/dev/serial/by-id/...`` symlink: udev recreates it for the
same scanner after a re-plug, while ``/dev/ttyACM0`` may become ``ttyACM1``. The path
as configured is the scanner's ``device_id``.

pyserial opens and configures the port (baud rate, 8N1, raw mode, no flow control); the
reading is ours: ``trio.lowlevel.wait_readable`` on the port's file descriptor and a
non-blocking ``os.read`` (``scan_reader.fd_chunks``), with no thread per read. Only the
open goes through ``trio.to_thread`` (a USB adapter's open may block briefly), under a
named limiter.

When the scanner goes away -- the adapter is unplugged (EIO), the pty's other end
closes, the by-id link is missing at open -- ``serve_serial_scanner`` raises
``DeviceUnavailableError``; ``run_with_reopen`` (or the device supervisor) opens it again
with backoff. Tested on real pseudo-terminals (``os.openpty``), see
``devices.simulators.scanner.PtyScanner``.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import serial
import trio

from devices.framing import FramingConfig
from devices.scan import Scan
from devices.scan_reader import ScanAssembler, fd_chunks, read_scans
from devices.serial_port import SERIAL_OPEN_LIMITER, open_serial_port

log = logging.getLogger(__name__)

async def serve_serial_scanner(
    path: str,
    send_channel: trio.MemorySendChannel[Scan],
    *,
    station: str,
    framing: FramingConfig | None = None,
    baudrate: int = 9600,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Read scans from a serial scanner until it goes away.

    Args:
        path: the port (its ``/dev/serial/by-id/...`` symlink); also the ``device_id``.
        send_channel: every read goes here as a ``Scan`` (errors included).
        station: the pack station this scanner belongs to.
        framing: terminator, prefix/suffix, AIM, FNC1 substitute; default CR-terminated.
        baudrate: the scanner's baud rate.
        task_status: ``started()`` once the port is open and configured.

    Raises:
        DeviceUnavailableError: the port could not be opened, or it went away while
            reading (pending bytes are first sent as a partial ``Scan``).

    Cancellation: closes the port.
    """
    port: Any = await trio.to_thread.run_sync(open_serial_port, path, baudrate, limiter=SERIAL_OPEN_LIMITER)
    fd = port.fileno()
    try:
        assembler = ScanAssembler(framing or FramingConfig(), station=station, device_id=path)
        log.info("serial scanner %s open (station %s)", path, station)
        task_status.started()
        await read_scans(fd_chunks(fd, path), assembler, send_channel)
    finally:
        trio.lowlevel.notify_closing(fd)
        try:
            port.close()
        except (serial.SerialException, OSError) as exc:  # already gone: nothing to release
            log.debug("closing %s: %s", path, exc)


__all__ = ["SERIAL_OPEN_LIMITER", "open_serial_port", "serve_serial_scanner"]
