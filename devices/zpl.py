"""ZPL II, the pure part: render a shipping label, check ERP-supplied ZPL, read ``~HS``.

Nothing here touches a socket; ``devices.printer`` does the I/O. Three jobs:

* ``render_label(LabelData)`` turns plain values (order id, pack group, station, time,
  waybill) into one ``^XA … ^XZ`` format with a Code 128 (``^BC``) and a QR code
  (``^BQ``) of the waybill, or of the order id when there is no waybill yet.
* ``check_zpl(text)`` accepts ZPL the ERP supplied for an order only when it is one or
  more well-formed ``^XA … ^XZ`` formats and nothing else.
* ``parse_host_status(raw)`` reads the three ``<STX>…<ETX><CR><LF>`` strings a printer
  answers to ``~HS`` into a ``PrinterStatus`` whose ``reasons`` a station can show.

Field data is never pasted into the format as it is: a ``^`` or ``~`` in an order id
would start a ZPL command (``~JR`` resets the printer). Every field is written under
``^FH`` with anything outside plain printable ASCII, and ``^``, ``~``, ``_``,
hex-escaped (``_5E``), in UTF-8 (``^CI28``). Barcode values are further limited to what
Code 128 can carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

STX = b"\x02"
ETX = b"\x03"

# A 4 x 6 inch label at 203 dpi, the common parcel label size.
LABEL_WIDTH_DOTS = 812
LABEL_LENGTH_DOTS = 1218
MAX_BARCODE_CHARS = 80
MAX_SUPPLIED_ZPL_BYTES = 2 * 1024 * 1024

_COMMAND = re.compile(r"([\^~])([^\^~]{0,2})")
_SAFE = frozenset(chr(code) for code in range(0x20, 0x7F)) - {"^", "~", "_"}
# ^CC / ^CT / ^CD change the command prefix and delimiter: after one of them nobody but
# the printer can say where a command starts, so supplied ZPL may not use them.
_PREFIX_CHANGES = frozenset({"CC", "CT", "CD"})


class ZplError(ValueError):
    """A label cannot be rendered, or supplied ZPL is not what we can safely print.

    The message names the problem in words a station operator can pass on
    ("the ERP's label has ^XA without ^XZ").
    """


@dataclass(frozen=True, slots=True)
class LabelData:
    """What a parcel label shows. Plain values: the driver knows labels, not orders.

    Args:
        order_id: the order (shown, and the barcode value when there is no waybill).
        pack_group: the pack group the parcel belongs to.
        station: the pack station's name.
        printed_at: when the label is printed; shown in its own time zone.
        waybill: the carrier's waybill number, when one is assigned.
    """

    order_id: str
    pack_group: str
    station: str
    printed_at: datetime
    waybill: str | None = None

    @property
    def barcode_value(self) -> str:
        """The waybill when there is one, else the order id."""
        return self.waybill or self.order_id


def escape_field(text: str) -> str:
    """``text`` as ``^FH`` field data: only safe printable ASCII stays literal.

    ``^``, ``~``, ``_`` (the ``^FH`` indicator itself), control characters and every
    non-ASCII character become ``_XX`` hex escapes of their UTF-8 bytes, so no field
    data can start or end a command.
    """
    out: list[str] = []
    for char in text:
        if char in _SAFE:
            out.append(char)
        else:
            out.extend(f"_{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def unescape_field(data: str, indicator: str = "_") -> str:
    """The inverse of ``escape_field``: decode ``_XX`` hex escapes (UTF-8).

    Raises:
        ZplError: a malformed escape or bytes that are not UTF-8.
    """
    raw = bytearray()
    index = 0
    while index < len(data):
        char = data[index]
        if char == indicator:
            pair = data[index + 1:index + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                raise ZplError(f"bad ^FH escape {data[index:index + 3]!r}")
            raw.append(int(pair, 16))
            index += 3
        else:
            raw.extend(char.encode("utf-8"))
            index += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ZplError("field data is not UTF-8 after ^FH decoding") from exc


def _barcode_data(value: str) -> str:
    if not value:
        raise ZplError("the barcode value is empty")
    if len(value) > MAX_BARCODE_CHARS:
        raise ZplError(f"the barcode value is longer than {MAX_BARCODE_CHARS} characters")
    if any(not 0x20 <= ord(char) < 0x7F for char in value):
        raise ZplError(f"the barcode value {value!r} has characters Code 128 cannot carry")
    return value


def _text(x: int, y: int, size: int, text: str) -> str:
    return f"^FO{x},{y}^A0N,{size},{size}^FH^FD{escape_field(text)}^FS"


def render_label(label: LabelData) -> str:
    """The ZPL for one parcel label: one ``^XA … ^XZ`` format, UTF-8 text.

    Args:
        label: what to show.

    Returns:
        The format as text; send it encoded as UTF-8.

    Raises:
        ZplError: the barcode value is empty, too long or not printable ASCII.
    """
    if not label.order_id:
        raise ZplError("the order id is empty")
    code = _barcode_data(label.barcode_value)
    # In ^BC's default mode ">" starts a subset/function code; "><" is a literal ">".
    code128 = escape_field(code.replace(">", "><"))
    printed = label.printed_at.strftime("%Y-%m-%d %H:%M")
    lines = [
        "^XA",
        "^CI28",
        f"^PW{LABEL_WIDTH_DOTS}",
        f"^LL{LABEL_LENGTH_DOTS}",
        _text(40, 40, 44, f"Order {label.order_id}"),
        _text(40, 100, 30, f"Pack group {label.pack_group}"),
        _text(40, 145, 30, f"Station {label.station}  {printed}"),
    ]
    if label.waybill:
        lines.append(_text(40, 190, 30, f"Waybill {label.waybill}"))
    lines += [
        f"^FO40,250^BY3^BCN,160,Y,N,N^FH^FD{code128}^FS",
        f"^FO40,500^BQN,2,8^FH^FDQA,{escape_field(code)}^FS",
        "^XZ",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class ZplCommand:
    """One command of a format: ``prefix`` ``^``/``~``, two-letter ``name``, raw ``params``."""

    prefix: str
    name: str
    params: str


def tokenize(text: str) -> list[ZplCommand]:
    """Split ZPL into its commands. Text before the first prefix is dropped.

    A command's parameters run to the next ``^`` or ``~``, which is how the printer
    reads them too (that is why field data must be escaped).
    """
    commands: list[ZplCommand] = []
    starts = [match.start() for match in re.finditer(r"[\^~]", text)]
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(text)
        body = text[start + 1:end]
        commands.append(ZplCommand(text[start], body[:2].upper(), body[2:]))
    return commands


def check_zpl(text: str, *, max_bytes: int = MAX_SUPPLIED_ZPL_BYTES) -> list[str]:
    """Accept ZPL supplied by the ERP only when it is one or more well-formed formats.

    Well-formed means: only whitespace outside ``^XA … ^XZ``; every ``^XA`` closed by a
    ``^XZ`` before the next ``^XA``; no tilde (``~``) commands, which act on the printer
    at once wherever they appear; no ``^CC``/``^CT``/``^CD`` prefix changes.

    Args:
        text: the ZPL as received.
        max_bytes: refuse anything larger (UTF-8 bytes).

    Returns:
        The formats, each ``^XA … ^XZ``.

    Raises:
        ZplError: saying what is wrong.
    """
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ZplError(f"the label is larger than {max_bytes} bytes")
    formats: list[str] = []
    open_at: int | None = None
    last_end = 0
    for match in _COMMAND.finditer(text):
        prefix, name = match.group(1), match.group(2).upper()
        if prefix == "~":
            raise ZplError(f"the label has a control command ~{name}, which would act on the printer")
        if name in _PREFIX_CHANGES:
            raise ZplError(f"the label changes the command prefix (^{name})")
        if name == "XA":
            if open_at is not None:
                raise ZplError("the label has ^XA inside a format (a ^XZ is missing)")
            if text[last_end:match.start()].strip():
                raise ZplError("the label has text outside ^XA … ^XZ")
            open_at = match.start()
        elif open_at is None:
            raise ZplError(f"the label has ^{name} outside ^XA … ^XZ")
        elif name == "XZ":
            formats.append(text[open_at:match.end()])
            open_at, last_end = None, match.end()
    if open_at is not None:
        raise ZplError("the label has ^XA without ^XZ")
    if text[last_end:].strip():
        raise ZplError("the label has text outside ^XA … ^XZ")
    if not formats:
        raise ZplError("the label has no ^XA … ^XZ format")
    return formats


def field_data(format_text: str) -> list[str]:
    """Every ``^FD`` field of a format, decoded (``^FH`` escapes applied where set).

    Used by the printer simulator and the tests to read back what a label says.
    """
    fields: list[str] = []
    hex_indicator: str | None = None
    for command in tokenize(format_text):
        if command.prefix != "^":
            continue
        if command.name == "FH":
            hex_indicator = command.params[:1] or "_"
        elif command.name == "FD":
            data = command.params
            fields.append(unescape_field(data, hex_indicator) if hex_indicator else data)
        elif command.name == "FS":
            hex_indicator = None
    return fields


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """A printer's answer to ``~HS``, the flags that decide whether a job may go.

    Attributes:
        paper_out: out of labels (string 1, field 2).
        paused: paused by the operator or an error (string 1, field 3).
        formats_in_buffer: formats received but not yet printed (string 1, field 5).
        buffer_full: the receive buffer is full (string 1, field 6).
        head_open: the print head is up (string 2, field 3).
        ribbon_out: out of ribbon (string 2, field 4); only matters in thermal transfer.
        thermal_transfer: the printer uses a ribbon (string 2, field 5).
        over_temperature: the head is too hot to print (string 1, field 12).
    """

    paper_out: bool
    paused: bool
    formats_in_buffer: int
    buffer_full: bool
    head_open: bool
    ribbon_out: bool
    thermal_transfer: bool
    over_temperature: bool = False

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the printer cannot take a job now, in words for the station; empty when ready."""
        reasons = []
        if self.paper_out:
            reasons.append("paper out")
        if self.head_open:
            reasons.append("print head open")
        if self.ribbon_out and self.thermal_transfer:
            reasons.append("ribbon out")
        if self.paused:
            reasons.append("paused")
        if self.buffer_full:
            reasons.append("buffer full")
        if self.over_temperature:
            reasons.append("print head too hot")
        return tuple(reasons)

    @property
    def ready(self) -> bool:
        """True when nothing stands in the way of a job."""
        return not self.reasons


class HostStatusError(ValueError):
    """A ``~HS`` answer that is not three well-formed status strings."""


def _flag(fields: list[str], index: int, which: str) -> bool:
    try:
        value = fields[index].strip()
    except IndexError:
        raise HostStatusError(f"~HS {which} has no field {index + 1}") from None
    if value not in ("0", "1"):
        raise HostStatusError(f"~HS {which} field {index + 1} is {value!r}, not a 0/1 flag")
    return value == "1"


def _number(fields: list[str], index: int, which: str) -> int:
    try:
        value = fields[index].strip()
    except IndexError:
        raise HostStatusError(f"~HS {which} has no field {index + 1}") from None
    if not value.isdigit():
        raise HostStatusError(f"~HS {which} field {index + 1} is {value!r}, not a number")
    return int(value)


def split_host_status(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete ``<STX>…<ETX>`` strings at the start of ``buffer``, and what is left.

    CR/LF and other bytes between strings are skipped. The rest holds a partial string
    (or nothing); feed it again with more bytes.
    """
    strings: list[bytes] = []
    while True:
        start = buffer.find(STX)
        if start < 0:
            return strings, b""
        end = buffer.find(ETX, start + 1)
        if end < 0:
            return strings, buffer[start:]
        strings.append(buffer[start + 1:end])
        buffer = buffer[end + 1:]


def parse_host_status(raw: bytes) -> PrinterStatus:
    """Read a ``~HS`` answer: three ``<STX>…<ETX><CR><LF>`` strings.

    String 1 is ``aaa,b,c,dddd,eee,f,g,h,iii,j,k,l`` (b paper out, c paused, eee formats
    in buffer, f buffer full, l over temperature); string 2 is ``mmm,n,o,p,q,…`` (o head
    open, p ribbon out, q thermal transfer); string 3 (``xxxx,y``) is not used.

    Raises:
        HostStatusError: fewer than three strings, or a field that is missing or not a
            flag/number. Garbage never raises anything else.
    """
    strings, _rest = split_host_status(raw)
    if len(strings) < 3:
        raise HostStatusError(f"~HS answer has {len(strings)} of 3 status strings")
    try:
        first = strings[0].decode("ascii").split(",")
        second = strings[1].decode("ascii").split(",")
    except UnicodeDecodeError as exc:
        raise HostStatusError("~HS answer is not ASCII") from exc
    return PrinterStatus(
        paper_out=_flag(first, 1, "string 1"),
        paused=_flag(first, 2, "string 1"),
        formats_in_buffer=_number(first, 4, "string 1"),
        buffer_full=_flag(first, 5, "string 1"),
        over_temperature=len(first) > 11 and _flag(first, 11, "string 1"),
        head_open=_flag(second, 2, "string 2"),
        ribbon_out=_flag(second, 3, "string 2"),
        thermal_transfer=_flag(second, 4, "string 2"),
    )


__all__ = [
    "HostStatusError",
    "LabelData",
    "PrinterStatus",
    "ZplCommand",
    "ZplError",
    "check_zpl",
    "escape_field",
    "field_data",
    "parse_host_status",
    "render_label",
    "split_host_status",
    "tokenize",
    "unescape_field",
]
