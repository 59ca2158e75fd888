"""The demo's devices: simulators standing where ``[stations.*]`` says the devices are.

With ``[demo] devices = true`` (the embedded config), the daemon starts, before the pack line:

* for every ``tcp_client`` scanner at 127.0.0.1: a fixed-mount scanner simulator listening on
  its port that reads a few typical codes every ``[demo] interval_s`` (an EAN-13, a Code 128
  label, a GS1 DataMatrix with lot and serial, a smudged EAN-13 whose check digit fails);
* for every ``tcp`` printer at 127.0.0.1: a ZPL printer simulator answering ``~HS``;
* for every NVR at 127.0.0.1: an ISAPI NVR simulator with digest auth (the configured
  account), recording each station's channel.

They speak the devices' real protocols over real sockets, so ``make run`` exercises the same
drivers a warehouse runs. Devices configured elsewhere than 127.0.0.1 are left alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import trio

from devices.simulators.nvr import NvrSimulator
from devices.simulators.printer import PrinterSimulator
from devices.simulators.scanner import DEMO_READS, TcpScannerServer, frame
from gateway._settings import Settings

log = logging.getLogger("gateway.demo")

LOOPBACK = "127.0.0.1"


async def _scan_demo_codes(scanner: TcpScannerServer, every_s: float) -> None:
    n = 0
    while True:
        await scanner.wait_connected()
        await trio.sleep(every_s)
        aim, data = DEMO_READS[n % len(DEMO_READS)]
        n += 1
        await scanner.send(frame(data, aim=aim))


async def serve_demo_devices(settings: Settings, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                             ) -> None:
    """Run the simulators until cancelled; ``started`` once they all listen."""
    nvrs: list[NvrSimulator] = []
    try:
        async with trio.open_nursery() as nursery:
            for name, nvr in settings.nvrs.items():
                address = urlsplit(nvr.url)
                if address.hostname != LOOPBACK:
                    continue
                simulator = NvrSimulator(nvr.username, nvr.password.reveal().decode())
                simulator.port = address.port or 80
                simulator.start()
                nvrs.append(simulator)
                start = datetime.now(UTC) - timedelta(hours=1)
                for station in settings.stations.values():
                    if station.nvr == name:
                        simulator.record_segments(station.nvr_channel, start, 600, 6 * 24)
                log.info("demo NVR %s simulated on %s", name, nvr.url)
            for station_name, station in settings.stations.items():
                for scanner in station.scanners:
                    if scanner.kind == "tcp_client" and scanner.host == LOOPBACK:
                        server = TcpScannerServer(LOOPBACK, scanner.port)
                        await nursery.start(server.serve)
                        nursery.start_soon(_scan_demo_codes, server, settings.demo.interval_s)
                        log.info("demo scanner %s of station %s simulated on %s:%d", scanner.device_id,
                                 station_name, LOOPBACK, scanner.port)
                printer = station.printer
                if printer is not None and printer.kind == "tcp" and printer.host == LOOPBACK:
                    simulator_printer = PrinterSimulator(f"demo printer of {station_name}")
                    await nursery.start(simulator_printer.serve_tcp, LOOPBACK, printer.port)
                    log.info("demo printer of station %s simulated on %s:%d", station_name, LOOPBACK, printer.port)
            task_status.started()
    finally:
        for simulator in nvrs:
            simulator.stop()


__all__ = ["serve_demo_devices"]
