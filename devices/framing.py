"""Scanner framing: a byte stream in, complete frames out (pure, no I/O).

A scanner sends each read as bytes followed by a terminator (CR, LF, CR LF, TAB), or with
no terminator at all, in which case a read ends when the line goes quiet for
``idle_gap_s``. The ``Framer`` cuts a stream into ``Frame`` values however the bytes were
chunked by the serial port, the TCP stack or the key-event decoder, and never loses a
byte: a read that is cut short (no terminator before the device vanished or went quiet
for ``partial_timeout_s``, or longer than ``max_frame_bytes``) still comes out, marked
with how it ended, so ``decode_scan`` can turn it into a ``Scan`` with an error.

Time is passed in (``now``, seconds on any monotonic clock: the drivers use
``trio.current_time()``), so tests drive the idle gap without sleeping.

``FramingConfig`` also holds the per-device settings of the decode step (prefix, suffix,
AIM identifiers, FNC1 substitute, encoding): one object says how one scanner talks.
"""

from __future__ import annotations

import codecs
import math
from dataclasses import dataclass
from enum import Enum
from typing import Literal

Terminator = Literal["cr", "lf", "crlf", "tab", "none"]

TERMINATOR_BYTES: dict[str, bytes] = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "tab": b"\t", "none": b""}


@dataclass(frozen=True, slots=True)
class FramingConfig:
    """How one scanner frames and encodes its reads; every field has a working default.

    Attributes:
        terminator: ``"cr"`` (most scanners' default; a keyboard wedge's Enter),
            ``"lf"``, ``"crlf"``, ``"tab"``, or ``"none"``: a read ends after
            ``idle_gap_s`` without bytes.
        idle_gap_s: with ``terminator="none"``, the quiet time that ends a read.
        partial_timeout_s: with a terminator, bytes that wait this long without one are
            given up as a partial read (a ``Scan`` with an error), never kept forever.
        max_frame_bytes: a longer run of bytes without a terminator is cut into frames of
            this size, each marked as overflow.
        prefix / suffix: bytes the scanner is configured to add around each read
            (``b"\\x02"`` STX, a station tag); removed, and their absence is an error.
        aim_identifiers: the scanner transmits AIM symbology identifiers (``]C1``...);
            when false a leading ``]`` is ordinary data.
        fnc1_substitute: the text a scanner sends for FNC1/GS when it cannot send GS
            (keyboard wedges: often ``"|"``, ``"~"`` or ``"<GS>"``); replaced by GS.
        gs1_without_aim: read codes without an AIM identifier as GS1 element strings
            (for scanners with AIM transmission off that read only GS1 codes). A code
            whose data starts with GS (a transmitted leading FNC1) is GS1 regardless.
        encoding: the scanner's character encoding (``"utf-8"``, ``"latin-1"``, ...).
    """

    terminator: Terminator = "cr"
    idle_gap_s: float = 0.05
    partial_timeout_s: float = 2.0
    max_frame_bytes: int = 4096
    prefix: bytes = b""
    suffix: bytes = b""
    aim_identifiers: bool = True
    fnc1_substitute: str | None = None
    gs1_without_aim: bool = False
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if self.terminator not in TERMINATOR_BYTES:
            raise ValueError(f"terminator must be one of {sorted(TERMINATOR_BYTES)}, not {self.terminator!r}")
        if not (self.idle_gap_s > 0 and self.partial_timeout_s > 0):
            raise ValueError("idle_gap_s and partial_timeout_s must be > 0")
        if self.max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be >= 1")
        if self.fnc1_substitute == "":
            raise ValueError("fnc1_substitute must be None or a non-empty string")
        codecs.lookup(self.encoding)  # LookupError names an unknown encoding now, not at the first read

    @property
    def terminator_bytes(self) -> bytes:
        """The terminator as bytes (``b""`` for ``"none"``)."""
        return TERMINATOR_BYTES[self.terminator]


class FrameEnd(Enum):
    """How a frame ended: only ``TERMINATOR`` and ``IDLE_GAP`` are complete reads."""

    TERMINATOR = "terminator"
    IDLE_GAP = "idle gap"
    OVERFLOW = "overflow"
    TIMEOUT = "timeout"
    DISCONNECT = "disconnect"


@dataclass(frozen=True, slots=True)
class Frame:
    """One read's bytes (terminator removed) and how it ended."""

    data: bytes
    end: FrameEnd = FrameEnd.TERMINATOR

    @property
    def complete(self) -> bool:
        """True when the read ended the way the scanner ends reads."""
        return self.end is FrameEnd.TERMINATOR or self.end is FrameEnd.IDLE_GAP


class Framer:
    """Bytes in, ``Frame`` values out, per a ``FramingConfig``.

    Feed every chunk read from the device with ``feed``; call ``expire`` when
    ``deadline()`` has passed (the drivers wait for bytes until then); call ``close``
    when the device is gone to get what was left. Nothing is ever dropped.
    """

    __slots__ = ("_gap_s", "_last_byte_at", "_max", "_pending", "_terminator")

    def __init__(self, config: FramingConfig) -> None:
        self._terminator = config.terminator_bytes
        self._gap_s = config.idle_gap_s if not self._terminator else config.partial_timeout_s
        self._max = config.max_frame_bytes
        self._pending = b""
        self._last_byte_at = 0.0

    def __repr__(self) -> str:
        return f"Framer(terminator={self._terminator!r}, pending={len(self._pending)} bytes)"

    @property
    def pending(self) -> bytes:
        """Bytes received since the last frame ended."""
        return self._pending

    def deadline(self) -> float:
        """When the pending bytes become a frame by time alone (``math.inf`` if none)."""
        return self._last_byte_at + self._gap_s if self._pending else math.inf

    def feed(self, data: bytes, now: float) -> list[Frame]:
        """Add received bytes; return the frames they complete (often none or one).

        Args:
            data: a chunk as read; it may hold several reads or a part of one.
            now: the current time on the clock ``deadline`` and ``expire`` use.
        """
        if not data:
            return []
        self._last_byte_at = now
        buffer = self._pending + data if self._pending else data
        frames: list[Frame] = []
        if self._terminator:
            *complete, buffer = buffer.split(self._terminator)
            for piece in complete:
                if len(piece) > self._max:
                    self._cut(piece, frames)
                else:
                    frames.append(Frame(piece))
        if len(buffer) > self._max:
            buffer = self._cut(buffer, frames, keep_tail=True)
        self._pending = buffer
        return frames

    def expire(self, now: float) -> list[Frame]:
        """The pending bytes as a frame if ``deadline()`` has passed, else nothing.

        With ``terminator="none"`` that frame is a complete read (``IDLE_GAP``);
        otherwise it is a partial one (``TIMEOUT``).
        """
        if not self._pending or now < self.deadline():
            return []
        end = FrameEnd.TIMEOUT if self._terminator else FrameEnd.IDLE_GAP
        frame = Frame(self._pending, end)
        self._pending = b""
        return [frame]

    def close(self) -> list[Frame]:
        """The device is gone: what was pending, as a ``DISCONNECT`` frame (or nothing)."""
        if not self._pending:
            return []
        frame = Frame(self._pending, FrameEnd.DISCONNECT)
        self._pending = b""
        return [frame]

    def _cut(self, data: bytes, frames: list[Frame], keep_tail: bool = False) -> bytes:
        """Append ``data`` as ``OVERFLOW`` frames of ``max_frame_bytes``; maybe keep the tail."""
        size = self._max
        stop = len(data) - len(data) % size if not keep_tail else (len(data) - 1) // size * size
        for start in range(0, stop, size):
            frames.append(Frame(data[start:start + size], FrameEnd.OVERFLOW))
        tail = data[stop:]
        if tail and not keep_tail:
            frames.append(Frame(tail, FrameEnd.OVERFLOW))
            return b""
        return tail


__all__ = ["TERMINATOR_BYTES", "Frame", "FrameEnd", "Framer", "FramingConfig", "Terminator"]
