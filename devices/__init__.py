"""Pack-station device drivers and their simulators: bytes and barcodes, never orders.

In: the devices themselves — serial ports, keyboard-wedge input devices, TCP sockets, an
NVR's HTTP API. Out: ``Scan`` values into a bounded trio channel (scanners), a
``PrintResult`` per label (printers), clips, snapshots and downloads (the NVR), ``Weight``
values (scales); ``DeviceUnavailableError`` when a device goes away, so the supervisor
(``devices.supervisor``) reopens it with backoff.

Parts, by device:

* scanners: ``scan`` (the ``Scan`` value), ``framing`` and ``aim_gs1`` (bytes -> frames ->
  decoded scans, GS1 by biip; pure), ``hid`` (key events -> text; pure), ``scan_reader``
  (the read loop every scanner shares), ``serial_scanner``, ``hid_scanner``,
  ``tcp_scanner``;
* printers: ``zpl`` (labels, ZPL checks, ``~HS``; pure), ``printer``;
* NVR: ``isapi`` (XML in and out, clips; pure), ``nvr``;
* scales: ``scale``;
* shared: ``serial_port`` (pyserial opens, trio does the I/O), ``reopen`` and ``supervisor``
  (reconnects, state);
* ``simulators/``: each device's simulator speaking its real protocol, for tests and the demo.

``devices`` never imports the gateway's store, pipeline, server, rules, ingest or forwarding
(import-linter checks it); it uses only the gateway's foundation (errors, backoff).
"""

from devices.aim_gs1 import decode_scan
from devices.framing import Frame, FrameEnd, Framer, FramingConfig
from devices.hid import US_LAYOUT, KeyDecoder, KeyLayout
from devices.hid_scanner import serve_hid_scanner
from devices.isapi import Clip, ClipSegment, IsapiError, Recording
from devices.nvr import DownloadResult, NvrClient
from devices.printer import PrintResult, ZplPrinter
from devices.reopen import run_with_reopen
from devices.scale import (
    PLAIN_FRAME,
    STATE_GROSS_FRAME,
    FrameFormat,
    ScaleFrameError,
    SerialScale,
    SicsReply,
    StableWeightDetector,
    Weight,
    parse_sics_reply,
)
from devices.scan import Scan
from devices.scan_reader import ScanAssembler, read_scans
from devices.serial_port import open_serial_port, open_serial_stream
from devices.serial_scanner import serve_serial_scanner
from devices.supervisor import DeviceRegistry, DeviceState, supervise
from devices.tcp_scanner import serve_tcp_scanner_client, serve_tcp_scanner_server
from devices.zpl import (
    HostStatusError,
    LabelData,
    PrinterStatus,
    ZplError,
    check_zpl,
    parse_host_status,
    render_label,
)

__all__ = [
    "PLAIN_FRAME",
    "STATE_GROSS_FRAME",
    "US_LAYOUT",
    "Clip",
    "ClipSegment",
    "DeviceRegistry",
    "DeviceState",
    "DownloadResult",
    "Frame",
    "FrameEnd",
    "FrameFormat",
    "Framer",
    "FramingConfig",
    "HostStatusError",
    "IsapiError",
    "KeyDecoder",
    "KeyLayout",
    "LabelData",
    "NvrClient",
    "PrintResult",
    "PrinterStatus",
    "Recording",
    "ScaleFrameError",
    "Scan",
    "ScanAssembler",
    "SerialScale",
    "SicsReply",
    "StableWeightDetector",
    "Weight",
    "ZplError",
    "ZplPrinter",
    "check_zpl",
    "decode_scan",
    "open_serial_port",
    "open_serial_stream",
    "parse_host_status",
    "parse_sics_reply",
    "read_scans",
    "render_label",
    "run_with_reopen",
    "serve_hid_scanner",
    "serve_serial_scanner",
    "serve_tcp_scanner_client",
    "serve_tcp_scanner_server",
    "supervise",
]
