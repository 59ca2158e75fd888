"""A station's devices, built from ``[stations.*]`` and ``[nvrs.*]`` and kept alive.

``serve_station_devices`` starts one supervisor per device (``devices.supervisor``):

* each scanner runs its driver (serial, keyboard wedge, TCP client or server), reopened
  with ``SCANNER_BACKOFF`` (0.2 s doubling to 5 s) after an unplug, so a re-plugged
  scanner scans again within seconds; its ``Scan`` values go to one channel for the
  whole line;
* each printer is probed with ``~HS`` every ``PROBE_EVERY_S`` (its state shows "paper
  out" before a packer finds out by printing);
* each NVR has its clock offset measured every ``PROBE_EVERY_S`` (auth is checked with it);
* each scale's serial port is checked to be present.

The scans go to the pack line (``gateway._packline.line``); ``gateway._packline.serve``
wires the two.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import NoReturn

import trio

from devices.framing import FramingConfig
from devices.hid_layouts import layout_named
from devices.hid_scanner import serve_hid_scanner
from devices.nvr import NvrClient
from devices.printer import ZplPrinter
from devices.reopen import ServeDevice
from devices.scan import Scan
from devices.serial_scanner import serve_serial_scanner
from devices.supervisor import DeviceRegistry, DeviceState, supervise
from devices.tcp_scanner import serve_tcp_scanner_client, serve_tcp_scanner_server
from gateway._backoff import Backoff
from gateway._errors import DeviceUnavailableError
from gateway._settings import NvrSection, PrinterSection, ScannerSection, Settings

log = logging.getLogger(__name__)

PROBE_EVERY_S = 30.0
SCANNER_BACKOFF = (0.2, 5.0)
PROBE_BACKOFF = (1.0, 60.0)
#: Scans waiting for their consumer; a full queue slows the drivers' reading, never drops a read.
SCAN_QUEUE = 1024


def framing_of(scanner: ScannerSection) -> FramingConfig:
    """The driver's framing from the scanner's settings."""
    return FramingConfig(
        terminator=scanner.terminator, idle_gap_s=scanner.idle_gap_s, prefix=scanner.prefix.encode(),
        suffix=scanner.suffix.encode(), aim_identifiers=scanner.aim_identifiers,
        fnc1_substitute=scanner.fnc1_substitute or None, gs1_without_aim=scanner.gs1_without_aim,
        encoding=scanner.encoding)


def scanner_driver(station: str, scanner: ScannerSection, send: trio.MemorySendChannel[Scan]) -> ServeDevice:
    """The scanner's ``serve_*`` with everything but ``task_status`` bound."""
    framing = framing_of(scanner)
    if scanner.kind == "serial":
        return functools.partial(serve_serial_scanner, scanner.path, send, station=station, framing=framing,
                                 baudrate=scanner.baudrate)
    if scanner.kind == "hid":
        return functools.partial(serve_hid_scanner, scanner.path, send, station=station, framing=framing,
                                 layout=layout_named(scanner.layout, dict(scanner.keys)), grab=scanner.grab)
    if scanner.kind == "tcp_client":
        return functools.partial(serve_tcp_scanner_client, scanner.host, scanner.port, send, station=station,
                                 framing=framing, device_id=scanner.device_id)
    return functools.partial(serve_tcp_scanner_server, scanner.host, scanner.port, send, station=station,
                             framing=framing)


def printer_of(station: str, printer: PrinterSection) -> ZplPrinter:
    """The station's label printer driver."""
    name = f"{station} printer {printer.device_id}"
    timeouts = {"connect_timeout_s": printer.timeout_s, "status_timeout_s": printer.timeout_s}
    if printer.kind == "serial":
        return ZplPrinter.serial(name, printer.path, printer.baudrate, **timeouts)
    return ZplPrinter.tcp(name, printer.host, printer.port, **timeouts)


def nvr_client(name: str, nvr: NvrSection) -> NvrClient:
    """A client of one configured NVR (close it with ``aclose``)."""
    return NvrClient(f"nvr {name}", nvr.url, nvr.username, nvr.password.reveal().decode(), timeout_s=nvr.timeout_s)


async def _probe_printer(printer: ZplPrinter, state: DeviceState, *,
                         task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
    status = await printer.status()  # DeviceUnavailableError: the supervisor marks it down
    task_status.started()
    while True:
        state.detail = "ready" if status.ready else ", ".join(status.reasons)
        await trio.sleep(PROBE_EVERY_S)
        status = await printer.status()


async def _probe_nvr(client: NvrClient, state: DeviceState, *,
                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
    offset = await client.clock_offset()
    task_status.started()
    while True:
        state.detail = f"clock offset {offset:+.1f} s"
        await trio.sleep(PROBE_EVERY_S)
        offset = await client.clock_offset()


async def _probe_path(path: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
    device = trio.Path(path)
    if not await device.exists():
        raise DeviceUnavailableError(path, "not connected (no such device)")
    task_status.started()
    while True:
        await trio.sleep(PROBE_EVERY_S)
        if not await device.exists():
            raise DeviceUnavailableError(path, "disconnected")


async def serve_station_devices(settings: Settings, registry: DeviceRegistry, scans: trio.MemorySendChannel[Scan],
                                nvrs: Mapping[str, NvrClient], printers: Mapping[str, ZplPrinter | None], *,
                                task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Supervise every configured device until cancelled; reports started at once (a device
    that is missing at start is reported down and waited for, it never blocks the gateway).
    ``printers`` are the drivers the print queues use too (one connection at a time each)."""
    async with trio.open_nursery() as nursery:
        for station, config in settings.stations.items():
            for scanner in config.scanners:
                state = registry.add(station, scanner.device_id, "scanner")
                nursery.start_soon(functools.partial(supervise, state, scanner_driver(station, scanner, scans),
                                                     backoff=Backoff(*SCANNER_BACKOFF)))
            printer = printers.get(station)
            if config.printer is not None and printer is not None:
                state = registry.add(station, config.printer.device_id, "printer")
                probe = functools.partial(_probe_printer, printer, state)
                nursery.start_soon(functools.partial(supervise, state, probe, backoff=Backoff(*PROBE_BACKOFF)))
            if config.scale is not None:
                state = registry.add(station, config.scale.path, "scale")
                probe = functools.partial(_probe_path, config.scale.path)
                nursery.start_soon(functools.partial(supervise, state, probe, backoff=Backoff(*PROBE_BACKOFF)))
            if config.nvr:
                state = registry.add(station, f"{config.nvr} channel {config.nvr_channel}", "nvr")
                probe = functools.partial(_probe_nvr, nvrs[config.nvr], state)
                nursery.start_soon(functools.partial(supervise, state, probe, backoff=Backoff(*PROBE_BACKOFF)))
        log.info("devices: %d configured at %d stations", len(registry), len(settings.stations))
        task_status.started()


__all__ = ["PROBE_EVERY_S", "framing_of", "nvr_client", "printer_of", "scanner_driver", "serve_station_devices"]
