"""The daemon runs the stations' devices (``gateway._packline.devices``) over real parts.

A fixed-mount TCP scanner, a ZPL printer and an ISAPI NVR are the simulators from
``devices.simulators`` on 127.0.0.1; the gateway runs in-process with a ``[stations.A1]``
naming them, and the local API, ``/healthz`` and ``/metrics`` show what they do.
"""

from __future__ import annotations

import httpx
import trio

from devices.simulators.nvr import NvrSimulator
from devices.simulators.printer import PrinterSimulator
from devices.simulators.scanner import TcpScannerServer, frame
from gateway._daemon import serve_gateway
from gateway._settings import load_settings
from tests._support import write_config
from tests._support.packline import line_config


def station_config(scanner_port: int, printer_port: int, nvr: NvrSimulator) -> str:
    return line_config(scanner_port, printer_port, nvr)


async def devices_of(client, token):
    reply = await client.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    return {d["kind"]: d for d in reply.json()["devices"]}


async def wait_until(predicate, limit_s=15):
    with trio.fail_after(limit_s):
        while not await predicate():  # noqa: ASYNC110  (polling the API, as an operator would)
            await trio.sleep(0.05)


async def test_a_station_s_devices_come_up_scan_and_recover_from_a_scanner_reset(tmp_path):
    scanner = TcpScannerServer()
    printer = PrinterSimulator()
    with NvrSimulator(clock_offset_s=40.0) as nvr:
        async with trio.open_nursery() as nursery:
            scanner_port = await nursery.start(scanner.serve)
            printer_port = await nursery.start(printer.serve_tcp)
            printer.paper_out = True
            config = write_config(tmp_path, station_config(scanner_port, printer_port, nvr))
            settings = load_settings(config)
            shutdown = trio.Event()
            services = await nursery.start(serve_gateway, settings, shutdown)
            token = services.api_token
            async with httpx.AsyncClient(base_url=services.bound[0], timeout=10) as client:
                async def all_up():
                    devices = await devices_of(client, token)
                    return all(d["state"] == "up" for d in devices.values()) and len(devices) == 3

                await wait_until(all_up)
                devices = await devices_of(client, token)
                assert devices["printer"]["detail"] == "paper out"
                assert devices["nvr"]["detail"].startswith("clock offset +4") or \
                    devices["nvr"]["detail"].startswith("clock offset +3"), devices["nvr"]
                await scanner.wait_connected()
                await scanner.send(frame("4006381333931", aim="]E0") + frame("9780306406158", aim="]E0"))

                async def scanned():
                    return (await devices_of(client, token))["scanner"]["events"] == 2

                await wait_until(scanned)
                await scanner.reset()  # the scanner reboots: the gateway notices, reconnects by itself

                async def reconnected():
                    scan = (await devices_of(client, token))["scanner"]
                    return scan["reconnects"] >= 1 and scan["state"] == "up" and bool(scanner.connections)

                await wait_until(reconnected)
                await scanner.send(frame("4006381333931", aim="]E0"))

                async def scanned_again():
                    return (await devices_of(client, token))["scanner"]["events"] == 3

                await wait_until(scanned_again)
                health = (await client.get("/healthz")).json()
                assert health["devices"] == {"up": 3, "down": 0, "starting": 0}
                metrics = (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text
                assert 'gateway_device_up{device="fixed-mount-1",kind="scanner",station="A1"} 1.0' in metrics
                assert 'gateway_device_events{device="fixed-mount-1",kind="scanner",station="A1"} 3.0' in metrics
            shutdown.set()
            nursery.cancel_scope.cancel()


async def test_a_device_missing_at_start_is_down_and_the_gateway_serves_anyway(tmp_path):
    extra = """
[packline]
tenant = "t1"

[stations.B2]
[[stations.B2.scanners]]
kind = "serial"
path = "/dev/serial/by-id/not-plugged-in"
"""
    settings = load_settings(write_config(tmp_path, extra))
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        async with httpx.AsyncClient(base_url=services.bound[0], timeout=10) as client:
            async def down():
                devices = (await devices_of(client, services.api_token))
                return devices.get("scanner", {}).get("state") == "down"

            await wait_until(down)
            scanner = (await devices_of(client, services.api_token))["scanner"]
            assert "/dev/serial/by-id/not-plugged-in" == scanner["device"] and scanner["last_error"]
            assert (await client.get("/livez")).status_code == 200
        shutdown.set()
