"""The demo's devices: simulators standing where ``[stations.*]`` says the devices are.

With ``[demo] devices = true`` (the embedded config), the daemon starts, before the pack line:

* for every ``tcp_client`` scanner at 127.0.0.1: a fixed-mount scanner simulator listening on
  its port; a simulated packer (``gateway._demo.packer``) holds items under it, so it sends
  exactly the frames a real scanner sends for what is read;
* for every ``tcp`` printer at 127.0.0.1: a ZPL printer simulator answering ``~HS``; each label
  it prints is logged;
* for every NVR at 127.0.0.1: an ISAPI NVR simulator with digest auth (the configured
  account), recording each station's channel from an hour before the start for a day, so the
  pack line finds a clip for every parcel.

They speak the devices' real protocols over real sockets, so ``make run`` exercises the same
drivers a warehouse runs. Devices configured elsewhere than 127.0.0.1 are left alone.

The simulators of one running gateway make its **demo floor** (``demo_floor(settings)``): the
demo feeder, started later by the daemon with the same settings, finds the scanners there and
puts a simulated packer at each; tests find the printers there to see what was printed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import trio

from devices.simulators.nvr import NvrSimulator
from devices.simulators.printer import PrinterSimulator
from devices.simulators.scanner import TcpScannerServer
from gateway._settings import Settings

log = logging.getLogger("gateway.demo")

LOOPBACK = "127.0.0.1"
#: How often the printer simulators are looked at for new labels to log.
PRINTER_LOG_EVERY_S = 0.5


@dataclass
class DemoFloor:
    """The simulated devices of one running demo, by station.

    Attributes:
        scanners: ``{station: scanner simulator}`` (the first simulated scanner of each station).
        printers: ``{station: printer simulator}``.
        nvrs: ``{nvr name: NVR simulator}``.
    """

    scanners: dict[str, TcpScannerServer] = field(default_factory=dict)
    printers: dict[str, PrinterSimulator] = field(default_factory=dict)
    nvrs: dict[str, NvrSimulator] = field(default_factory=dict)


# The daemon starts the devices and the feeder as two tasks given the same settings; this is
# where they meet. An entry lives exactly as long as its ``serve_demo_devices``.
_FLOORS: dict[int, DemoFloor] = {}


def demo_floor(settings: Settings) -> DemoFloor | None:
    """The floor ``serve_demo_devices(settings)`` is running, or ``None`` when none is."""
    return _FLOORS.get(id(settings))


def _label_summary(fields: tuple[str, ...] | None) -> str:
    if not fields:
        return "(no readable fields)"
    return " / ".join(text for text in fields[:3] if text.strip())[:120]


async def _log_printed_labels(station: str, printer: PrinterSimulator) -> None:
    seen = 0
    while True:
        await trio.sleep(PRINTER_LOG_EVERY_S)
        for label in printer.labels[seen:]:
            if label.blocked_by:
                log.info("demo printer of %s refused a label: %s", station, ", ".join(label.blocked_by))
            else:
                log.info("demo printer of %s printed a label: %s", station, _label_summary(label.fields))
        seen = len(printer.labels)


def _start_nvrs(settings: Settings, floor: DemoFloor) -> None:
    for name, nvr in settings.nvrs.items():
        address = urlsplit(nvr.url)
        if address.hostname != LOOPBACK:
            continue
        simulator = NvrSimulator(nvr.username, nvr.password.reveal().decode())
        simulator.port = address.port or 80
        simulator.start()
        floor.nvrs[name] = simulator
        start = datetime.now(UTC) - timedelta(hours=1)
        channels = sorted({station.nvr_channel for station in settings.stations.values() if station.nvr == name})
        for channel in channels:
            simulator.record_segments(channel, start, 600, 6 * 25)  # 10-minute files, an hour back, a day ahead
        log.info("demo NVR %s simulated on %s, recording channel(s) %s", name, nvr.url,
                 ", ".join(str(c) for c in channels))


async def serve_demo_devices(settings: Settings, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                             ) -> None:
    """Run the simulators until cancelled; ``started`` once they all listen.

    While it runs, ``demo_floor(settings)`` returns them.
    """
    floor = DemoFloor()
    _FLOORS[id(settings)] = floor
    try:
        async with trio.open_nursery() as nursery:
            _start_nvrs(settings, floor)
            for station_name, station in settings.stations.items():
                for scanner in station.scanners:
                    if scanner.kind == "tcp_client" and scanner.host == LOOPBACK:
                        server = TcpScannerServer(LOOPBACK, scanner.port)
                        await nursery.start(server.serve)
                        floor.scanners.setdefault(station_name, server)
                        log.info("demo scanner %s of station %s simulated on %s:%d", scanner.device_id,
                                 station_name, LOOPBACK, scanner.port)
                printer = station.printer
                if printer is not None and printer.kind == "tcp" and printer.host == LOOPBACK:
                    simulator_printer = PrinterSimulator(f"demo printer of {station_name}")
                    await nursery.start(simulator_printer.serve_tcp, LOOPBACK, printer.port)
                    floor.printers[station_name] = simulator_printer
                    nursery.start_soon(_log_printed_labels, station_name, simulator_printer)
                    log.info("demo printer of station %s simulated on %s:%d", station_name, LOOPBACK, printer.port)
            task_status.started()
    finally:
        _FLOORS.pop(id(settings), None)
        for simulator in floor.nvrs.values():
            simulator.stop()


__all__ = ["DemoFloor", "demo_floor", "serve_demo_devices"]
