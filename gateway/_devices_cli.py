"""Installer commands: ``gateway devices list | monitor | test-print | nvr-check``.

    gateway devices list [--json]          serial ports by id, input devices that look like
                                           keyboard-wedge scanners, then every configured
                                           device with its live state (from the running
                                           gateway's API; present/missing when it is stopped)
    gateway devices monitor STATION [--count N] [--seconds S]
                                           open the station's scanners and print each read,
                                           decoded, as it arrives; reopens an unplugged scanner
    gateway devices test-print STATION     send a test label through the station's printer
    gateway devices nvr-check NAME         log in to [nvrs.NAME], measure its clock offset,
                                           search the last 10 minutes of every channel the
                                           stations film with it

``monitor`` opens the scanners itself: stop the gateway first (a serial port is locked and
a keyboard wedge grabbed by whoever opened it first; the command says so when it finds one
taken). It ends on Ctrl-C, after ``--count`` reads, or after ``--seconds``.

Exit status: 0 all right; 1 a problem (an unknown station or NVR name, a station without a
printer, a scanner another process holds, a label refused or uncertain, a wrong NVR
password, a channel without recordings, fewer than ``--count`` reads within ``--seconds``),
and what to do is printed with it. An NVR clock off by more than ``CLOCK_WARN_S`` is a
warning, not a problem: the gateway corrects its searches by the measured offset.
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from devices.scan import Scan
from gateway._devices_cli_format import (
    STATIONS_REFERENCE,
    attach_live,
    clock_of,
    clock_warning,
    configured_devices,
    format_listing,
    format_scan,
    printer_advice,
)
from gateway._errors import DeviceAuthError, DeviceError, DeviceUnavailableError, GatewayError
from gateway._settings import ScannerSection, Settings, StationSection

#: Where udev keeps stable names of serial ports and input devices (``list --serial-dir`` /
#: ``--input-dir`` override them, for tests and odd systems).
SERIAL_BY_ID = Path("/dev/serial/by-id")
INPUT_BY_ID = Path("/dev/input/by-id")
NVR_SEARCH_S = 600
API_TIMEOUT_S = 3.0
#: errno values that mean "someone else has it": a locked port, a grabbed input device, a port in use.
_TAKEN = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY, errno.EADDRINUSE})


class _Refusal(GatewayError):
    """The command cannot do what was asked; ``advice`` says what to do (exit status 1)."""

    def __init__(self, message: str, advice: str) -> None:
        super().__init__(message)
        self.advice = advice


def _station(settings: Settings, name: str) -> StationSection:
    if not settings.stations:
        raise _Refusal(f"no stations are configured in {settings.path}",
                       f"add a [stations.NAME] with its scanners (see {STATIONS_REFERENCE})")
    if name not in settings.stations:
        raise _Refusal(f"no station {name!r} in {settings.path} (configured: {', '.join(settings.stations)})",
                       "give one of the configured stations")
    return settings.stations[name]


# -- list ----------------------------------------------------------------------------


def _input_name(path: Path) -> str:
    """The input device's own name when it is an evdev node we may read, else why not."""
    from devices.hid_scanner import is_evdev_node

    if not is_evdev_node(str(path)):
        return ""
    try:
        import evdev
    except ImportError:
        return ""
    try:
        device = evdev.InputDevice(str(path))
    except OSError as exc:
        return f"(name unreadable: {exc.strerror}; add this user to the 'input' group)"
    try:
        return str(device.name)
    finally:
        device.close()


def _links(directory: Path, pattern: str, configured: dict[str, str], names: bool) -> list[dict[str, Any]]:
    found = []
    for link in sorted(directory.glob(pattern)):
        target = os.path.realpath(link)
        used = configured.get(str(link)) or configured.get(target)
        found.append({"link": link.name, "path": str(link), "target": target, "configured": used,
                      "name": _input_name(link) if names else ""})
    return found


def _live_devices(settings: Settings) -> tuple[list[dict[str, Any]] | None, str, str]:
    """(every device's live state or ``None``, the API's address, a note) from the running gateway."""
    http = settings.http
    host = f"[{http.host}]" if ":" in http.host else http.host
    base = f"http://{host}:{http.port}"
    token_path = settings.token_path
    if not http.port or not token_path.exists():
        return None, base, "gateway not running"
    token = token_path.read_text(encoding="utf-8").strip()
    try:
        reply = httpx.get(f"{base}/api/v1/devices", headers={"Authorization": f"Bearer {token}"},
                          timeout=API_TIMEOUT_S)
    except httpx.HTTPError:
        return None, base, "gateway not running"
    if reply.status_code != 200:
        return None, base, f"the gateway at {base} answered HTTP {reply.status_code}: no live state"
    devices: list[dict[str, Any]] = reply.json()["devices"]
    return devices, base, ""


def list_devices(settings: Settings, serial_dir: Path = SERIAL_BY_ID, input_dir: Path = INPUT_BY_ID) -> dict[str, Any]:
    """What ``gateway devices list`` reports (``--json`` prints it as is)."""
    devices = configured_devices(settings)
    uses = {}
    live, api, note = _live_devices(settings)
    attach_live(devices, live or [])
    for device in devices:
        if device["path"]:
            device["present"] = os.path.exists(device["path"])
            uses[device["path"]] = uses[os.path.realpath(device["path"])] = f"{device['station']} {device['kind']}"
    return {
        "config": str(settings.path),
        "serial_dir": str(serial_dir), "serial": _links(serial_dir, "*", uses, names=False),
        "input_dir": str(input_dir), "input": _links(input_dir, "*-event-kbd", uses, names=True),
        "gateway": {"running": live is not None, "api": api, "note": note},
        "stations": devices,
    }


# -- monitor -------------------------------------------------------------------------


def _say(text: str) -> None:
    print(f"{clock_of(datetime.now().timestamp())}  {text}", file=sys.stderr, flush=True)


class _ScannerWatch:
    """Says when a scanner opens, goes away and comes back (``run_with_reopen``'s callbacks)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.opened = False
        self.up = False
        self.said_missing = False

    def on_open(self) -> None:
        _say(f"scanner {self.name} {'back' if self.opened else 'open'}: scan something")
        self.opened = self.up = True

    def on_unavailable(self, error: DeviceUnavailableError, delay_s: float) -> None:
        if self.up:
            _say(f"scanner {self.name} unplugged ({error.message}); waiting for it")
        elif not self.opened and not self.said_missing:
            _say(f"scanner {self.name} not connected ({error.message}); waiting for it")
            self.said_missing = True
        self.up = False

    def __repr__(self) -> str:
        return f"_ScannerWatch({self.name!r}, opened={self.opened}, up={self.up})"


async def _watch_scanner(station: str, scanner: ScannerSection, send: trio.MemorySendChannel[Scan],
                         failures: list[_Refusal], scope: trio.CancelScope) -> None:
    """Run one scanner with reopen; a scanner another process holds ends the whole monitor."""
    from devices.reopen import run_with_reopen
    from gateway._backoff import Backoff
    from gateway._packline.devices import SCANNER_BACKOFF, scanner_driver

    name = scanner.device_id
    driver = scanner_driver(station, scanner, send)

    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        try:
            await driver(task_status=task_status)
        except DeviceUnavailableError as exc:
            cause = exc.__cause__
            if isinstance(cause, OSError) and cause.errno in _TAKEN:
                raise _Refusal(f"another process (the running gateway?) holds scanner {name}: {exc.message}",
                               "stop it first (e.g. `systemctl stop gateway`), then run this again") from exc
            if isinstance(cause, OSError) and cause.errno in (errno.EACCES, errno.EPERM):
                group = "input" if scanner.kind == "hid" else "dialout"
                raise _Refusal(f"no permission to open scanner {name}: {exc.message}",
                               f"add this user to the {group!r} group (log in again after), or run as the "
                               "gateway's user") from exc
            raise

    watch = _ScannerWatch(name)
    try:
        await run_with_reopen(serve, device=name, backoff=Backoff(*SCANNER_BACKOFF), on_open=watch.on_open,
                              on_unavailable=watch.on_unavailable)
    except _Refusal as exc:
        failures.append(exc)
        scope.cancel()
    except DeviceError as exc:  # e.g. the path is a plain file: reopening will not help
        failures.append(_Refusal(str(exc), f"check path of scanner {name} in [stations.{station}]"))
        scope.cancel()


async def _cancel_on_interrupt(scope: trio.CancelScope, interrupted: list[bool]) -> None:
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async for _ in signals:
            interrupted.append(True)
            scope.cancel()
            return


async def monitor(station: str, config: StationSection, count: int | None, seconds: float | None) -> int:
    """Print every read of the station's scanners until Ctrl-C, ``count`` reads or ``seconds``."""
    send, receive = trio.open_memory_channel[Scan](256)
    failures: list[_Refusal] = []
    interrupted: list[bool] = []
    seen = 0
    kinds = ", ".join(f"{s.kind} {s.device_id}" for s in config.scanners)
    _say(f"station {station}: {len(config.scanners)} scanner(s): {kinds}; Ctrl-C ends")
    async with trio.open_nursery() as nursery:
        if threading.current_thread() is threading.main_thread():
            nursery.start_soon(_cancel_on_interrupt, nursery.cancel_scope, interrupted)
        for scanner in config.scanners:
            nursery.start_soon(_watch_scanner, station, scanner, send, failures, nursery.cancel_scope)
        with trio.move_on_after(math.inf if seconds is None else seconds):
            async for scan in receive:
                print(format_scan(scan), flush=True)
                seen += 1
                if count is not None and seen >= count:
                    break
        nursery.cancel_scope.cancel()
    if failures:
        raise failures[0]
    short = count is not None and seen < count and not interrupted
    ended = "Ctrl-C" if interrupted else f"{seconds:g} s" if seconds is not None and seen != count else f"{count} reads"
    _say(f"{seen} read(s) from station {station}; ended by {ended}" + (f" (wanted {count})" if short else ""))
    return 1 if short else 0


# -- test-print and nvr-check --------------------------------------------------------


def print_test_label(station: str, config: StationSection) -> int:
    """Send a test label through the station's printer; 0 only when it was sent."""
    from devices.zpl import LabelData, render_label
    from gateway._packline.devices import printer_of

    if config.printer is None:
        raise _Refusal(f"station {station} has no printer",
                       f"add [stations.{station}.printer] (see {STATIONS_REFERENCE})")
    now = datetime.now().astimezone()
    order = f"TEST-{now:%H%M%S}"
    printer = printer_of(station, config.printer)
    result = trio.run(printer.print_label, render_label(LabelData(order, "TEST", station, now)))
    outcome = result.outcome if result.outcome == "sent" else f"{result.outcome}: {result.reason}"
    print(f"test label {order} -> station {station} printer {config.printer.device_id}: {outcome}")
    if result.outcome == "sent":
        return 0
    print(f"  what to do: {printer_advice(result.reason)}")
    return 1


async def nvr_check(settings: Settings, name: str) -> int:
    """Log in to ``[nvrs.NAME]``, measure its clock, search each channel the stations use."""
    from gateway._packline.devices import nvr_client

    section = settings.nvrs[name]
    channels: dict[int, list[str]] = {}
    for station, config in settings.stations.items():
        if config.nvr == name:
            channels.setdefault(config.nvr_channel, []).append(station)
    async with nvr_client(name, section) as client:
        try:
            offset_s = await client.clock_offset()
        except DeviceAuthError as exc:
            print(f"error: NVR {name} at {section.url}: wrong username or password ({exc.message})", file=sys.stderr)
            print(f"  what to do: check username and password (password_env / password_file) of [nvrs.{name}]; "
                  "the NVR locks the account after a few failures, so do not retry in a loop", file=sys.stderr)
            return 1
        except DeviceError as exc:
            print(f"error: NVR {name} at {section.url}: {exc.message}", file=sys.stderr)
            print(f"  what to do: check that the NVR is on and reachable, and url of [nvrs.{name}]", file=sys.stderr)
            return 1
        print(f"NVR {name} at {section.url}: login OK, clock offset {offset_s:+.1f} s")
        warning = clock_warning(offset_s)
        if warning:
            print(f"warning: {warning}")
        if not channels:
            print(f"no station films with NVR {name} (set nvr = {name!r} and nvr_channel in [stations.NAME]); "
                  "searching channel 1")
        problems = 0
        end = datetime.now(UTC)
        start = end - timedelta(seconds=NVR_SEARCH_S)
        for channel, stations in sorted((channels or {1: []}).items()):
            where = f"channel {channel}" + (f" (station {', '.join(stations)})" if stations else "")
            try:
                clip = await client.clip_for(channel, start, end)
            except DeviceError as exc:
                print(f"{where}: search failed: {exc.message}")
                problems += 1
                continue
            if clip is None:
                print(f"{where}: no recordings in the last {NVR_SEARCH_S // 60} minutes")
                print("  what to do: check that the camera is connected and the NVR's record schedule "
                      "records this channel")
                problems += 1
                continue
            first, last = clip.segments[0].start.astimezone(), clip.segments[-1].end.astimezone()
            print(f"{where}: clip {first:%H:%M:%S}-{last:%H:%M:%S} from {len(clip.segments)} recording(s)"
                  f"{'' if clip.complete else ', with gaps (motion recording, or the camera was offline)'}")
    return 1 if problems else 0


# -- the command line -----------------------------------------------------------------


def cmd_devices(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``gateway devices`` sub-command."""
    command: str = args.devices_command
    if not logging.getLogger().handlers:  # the drivers' own warnings repeat what the command prints
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    try:
        if command == "list":
            report = list_devices(settings, Path(args.serial_dir), Path(args.input_dir))
            print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else format_listing(report))
            return 0
        if command == "monitor":
            config = _station(settings, args.station)
            result: int = trio.run(monitor, args.station, config, args.count, args.seconds)
            return result
        if command == "test-print":
            return print_test_label(args.station, _station(settings, args.station))
        if args.name not in settings.nvrs:
            raise _Refusal(f"no NVR {args.name!r} in {settings.path} (configured: "
                           f"{', '.join(settings.nvrs) or 'none'})",
                           f"give one of the configured NVRs, or add [nvrs.NAME] (see {STATIONS_REFERENCE})")
        nvr_result: int = trio.run(nvr_check, settings, args.name)
        return nvr_result
    except _Refusal as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"  what to do: {exc.advice}", file=sys.stderr)
        return 1


def add_devices_parser(sub: Any, config_options: Any) -> argparse.ArgumentParser:
    """Register ``gateway devices`` on the CLI's sub-parsers."""
    devices: argparse.ArgumentParser = sub.add_parser(
        "devices", help="installer checks: list devices, watch scans, print a test label, check an NVR",
        description="Check a pack station's devices while installing them. `monitor` opens the scanners "
        "itself: stop the gateway first.")
    commands = devices.add_subparsers(dest="devices_command", required=True, metavar="SUBCOMMAND")
    listing = commands.add_parser("list", help="serial ports, input devices that look like scanners, and the "
                                  "configured devices with their state")
    config_options(listing)
    listing.add_argument("--json", action="store_true", help="print the report as JSON")
    listing.add_argument("--serial-dir", default=str(SERIAL_BY_ID), help=argparse.SUPPRESS)
    listing.add_argument("--input-dir", default=str(INPUT_BY_ID), help=argparse.SUPPRESS)
    watch = commands.add_parser("monitor", help="print each scan of a station's scanners, decoded, as it arrives")
    config_options(watch)
    watch.add_argument("station", metavar="STATION")
    watch.add_argument("--count", type=int, metavar="N", help="end after N reads")
    watch.add_argument("--seconds", type=float, metavar="S", help="end after S seconds")
    label = commands.add_parser("test-print", help="send a test label through a station's printer")
    config_options(label)
    label.add_argument("station", metavar="STATION")
    nvr = commands.add_parser("nvr-check", help="log in to an NVR, measure its clock offset, search recent video")
    config_options(nvr)
    nvr.add_argument("name", metavar="NAME")
    return devices


__all__ = ["INPUT_BY_ID", "SERIAL_BY_ID", "add_devices_parser", "cmd_devices", "list_devices", "monitor",
           "nvr_check", "print_test_label"]
