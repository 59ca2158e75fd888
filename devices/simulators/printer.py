"""A Zebra-like ZPL printer on TCP (or any trio stream), for the demo and the tests.

It reads its input in order, like a printer: ``~HS`` is answered at once with the
current flags (``paper_out``, ``head_open``, ``paused``, ``buffer_full``, switchable at
any time), and each complete ``^XA … ^XZ`` format is parsed and kept in ``labels`` for
inspection, together with the reasons it could not have printed at the time (a real
printer buffers a label it receives while out of paper; a correct driver never sends
one then). Faults for the tests: ``status_answers_left`` (answer that many more ``~HS``
and then fall silent; ``None``, the default, always answers) and
``cut_after_label_bytes`` (the cable is pulled part-way through a label).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from devices.zpl import ETX, STX, PrinterStatus, ZplError, field_data

logger = logging.getLogger(__name__)

_HOST_STATUS = re.compile(rb"~HS", re.I)
_FORMAT_START = re.compile(rb"\^XA", re.I)
_FORMAT_END = re.compile(rb"\^XZ", re.I)


def format_host_status(status: PrinterStatus) -> bytes:
    """The ``~HS`` answer a printer in ``status`` sends: three ``<STX>…<ETX><CR><LF>`` strings."""
    first = (f"030,{int(status.paper_out)},{int(status.paused)},1218,"
             f"{status.formats_in_buffer:03d},{int(status.buffer_full)},0,0,000,0,0,"
             f"{int(status.over_temperature)}")
    second = (f"000,0,{int(status.head_open)},{int(status.ribbon_out)},"
              f"{int(status.thermal_transfer)},2,6,0,00000000,1,000")
    return b"".join(STX + text.encode("ascii") + ETX + b"\r\n" for text in (first, second, "1234,0"))


@dataclass(frozen=True, slots=True)
class ReceivedLabel:
    """One format the simulator received.

    Attributes:
        zpl: the format as sent, ``^XA`` to ``^XZ``.
        fields: its ``^FD`` data, ``^FH`` escapes decoded (``None`` if undecodable).
        blocked_by: the reasons the printer could not print when it arrived (empty: it printed).
    """

    zpl: str
    fields: tuple[str, ...] | None
    blocked_by: tuple[str, ...]


class PrinterSimulator:
    """The simulated printer's state. Flip the flags from the test; ``port`` once serving."""

    def __init__(self, name: str = "sim-printer") -> None:
        self.name = name
        self.paper_out = False
        self.head_open = False
        self.paused = False
        self.buffer_full = False
        self.status_answers_left: int | None = None
        self.cut_after_label_bytes: int | None = None
        self.labels: list[ReceivedLabel] = []
        self.status_requests = 0
        self.connections = 0
        self.cut_connections = 0
        self.port = 0

    def __repr__(self) -> str:
        return f"PrinterSimulator({self.name!r}, port={self.port}, labels={len(self.labels)})"

    def status(self) -> PrinterStatus:
        """The flags as ``~HS`` reports them now."""
        return PrinterStatus(paper_out=self.paper_out, paused=self.paused, formats_in_buffer=0,
                             buffer_full=self.buffer_full, head_open=self.head_open,
                             ribbon_out=False, thermal_transfer=False)

    def printed(self) -> list[ReceivedLabel]:
        """Labels received while the printer could print them."""
        return [label for label in self.labels if not label.blocked_by]

    def _take_label(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        try:
            fields: tuple[str, ...] | None = tuple(field_data(text))
        except ZplError:
            fields = None
        self.labels.append(ReceivedLabel(text, fields, self.status().reasons))

    def _process(self, buffer: bytes) -> tuple[list[bytes], bytes, bool]:
        """Consume what ``buffer`` completes: (answers to send, rest, cut the cable?)."""
        answers: list[bytes] = []
        while True:
            status_at = _HOST_STATUS.search(buffer)
            start = _FORMAT_START.search(buffer)
            if status_at and (start is None or status_at.start() < start.start()):
                self.status_requests += 1
                if self.status_answers_left is None or self.status_answers_left > 0:
                    answers.append(format_host_status(self.status()))
                    if self.status_answers_left is not None:
                        self.status_answers_left -= 1
                buffer = buffer[status_at.end():]
                continue
            if start is None:
                return answers, buffer[-2:], False
            end = _FORMAT_END.search(buffer, start.end())
            limit = self.cut_after_label_bytes
            if limit is not None and len(buffer) - start.start() > limit and (
                    end is None or end.end() - start.start() > limit):
                return answers, b"", True
            if end is None:
                return answers, buffer[start.start():], False
            self._take_label(buffer[start.start():end.end()])
            buffer = buffer[end.end():]

    async def handle_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one connection (TCP, or a pty for a serial printer) until it closes."""
        self.connections += 1
        buffer = b""
        async with stream:
            try:
                while chunk := await stream.receive_some(65536):
                    answers, buffer, cut = self._process(buffer + chunk)
                    for answer in answers:
                        await stream.send_all(answer)
                    if cut:
                        self.cut_connections += 1
                        return
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0, *,
                        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on ``host:port`` (0: any free port) and serve until cancelled.

        ``task_status.started`` reports the port, also kept in ``self.port``.
        """
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self.handle_stream, listeners)


@asynccontextmanager
async def open_printer_simulator(name: str = "sim-printer") -> AsyncIterator[PrinterSimulator]:
    """A simulator serving on 127.0.0.1 for the duration of the ``async with``."""
    simulator = PrinterSimulator(name)
    async with trio.open_nursery() as nursery:
        await nursery.start(simulator.serve_tcp)
        yield simulator
        nursery.cancel_scope.cancel()


__all__ = ["PrinterSimulator", "ReceivedLabel", "format_host_status", "open_printer_simulator"]
