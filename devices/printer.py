"""The ZPL label printer driver: raw TCP (port 9100) or a serial line, one job at a time.

``ZplPrinter.print_label(zpl)`` does exactly this, and reports how far it got:

1. check the ZPL (``check_zpl``): a malformed label is ``refused`` before any I/O;
2. connect (a new connection per job: a Zebra serves one 9100 client at a time, and a
   fresh connection never carries a half-read answer over from a previous job);
3. send ``~HS`` and read the three status strings within ``status_timeout_s``; paper
   out, head open, paused, buffer full (``PrinterStatus.reasons``) -> ``refused``;
4. send the job, then ``~HS`` again. The printer reads its input in order, so an
   answer to that second ``~HS`` proves every byte of the label arrived -> ``sent``.
   A connection lost or silent after the first byte of the label -> ``uncertain``:
   the label may or may not come out, and only a person can tell.

The driver never re-sends anything by itself: at-most-once printing is the pack
station's print queue's job, in the store, with an operator deciding on ``uncertain``.
A printer that cannot be reached is ``refused`` too (nothing was sent), with a reason
the station can show; ``print_label`` raises only for cancellation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import trio

from devices.serial_port import StreamFactory, open_serial_stream
from devices.zpl import (
    HostStatusError,
    PrinterStatus,
    ZplError,
    check_zpl,
    parse_host_status,
    split_host_status,
)
from gateway._errors import DeviceUnavailableError

logger = logging.getLogger(__name__)

Outcome = Literal["refused", "sent", "uncertain"]

HOST_STATUS_REQUEST = b"~HS\r\n"
_MAX_STATUS_BYTES = 4096


@dataclass(frozen=True, slots=True)
class PrintResult:
    """How far one job got.

    Attributes:
        outcome: ``"refused"`` (nothing of the label was sent), ``"sent"`` (the printer
            received every byte), ``"uncertain"`` (cut off after the label started).
        reason: why it was refused or is uncertain, for the station; ``""`` when sent.
        status: the ``~HS`` read before the job, when one was read.
    """

    outcome: Outcome
    reason: str = ""
    status: PrinterStatus | None = None


class _StatusUnavailable(Exception):
    """The printer's status could not be read (internal: becomes a result)."""


async def _read_status(stream: trio.abc.Stream, timeout_s: float) -> PrinterStatus:
    """Ask ``~HS`` and read its three strings, or raise ``_StatusUnavailable``."""
    buffer = b""
    strings: list[bytes] = []
    try:
        with trio.fail_after(timeout_s):
            await stream.send_all(HOST_STATUS_REQUEST)
            while len(strings) < 3:
                chunk = await stream.receive_some(1024)
                if not chunk:
                    raise _StatusUnavailable("the printer closed the connection")
                complete, buffer = split_host_status(buffer + chunk)
                strings += complete
                if len(buffer) > _MAX_STATUS_BYTES:
                    raise _StatusUnavailable("the printer's status answer is too long")
    except trio.TooSlowError:
        raise _StatusUnavailable(f"no status answer within {timeout_s:g} s") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise _StatusUnavailable(f"connection lost ({exc})") from exc
    raw = b"".join(b"\x02" + text + b"\x03" for text in strings[:3])
    try:
        return parse_host_status(raw)
    except HostStatusError as exc:
        raise _StatusUnavailable(f"unreadable status: {exc}") from exc


class ZplPrinter:
    """One label printer. Jobs are serialised: a second caller waits for the first.

    Args:
        name: the printer's configured name (used in logs and reasons).
        connect: opens a fresh byte stream to the printer (``tcp``/``serial`` build one).
        connect_timeout_s: bound on opening the connection.
        status_timeout_s: bound on each ``~HS`` answer.
        send_timeout_s: bound on sending the label itself.
    """

    def __init__(self, name: str, connect: StreamFactory, *, connect_timeout_s: float = 5.0,
                 status_timeout_s: float = 3.0, send_timeout_s: float = 30.0) -> None:
        self.name = name
        self._connect = connect
        self.connect_timeout_s = connect_timeout_s
        self.status_timeout_s = status_timeout_s
        self.send_timeout_s = send_timeout_s
        self._lock = trio.Lock()

    def __repr__(self) -> str:
        return f"ZplPrinter({self.name!r})"

    @classmethod
    def tcp(cls, name: str, host: str, port: int = 9100, **timeouts: float) -> ZplPrinter:
        """A printer on raw TCP (Zebra's port 9100)."""
        async def connect() -> trio.abc.Stream:
            return await trio.open_tcp_stream(host, port)
        return cls(name, connect, **timeouts)

    @classmethod
    def serial(cls, name: str, path: str, baudrate: int = 9600, **timeouts: float) -> ZplPrinter:
        """A printer on a serial line; pyserial sets the line up, trio does the I/O."""
        async def connect() -> trio.abc.Stream:
            return await open_serial_stream(path, baudrate)
        return cls(name, connect, **timeouts)

    async def status(self) -> PrinterStatus:
        """Read ``~HS`` on its own (for health pages).

        Raises:
            DeviceUnavailableError: the printer cannot be reached or does not answer.
        """
        async with self._lock:
            try:
                with trio.fail_after(self.connect_timeout_s):
                    stream = await self._connect()
            except (OSError, trio.TooSlowError) as exc:
                raise DeviceUnavailableError(self.name, f"cannot connect ({str(exc) or 'timed out'})") from exc
            async with stream:
                try:
                    return await _read_status(stream, self.status_timeout_s)
                except _StatusUnavailable as exc:
                    raise DeviceUnavailableError(self.name, str(exc)) from exc

    async def print_label(self, zpl: str) -> PrintResult:
        """Send one job if ``~HS`` says the printer can print it. Never re-sends.

        Args:
            zpl: one or more ``^XA … ^XZ`` formats (``render_label`` or ERP-supplied).

        Returns:
            The ``PrintResult``; see the module docstring for what each outcome means.

        Cancellation: cancelled before the label's first byte, nothing was sent; after
        it, the job is as uncertain as a pulled cable, and the caller must treat it so.
        """
        try:
            check_zpl(zpl)
        except ZplError as exc:
            return PrintResult("refused", f"label is not valid ZPL: {exc}")
        payload = zpl.encode("utf-8")
        async with self._lock:
            try:
                with trio.fail_after(self.connect_timeout_s):
                    stream = await self._connect()
            except (OSError, trio.TooSlowError) as exc:
                logger.warning("printer %s: cannot connect: %r", self.name, exc)
                return PrintResult("refused", "printer not reachable")
            async with stream:
                return await self._job(stream, payload)

    async def _job(self, stream: trio.abc.Stream, payload: bytes) -> PrintResult:
        try:
            status = await _read_status(stream, self.status_timeout_s)
        except _StatusUnavailable as exc:
            logger.warning("printer %s: status before job: %s", self.name, exc)
            return PrintResult("refused", f"printer status unavailable: {exc}")
        if not status.ready:
            return PrintResult("refused", ", ".join(status.reasons), status)
        try:
            with trio.fail_after(self.send_timeout_s):
                await stream.send_all(payload)
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            logger.warning("printer %s: cut off while sending: %r", self.name, exc)
            return PrintResult("uncertain", "connection lost while sending the label", status)
        try:
            await _read_status(stream, self.status_timeout_s)
        except _StatusUnavailable as exc:
            logger.warning("printer %s: no confirmation after job: %s", self.name, exc)
            return PrintResult("uncertain", f"printer did not confirm receipt: {exc}", status)
        return PrintResult("sent", "", status)


__all__ = ["HOST_STATUS_REQUEST", "PrintResult", "ZplPrinter"]
