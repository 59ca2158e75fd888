"""Pack stations and their devices in ``gateway.toml``: ``[stations.NAME]`` and ``[nvrs.NAME]``.

Reference (defaults in brackets)::

    [nvrs.main]                        # a Hikvision NVR (ISAPI), shared by the stations' cameras
    url = "http://192.0.2.64"          # its address; never with user:password in it
    username = "admin"
    password_env = "NVR_PASSWORD"      # or password / password_file (one of the three)
    timeout_s = 5.0                    # per request [5.0]

    [stations.A1]                      # a pack station; NAME: 1-32 of A-Z a-z 0-9 _ -
    nvr = "main"                       # the NVR filming it ("" = none) [""]
    nvr_channel = 1                    # its camera's channel on that NVR [1]

    [[stations.A1.scanners]]           # one or more scanners
    kind = "serial"                    # serial | hid | tcp_client | tcp_server
    path = "/dev/serial/by-id/usb-Honeywell_...-if00"   # serial, hid: the by-id path
    name = ""                          # how the station and the log name it ["" = the path,
                                       # or tcp:HOST:PORT]
    baudrate = 9600                    # serial [9600]
    host = "127.0.0.1"                 # tcp_client: the scanner; tcp_server: where to listen
    port = 0                           # tcp_client / tcp_server
    grab = true                        # hid: exclusive grab, scans never type into a console [true]
    layout = "us"                      # hid: the keyboard layout the scanner types for: us | de | fr
                                       # (German QWERTZ, French AZERTY, with AltGr) ["us"]
    keys = { KEY_Z = ["y", "Y"] }      # hid: keys changed on top of layout: KEY_* name ->
                                       # [character, shifted (, AltGr character)] [{}]
    terminator = "cr"                  # cr | lf | crlf | tab | none (a read ends after idle_gap_s)
    idle_gap_s = 0.05                  # with terminator = "none" [0.05]
    prefix = ""                        # text the scanner adds before / after each read, removed
    suffix = ""                        # (escapes \x02, \t as TOML strings allow) [""]
    aim_identifiers = true             # the scanner sends ]C1, ]E0, ... [true]
    fnc1_substitute = ""               # what a keyboard wedge types for GS ("" = none) [""]
    gs1_without_aim = false            # read AIM-less codes as GS1 element strings [false]
    encoding = "utf-8"                 # serial and TCP scanners ["utf-8"]

    [stations.A1.printer]              # optional: a ZPL label printer
    kind = "tcp"                       # tcp (raw port 9100) | serial
    host = "192.0.2.30"                # tcp
    port = 9100                        # tcp [9100]
    path = ""                          # serial: the by-id path
    baudrate = 9600                    # serial [9600]
    timeout_s = 5.0                    # ~HS answer and the job's send [5.0]

    [stations.A1.scale]                # optional: a serial scale
    path = "/dev/serial/by-id/usb-Mettler_..."
    baudrate = 9600                    # [9600]
    protocol = "sics"                  # sics (S command, MT-SICS) | continuous [sics]
    frame = "state_gross"              # continuous: state_gross ("ST,GS,+  1.234kg") | plain [state_gross]

Every mistake is refused at load with file, line and key, like the rest of the file: an
unknown key or kind, a path missing for a serial scanner, a station naming an NVR that is not
configured, the same device path in two places, an NVR URL carrying a password, a layout
or keys on a scanner that is not a keyboard wedge, an unknown layout or key name.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from devices.hid_layouts import LAYOUTS
from gateway._settings.fields import coerce, secret_of, section_of
from gateway._settings.model import Secret
from gateway._settings.toml import KeyPath, TomlDocument, check_keys, dotted

STATION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

ScannerKind = Literal["serial", "hid", "tcp_client", "tcp_server"]


@dataclass(frozen=True)
class ScannerSection:
    kind: ScannerKind = "serial"
    path: str = ""
    name: str = ""
    baudrate: int = 9600
    host: str = "127.0.0.1"
    port: int = 0
    grab: bool = True
    terminator: Literal["cr", "lf", "crlf", "tab", "none"] = "cr"
    idle_gap_s: float = 0.05
    prefix: str = ""
    suffix: str = ""
    aim_identifiers: bool = True
    fnc1_substitute: str = ""
    gs1_without_aim: bool = False
    encoding: str = "utf-8"
    layout: str = "us"
    #: (key name, its 2 or 3 characters) pairs changed on top of ``layout``, in file order.
    keys: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def device_id(self) -> str:
        """The scanner's stable identity: its name, else its path, else ``tcp:HOST:PORT``."""
        return self.name or self.path or f"tcp:{self.host}:{self.port}"


@dataclass(frozen=True)
class PrinterSection:
    kind: Literal["tcp", "serial"] = "tcp"
    host: str = ""
    port: int = 9100
    path: str = ""
    baudrate: int = 9600
    timeout_s: float = 5.0

    @property
    def device_id(self) -> str:
        return self.path if self.kind == "serial" else f"tcp:{self.host}:{self.port}"


@dataclass(frozen=True)
class ScaleSection:
    path: str = ""
    baudrate: int = 9600
    protocol: Literal["sics", "continuous"] = "sics"
    frame: Literal["state_gross", "plain"] = "state_gross"


@dataclass(frozen=True)
class NvrSection:
    url: str = ""
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    timeout_s: float = 5.0


@dataclass(frozen=True)
class StationSection:
    """One pack station: its scanners and, optionally, a printer, a scale and a camera."""

    scanners: tuple[ScannerSection, ...] = ()
    printer: PrinterSection | None = None
    scale: ScaleSection | None = None
    nvr: str = ""
    nvr_channel: int = 1


_PASSWORD_KEYS = ("password", "password_env", "password_file")


def _nvr(doc: TomlDocument, table: Any, at: KeyPath) -> NvrSection:
    if not isinstance(table, dict):
        raise doc.error(at, "must be a table with url, username and password (or password_env / password_file)")
    check_keys(doc, table, at, ["url", "username", "timeout_s", *_PASSWORD_KEYS])
    plain = {k: v for k, v in table.items() if k not in _PASSWORD_KEYS}
    section = section_of(doc, plain, at, NvrSection)
    parts = urlsplit(section.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise doc.error((*at, "url"), f"must be an http:// or https:// address, not {section.url!r}")
    if parts.username or parts.password:
        raise doc.error((*at, "url"), "must not carry a user or password: give username and password_env")
    password = secret_of(doc, table, at, _PASSWORD_KEYS)
    if not section.username or not password:
        raise doc.error(at, "an NVR needs username and a password (password, password_env or password_file)")
    if not section.timeout_s:
        raise doc.error((*at, "timeout_s"), "must be greater than 0")
    return NvrSection(url=section.url.rstrip("/"), username=section.username, password=password,
                      timeout_s=section.timeout_s)


def _layout_keys(doc: TomlDocument, scanner: ScannerSection, raw: Any, at: KeyPath) -> ScannerSection:
    """``layout`` and ``keys`` of a keyboard wedge checked: a built-in layout, known keys,
    two or three single characters each; the driver builds it (``devices.hid_layouts.layout_named``)."""
    if scanner.layout not in LAYOUTS:
        raise doc.error((*at, "layout"), f"unknown layout {scanner.layout!r}: give one of "
                        f"{', '.join(sorted(LAYOUTS))} (the keyboard layout set up in the scanner), and "
                        "change single keys with keys = { KEY_Z = [\"y\", \"Y\"] }")
    if raw is None:
        return scanner
    if not isinstance(raw, dict):
        raise doc.error((*at, "keys"), 'must be a table of KEY_* names, e.g. keys = { KEY_Q = ["q", "Q", "@"] }')
    base = LAYOUTS[scanner.layout]
    changed: list[tuple[str, tuple[str, ...]]] = []
    for key, chars in raw.items():
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
            raise doc.error((*at, "keys", key), 'must be a list of strings: [character, shifted character] or '
                            '[character, shifted character, AltGr character], e.g. ["q", "Q", "@"]')
        try:
            base.with_keys(scanner.layout, {key: chars})
        except ValueError as exc:
            raise doc.error((*at, "keys", key), str(exc).removeprefix(f"{key}: ")) from None
        changed.append((key, tuple(chars)))
    return replace(scanner, keys=tuple(changed))


def _scanner(doc: TomlDocument, table: Any, at: KeyPath) -> ScannerSection:
    if not isinstance(table, dict):
        raise doc.error(at, "must be a table")
    scanner = section_of(doc, {k: v for k, v in table.items() if k != "keys"}, at, ScannerSection)
    if scanner.kind != "hid":
        for key in ("layout", "keys"):
            if key in table:
                raise doc.error((*at, key), f"only a keyboard-wedge scanner (kind = \"hid\") has a {key}: "
                                f"a {scanner.kind} scanner sends characters, not keys; remove it")
    scanner = _layout_keys(doc, scanner, table.get("keys"), at)
    if scanner.kind in ("serial", "hid") and not scanner.path:
        raise doc.error(at, f"a {scanner.kind} scanner needs path (its /dev/serial/by-id/... or "
                            "/dev/input/by-id/... link, so it keeps its identity when re-plugged)")
    if scanner.kind == "tcp_client" and not (scanner.host and 0 < scanner.port < 65536):
        raise doc.error(at, "a tcp_client scanner needs host and port (where the scanner listens)")
    if scanner.port > 65535:
        raise doc.error((*at, "port"), "must be 0..65535")
    if not scanner.idle_gap_s:
        raise doc.error((*at, "idle_gap_s"), "must be greater than 0")
    try:
        codecs.lookup(scanner.encoding)
    except LookupError:
        raise doc.error((*at, "encoding"), f"unknown encoding {scanner.encoding!r}") from None
    return scanner


def _printer(doc: TomlDocument, table: Any, at: KeyPath) -> PrinterSection:
    printer = section_of(doc, table, at, PrinterSection)
    if printer.kind == "tcp" and not (printer.host and 0 < printer.port < 65536):
        raise doc.error(at, "a tcp printer needs host (and port, 9100 by default)")
    if printer.kind == "serial" and not printer.path:
        raise doc.error(at, "a serial printer needs path")
    if not printer.timeout_s:
        raise doc.error((*at, "timeout_s"), "must be greater than 0")
    return printer


def _station(doc: TomlDocument, table: Any, at: KeyPath, nvrs: Mapping[str, NvrSection]) -> StationSection:
    if not isinstance(table, dict):
        raise doc.error(at, "must be a table with scanners (and optionally printer, scale, nvr)")
    check_keys(doc, table, at, ["scanners", "printer", "scale", "nvr", "nvr_channel"])
    raw_scanners = table.get("scanners", [])
    if not isinstance(raw_scanners, list) or not raw_scanners:
        raise doc.error((*at, "scanners"), "give one or more [[stations.NAME.scanners]] tables")
    scanners = tuple(_scanner(doc, entry, (*at, "scanners", i)) for i, entry in enumerate(raw_scanners))
    printer = _printer(doc, table["printer"], (*at, "printer")) if "printer" in table else None
    scale = section_of(doc, table["scale"], (*at, "scale"), ScaleSection) if "scale" in table else None
    if scale is not None and not scale.path:
        raise doc.error((*at, "scale"), "a scale needs path")
    nvr = coerce(doc, (*at, "nvr"), table.get("nvr", ""), str)
    if nvr and nvr not in nvrs:
        known = ", ".join(sorted(nvrs)) or "none"
        raise doc.error((*at, "nvr"), f"no [nvrs.{nvr}] is configured (configured: {known})")
    channel = coerce(doc, (*at, "nvr_channel"), table.get("nvr_channel", 1), int)
    if not 1 <= channel <= 512:
        raise doc.error((*at, "nvr_channel"), "must be a camera channel, 1..512")
    return StationSection(scanners=scanners, printer=printer, scale=scale, nvr=nvr, nvr_channel=channel)


def parse_devices(doc: TomlDocument) -> tuple[dict[str, StationSection], dict[str, NvrSection]]:
    """``[stations.*]`` and ``[nvrs.*]`` of ``doc``, validated (empty when absent).

    Raises:
        ConfigError: with file, line and key.
    """
    data = doc.data
    nvrs: dict[str, NvrSection] = {}
    raw_nvrs = data.get("nvrs", {})
    if not isinstance(raw_nvrs, dict):
        raise doc.error(("nvrs",), "must be a table of NVRs: [nvrs.NAME]")
    for name, table in raw_nvrs.items():
        if not STATION_NAME.match(name):
            raise doc.error(("nvrs", name), "NVR names are 1-32 of A-Z a-z 0-9 _ -")
        nvrs[name] = _nvr(doc, table, ("nvrs", name))
    stations: dict[str, StationSection] = {}
    raw_stations = data.get("stations", {})
    if not isinstance(raw_stations, dict):
        raise doc.error(("stations",), "must be a table of stations: [stations.NAME]")
    seen: dict[str, KeyPath] = {}
    for name, table in raw_stations.items():
        at: KeyPath = ("stations", name)
        if not STATION_NAME.match(name):
            raise doc.error(at, "station names are 1-32 of A-Z a-z 0-9 _ -")
        station = _station(doc, table, at, nvrs)
        devices = [(s.device_id, (*at, "scanners", i)) for i, s in enumerate(station.scanners)]
        if station.printer is not None:
            devices.append((station.printer.device_id, (*at, "printer")))
        if station.scale is not None:
            devices.append((station.scale.path, (*at, "scale")))
        for device, where in devices:
            if device in seen:
                first = dotted(seen[device])
                raise doc.error(where, f"{device} is already configured at {first}: one device, one place")
            seen[device] = where
        stations[name] = station
    return stations, nvrs


__all__ = ["STATION_NAME", "NvrSection", "PrinterSection", "ScaleSection", "ScannerSection", "StationSection",
           "parse_devices"]
