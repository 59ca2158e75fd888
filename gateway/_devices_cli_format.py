"""What ``gateway devices`` prints, the pure part: values in, lines out (no I/O, no clock).

``format_scan`` is the one line ``gateway devices monitor`` prints per read; ``configured_devices``
the stations' devices as the daemon names them, and ``format_listing`` the text form of
``gateway devices list``'s report (its ``--json`` form is the report itself);
``printer_advice`` and ``clock_warning`` turn what a printer or an NVR said into what the
installer should do about it. ``_devices_cli`` does the I/O around them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devices.scan import Scan
    from gateway._settings import Settings

#: An NVR clock further off than this gets a warning (the gateway still corrects for it).
CLOCK_WARN_S = 5.0
#: Where a newcomer learns how to configure a station.
STATIONS_REFERENCE = "the [stations.NAME] reference in the docstring of gateway/_settings/stations.py"

_CONTROL_NAMES = {"\x1d": "<GS>", "\x1e": "<RS>", "\x04": "<EOT>", "\t": "<TAB>", "\r": "<CR>", "\n": "<LF>"}

_PRINTER_ADVICE = {
    "paper out": "load paper (labels) and try again",
    "print head open": "close the print head and try again",
    "ribbon out": "load a ribbon and try again",
    "paused": "press PAUSE on the printer to resume, then try again",
    "buffer full": "wait for the printer to finish its queue (or power-cycle it), then try again",
    "print head too hot": "let the print head cool down, then try again",
    "printer not reachable": "check that the printer is on and connected, and its host/port (or path) in "
                             "[stations.NAME.printer]",
}


def visible(text: str) -> str:
    """``text`` with control characters shown by name (GS as ``<GS>``), safe for a terminal."""
    return "".join(_CONTROL_NAMES.get(char) or (char if char.isprintable() else f"<x{ord(char):02X}>")
                   for char in text)


def clock_of(epoch_s: float) -> str:
    """``HH:MM:SS.mmm`` of an epoch time, in local time."""
    return datetime.fromtimestamp(epoch_s).strftime("%H:%M:%S.%f")[:-3]


def format_scan(scan: Scan) -> str:
    """One line for one read: time, scanner, symbology, text, then GTIN and GS1 elements, or the error.

    Example: ``10:02:03.120  tcp:127.0.0.1:5000  GS1-128 ]C1  0109501101020917<GS>10LOT-42
    GTIN 09501101020917  01=09501101020917 10=LOT-42``.
    """
    symbology = f"{scan.symbology_name} {scan.symbology}" if scan.symbology else "no AIM id"
    parts = [clock_of(scan.received_at_ms / 1000), scan.device_id, symbology, visible(scan.text) or '""']
    if scan.error:
        parts.append(f"ERROR: {scan.error} (raw {scan.raw!r})")
        return "  ".join(parts)
    if scan.gtin:
        parts.append(f"GTIN {scan.gtin}")
    if scan.sscc:
        parts.append(f"SSCC {scan.sscc}")
    if scan.gs1:
        parts.append(" ".join(f"{ai}={visible(value)}" for ai, value in scan.gs1))
    return "  ".join(parts)


def printer_advice(reason: str) -> str:
    """What to do about a refused or uncertain test label, from the driver's reason."""
    advice = [_PRINTER_ADVICE[part] for part in reason.split(", ") if part in _PRINTER_ADVICE]
    if advice:
        return "; ".join(advice)
    if reason.startswith("printer status unavailable"):
        return ("the printer does not answer ~HS: is it a ZPL printer, on its raw port (9100), and not "
                "busy with another client?")
    if reason.startswith("label is not valid ZPL"):
        return "a bug in the test label: please report it"
    return "look at the printer: the label may or may not have come out; check its cable or network, then try again"


def clock_warning(offset_s: float) -> str | None:
    """The warning for an NVR clock ``offset_s`` off ours, or ``None`` within ``CLOCK_WARN_S``."""
    if abs(offset_s) <= CLOCK_WARN_S:
        return None
    way = "ahead" if offset_s > 0 else "behind"
    return (f"the NVR's clock is {abs(offset_s):.0f} s off ({way}): set NTP on it; the gateway corrects "
            "searches by the offset meanwhile")


def configured_devices(settings: Settings) -> list[dict[str, Any]]:
    """Every configured device named as the daemon's registry names it (``GET /api/v1/devices``).

    Each is ``{station, kind, type, device, path, present, live}``; ``path`` is the device
    node to look for ("" for TCP devices and NVRs), ``present`` and ``live`` are ``None``
    until the caller looks.
    """
    devices: list[dict[str, Any]] = []

    def add(station: str, kind: str, kind_detail: str, device: str, path: str = "") -> None:
        devices.append({"station": station, "kind": kind, "type": kind_detail, "device": device, "path": path,
                        "present": None, "live": None})

    for name, station in settings.stations.items():
        for scanner in station.scanners:
            path = scanner.path if scanner.kind in ("serial", "hid") else ""
            # a keyboard wedge decodes only with the layout it is set up for: show which one
            kind = f"hid/{scanner.layout}{'+keys' if scanner.keys else ''}" if scanner.kind == "hid" else scanner.kind
            add(name, "scanner", kind, scanner.device_id, path)
        if station.printer is not None:
            add(name, "printer", station.printer.kind, station.printer.device_id,
                station.printer.path if station.printer.kind == "serial" else "")
        if station.scale is not None:
            add(name, "scale", station.scale.protocol, station.scale.path, station.scale.path)
        if station.nvr:
            add(name, "nvr", "isapi", f"{station.nvr} channel {station.nvr_channel}")
    return devices


def attach_live(devices: list[dict[str, Any]], live: list[dict[str, Any]]) -> None:
    """Set each configured device's ``live`` to its report from ``GET /api/v1/devices``.

    Matched by (station, device); a device the daemon names differently is matched by
    (station, kind) when the station has just one of that kind on both sides (its printer,
    its scale, its NVR channel).
    """
    by_name = {(d["station"], d["device"]): d for d in live}
    by_kind: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for report in live:
        by_kind.setdefault((report["station"], report["kind"]), []).append(report)
    configured = [(d["station"], d["kind"]) for d in devices]
    for device in devices:
        key = (device["station"], device["kind"])
        single = by_kind.get(key, []) if configured.count(key) == 1 else []
        device["live"] = by_name.get((device["station"], device["device"])) or (single[0] if len(single) == 1 else None)


def _live(live: dict[str, Any]) -> str:
    text = f"{live['state']} since {clock_of(live['since'])[:8]}, {live['events']} events"
    if live["reconnects"]:
        text += f", {live['reconnects']} reconnects"
    if live["state"] != "up" and live["last_error"]:
        text += f": {live['last_error']}"
    return text + (f" [{live['detail']}]" if live["detail"] else "")


def _device_line(device: dict[str, Any], running: bool) -> str:
    line = f"  {device['station']:<8} {device['kind']:<8} {device['type']:<11} {device['device']}"
    if device["live"] is not None:
        return f"{line}  {_live(device['live'])}"
    if running:
        return f"{line}  not known to the running gateway (its config differs: restart it)"
    if device["present"] is not None:
        return f"{line}  {'present' if device['present'] else 'missing (not plugged in?)'}"
    return line


def _link_lines(title: str, links: list[dict[str, Any]]) -> list[str]:
    lines = [title]
    for link in links:
        line = f"  {link['link']} -> {link['target']}"
        if link.get("name"):
            line += f"  {link['name']!r}" if not link["name"].startswith("(") else f"  {link['name']}"
        if link["configured"]:
            line += f"  [{link['configured']}]"
        lines.append(line)
    return lines if links else [*lines, "  none found"]


def format_listing(report: dict[str, Any]) -> str:
    """The text form of ``gateway devices list``'s report."""
    lines = _link_lines(f"serial ports ({report['serial_dir']}):", report["serial"])
    lines += _link_lines(f"input devices that look like scanners ({report['input_dir']}/*-event-kbd):",
                         report["input"])
    gateway = report["gateway"]
    state = f"gateway running at {gateway['api']}" if gateway["running"] else gateway["note"]
    lines.append(f"configured devices ({state}):")
    if not report["stations"]:
        lines.append(f"  no stations configured: add [stations.NAME] to {report['config']} (see "
                     f"{STATIONS_REFERENCE})")
    lines += [_device_line(device, gateway["running"]) for device in report["stations"]]
    return "\n".join(lines)


__all__ = ["CLOCK_WARN_S", "STATIONS_REFERENCE", "attach_live", "clock_of", "clock_warning", "configured_devices",
           "format_listing", "format_scan", "printer_advice", "visible"]
