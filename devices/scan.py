"""``Scan``: the one value every scanner driver yields, whatever the wire.

A serial, keyboard-wedge (HID) or TCP scanner each end in the same place: a ``Scan`` sent
into a bounded ``trio.MemorySendChannel[Scan]``. It carries what was received (``raw``),
what it means (``text``, ``symbology``, the GS1 element strings) and, when something is
wrong with it, why (``error``). A malformed or partial code is still a ``Scan``: the pack
station decides what to tell the operator; a driver never drops a read silently.

Data flow of one read::

    bytes on the wire ──Framer──> Frame ──decode_scan──> Scan ──> channel
    (devices.framing)                    (devices.aim_gs1)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from biip.gs1_messages import GS1Message

#: AIM symbology identifiers whose data is a GS1 message (element strings).
GS1_MESSAGE_SYMBOLOGIES = frozenset({"]C1", "]e0", "]d2", "]Q3", "]J1"})
#: AIM symbology identifiers whose data is a GTIN (EAN/UPC family, ITF-14).
GTIN_SYMBOLOGIES = frozenset({"]E0", "]E3", "]E4", "]I1"})

_SYMBOLOGY_NAMES = {
    "]A": "Code 39", "]C": "Code 128", "]E": "EAN/UPC", "]F": "Codabar", "]G": "Code 93",
    "]I": "ITF", "]L": "PDF417", "]Q": "QR Code", "]d": "Data Matrix", "]e": "GS1 DataBar",
    "]z": "Aztec", "]J": "DotCode", "]X": "other", "]Z": "non-barcode",
}
_GS1_NAMES = {
    "]C1": "GS1-128", "]e0": "GS1 DataBar", "]d2": "GS1 DataMatrix", "]Q3": "GS1 QR Code",
    "]J1": "GS1 DotCode", "]E0": "EAN-13/UPC-A/UPC-E", "]E3": "EAN-13 with add-on",
    "]E4": "EAN-8", "]I1": "ITF-14",
}


@dataclass(frozen=True, slots=True)
class Scan:
    """One barcode read, decoded as far as it could be.

    Attributes:
        station: the pack station the scanner belongs to (from config).
        device_id: the scanner's stable identity: its configured path (a
            ``/dev/serial/by-id/...`` or ``/dev/input/by-id/...`` symlink survives
            re-plugging), ``tcp:HOST:PORT``, or a configured name.
        raw: the frame's bytes as received, without the terminator (prefix, suffix and
            AIM identifier still in place): what to log when a code is disputed.
        text: the decoded data: prefix, suffix and AIM identifier removed, an FNC1
            substitute replaced by GS (``"\\x1d"``).
        symbology: the AIM identifier (``"]C1"``, ``"]E0"``, ...) or ``None`` when the
            scanner sent none (or a malformed one, see ``error``).
        gs1: the GS1 element strings as ``(ai, value)`` pairs, in scan order; empty when
            the code is not GS1 (or could not be parsed, see ``error``).
        gtin: the GTIN as 14 digits, from an EAN/UPC/ITF-14 code or AI ``01``.
        sscc: the SSCC (18 digits) from AI ``00``.
        expiry: the expiry date from AI ``17`` (a day ``00`` means the month's last day).
        error: why this read is not a clean code (partial frame, bad check digit,
            malformed AIM identifier, bytes that are not text, ...); ``None`` when clean.
        received_at_ms: wall clock (``time.time()``) in epoch milliseconds when the frame
            was complete.
        gs1_message: biip's full interpretation (decimals, weights, every date), for
            what the fields above do not cover; shared between equal codes, read-only.
    """

    station: str
    device_id: str
    raw: bytes
    text: str
    symbology: str | None = None
    gs1: tuple[tuple[str, str], ...] = ()
    gtin: str | None = None
    sscc: str | None = None
    expiry: dt.date | None = None
    error: str | None = None
    received_at_ms: int = 0
    gs1_message: GS1Message | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when the read decoded cleanly (``error is None``)."""
        return self.error is None

    @property
    def is_gs1(self) -> bool:
        """True when the code carries GS1 element strings."""
        return bool(self.gs1)

    @property
    def symbology_name(self) -> str:
        """A human name for ``symbology`` (``"GS1-128"``, ``"Code 128"``), or ``"unknown"``."""
        if self.symbology is None:
            return "unknown"
        return _GS1_NAMES.get(self.symbology) or _SYMBOLOGY_NAMES.get(self.symbology[:2], "unknown")

    def element(self, ai: str) -> str | None:
        """The value of the first element string with application identifier ``ai``.

        ``scan.element("10")`` is the batch/lot, ``scan.element("21")`` the serial number.
        """
        for element_ai, value in self.gs1:
            if element_ai == ai:
                return value
        return None


__all__ = ["GS1_MESSAGE_SYMBOLOGIES", "GTIN_SYMBOLOGIES", "Scan"]
