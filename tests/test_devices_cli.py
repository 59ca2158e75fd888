"""``gateway devices list | monitor | test-print | nvr-check`` against real parts.

Scanners are ``PtyScanner`` (a real pseudo-terminal behind a by-id-like symlink) and
``TcpScannerServer``; the printer is ``PrinterSimulator`` and the NVR ``NvrSimulator``, all on
127.0.0.1. ``main`` runs in-process; ``monitor`` calls ``trio.run`` itself, so the async tests
run it in a thread while the simulators run in the test's loop. While it runs, the test
reads what it printed so far to know when to scan: ``Output`` (a ``StringIO`` standing in
for stdout and stderr) can be read without consuming it, which ``capsys`` cannot do safely
from another thread. Ctrl-C is tested on a real process.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import trio

from devices.aim_gs1 import decode_scan
from devices.framing import FramingConfig
from devices.serial_scanner import open_serial_port
from devices.simulators.nvr import NvrSimulator
from devices.simulators.printer import PrinterSimulator
from devices.simulators.scanner import PtyScanner, TcpScannerServer, frame
from gateway._daemon import serve_gateway
from gateway._devices_cli_format import attach_live, format_scan, visible
from gateway._settings import load_settings
from gateway.cli import main
from tests._support import ROOT, write_config

GTIN = "09501101020917"


def station_toml(*, serial: object = None, tcp_port: int | None = None, printer_port: int | None = None,
                 nvr: NvrSimulator | None = None, password: str | None = None, name: str = "A1") -> str:
    """``[stations.NAME]`` with the devices given (and ``[nvrs.main]``, filmed on channel 2)."""
    text = '[packline]\ntenant = "t1"\n' if name == "A1" else ""  # once per file
    if nvr is not None:
        text += (f'[nvrs.main]\nurl = "{nvr.url}"\nusername = "{nvr.auth.username}"\n'
                 f'password = "{password or nvr.auth.password}"\ntimeout_s = 2.0\n')
    text += f"[stations.{name}]\n" + ('nvr = "main"\nnvr_channel = 2\n' if nvr is not None else "")
    if serial is not None:
        text += f'[[stations.{name}.scanners]]\nkind = "serial"\npath = "{serial}"\n'
    if tcp_port is not None:
        text += f'[[stations.{name}.scanners]]\nkind = "tcp_client"\nhost = "127.0.0.1"\nport = {tcp_port}\n'
    if printer_port is not None:
        text += f'[stations.{name}.printer]\nhost = "127.0.0.1"\nport = {printer_port}\ntimeout_s = 2.0\n'
    return text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Output(io.StringIO):
    """stdout and stderr of an in-process command, readable while it runs."""

    async def wait_for(self, text: str, after: int = 0) -> int:
        """Until ``text`` was printed (after position ``after``); returns the position after it."""
        while (found := self.getvalue().find(text, after)) < 0:  # noqa: ASYNC110  (written by another thread)
            await trio.sleep(0.01)
        return found + len(text)


def capture(monkeypatch: pytest.MonkeyPatch) -> tuple[Output, Output]:
    """(stdout, stderr) of in-process commands, readable while they run.

    Called in the test itself: pytest sets its own ``sys.stdout`` again when the test
    starts, after the fixtures.
    """
    out, err = Output(), Output()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return out, err


# -- monitor ---------------------------------------------------------------------------------


async def test_monitor_prints_each_scan_decoded_and_follows_an_unplugged_scanner(tmp_path, monkeypatch):
    out, err = capture(monkeypatch)
    link = tmp_path / "usb-Datalogic_QD2430_S01-if00"
    tcp = TcpScannerServer()
    with PtyScanner(link) as pty, trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(tcp.serve)
            config = write_config(tmp_path, station_toml(serial=link, tcp_port=port))
            status: list[int] = []
            done = trio.Event()

            async def monitor() -> None:
                args = ["devices", "monitor", "A1", "--count", "4", "--seconds", "15", "--config", str(config)]
                status.append(await trio.to_thread.run_sync(main, args))
                done.set()

            nursery.start_soon(monitor)
            said = await err.wait_for(f"scanner {link} open")
            await tcp.wait_connected()
            await pty.send(frame(f"01{GTIN}17271231\x1d10LOT-42", aim="]C1"))
            await out.wait_for(f"GTIN {GTIN}  01={GTIN} 17=271231 10=LOT-42")
            await tcp.send(frame("SF1234567890", aim="]C0"))
            await out.wait_for("SF1234567890")
            pty.unplug()
            said = await err.wait_for(f"scanner {link} unplugged", said)
            pty.plug()
            await err.wait_for(f"scanner {link} back", said)
            await pty.send(frame("9501101020918", aim="]E0"))  # a smudged EAN-13
            await out.wait_for("ERROR: ")
            await tcp.send(frame(f"01{GTIN}21SN0001", aim="]d2"))
            await out.wait_for("21=SN0001")
            await done.wait()
            nursery.cancel_scope.cancel()
    assert status == [0]
    scans = out.getvalue().splitlines()
    assert len(scans) == 4, scans
    assert f"{link}  GS1-128 ]C1  01{GTIN}17271231<GS>10LOT-42" in scans[0]
    assert "tcp:127.0.0.1:" in scans[1] and "Code 128 ]C0  SF1234567890" in scans[1]
    assert "check digit" in scans[2]
    assert "GS1 DataMatrix ]d2" in scans[3] and f"GTIN {GTIN}" in scans[3]
    assert "4 read(s) from station A1; ended by 4 reads" in err.getvalue().splitlines()[-1]


def test_monitor_says_who_holds_a_scanner_another_process_has_open(tmp_path, capsys):
    link = tmp_path / "usb-Honeywell_1900-if00"
    with PtyScanner(link):
        config = write_config(tmp_path, station_toml(serial=link))
        holder = open_serial_port(str(link))  # the running gateway has the port
        try:
            assert main(["devices", "monitor", "A1", "--seconds", "10", "--config", str(config)]) == 1
        finally:
            holder.close()
    err = capsys.readouterr().err
    assert f"another process (the running gateway?) holds scanner {link}" in err
    assert "what to do: stop it first" in err


def test_monitor_ends_after_seconds_and_fails_when_count_was_not_reached(tmp_path, capsys):
    config = write_config(tmp_path, station_toml(serial=tmp_path / "usb-not-plugged-in"))
    assert main(["devices", "monitor", "A1", "--count", "1", "--seconds", "0.3", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "not connected" in err and "waiting for it" in err
    assert "0 read(s) from station A1; ended by 0.3 s (wanted 1)" in err
    assert main(["devices", "monitor", "A1", "--seconds", "0.2", "--config", str(config)]) == 0


def test_unknown_station_names_the_configured_ones_and_no_station_says_how_to_add_one(tmp_path, capsys):
    config = write_config(tmp_path, station_toml(tcp_port=9))
    assert main(["devices", "monitor", "B7", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "no station 'B7'" in err and "(configured: A1)" in err
    (tmp_path / "bare").mkdir()
    bare = write_config(tmp_path / "bare")
    assert main(["devices", "test-print", "A1", "--config", str(bare)]) == 1
    err = capsys.readouterr().err
    assert "no stations are configured" in err and "[stations.NAME]" in err and "gateway/_settings/stations.py" in err


async def test_ctrl_c_ends_monitor_with_status_0(tmp_path):
    tcp = TcpScannerServer()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(tcp.serve)
            config = write_config(tmp_path, station_toml(tcp_port=port))
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "gateway", "devices", "monitor", "A1", "--config", str(config)],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            assert process.stdout is not None
            seen = b""

            async def read_until(text: bytes) -> None:
                nonlocal seen
                while text not in seen:
                    chunk = await process.stdout.receive_some(4096)  # type: ignore[union-attr]
                    assert chunk, seen.decode()
                    seen += chunk

            await tcp.wait_connected()
            await read_until(b"open: scan something")
            await tcp.send(frame("SF1234567890", aim="]C0"))
            await read_until(b"SF1234567890")
            process.send_signal(signal.SIGINT)
            await read_until(b"ended by Ctrl-C")
            assert await process.wait() == 0
            nursery.cancel_scope.cancel()


# -- test-print ------------------------------------------------------------------------------


async def test_test_print_reports_paper_out_then_sends_the_label(tmp_path, capsys):
    printer = PrinterSimulator()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(printer.serve_tcp)
            config = write_config(tmp_path, station_toml(tcp_port=9, printer_port=port))
            args = ["devices", "test-print", "A1", "--config", str(config)]
            printer.paper_out = True
            assert await trio.to_thread.run_sync(main, args) == 1
            out = capsys.readouterr().out
            assert f"printer tcp:127.0.0.1:{port}: refused: paper out" in out
            assert "what to do: load paper (labels) and try again" in out
            assert not printer.labels
            printer.paper_out = False
            assert await trio.to_thread.run_sync(main, args) == 0
            out = capsys.readouterr().out
            assert f"printer tcp:127.0.0.1:{port}: sent" in out
            (label,) = printer.printed()
            assert label.fields is not None and any(f.startswith("Order TEST-") for f in label.fields)
            assert any("Station A1" in f for f in label.fields)
            nursery.cancel_scope.cancel()


def test_test_print_of_a_station_without_a_printer(tmp_path, capsys):
    config = write_config(tmp_path, station_toml(tcp_port=9))
    assert main(["devices", "test-print", "A1", "--config", str(config)]) == 1
    assert "station A1 has no printer" in capsys.readouterr().err


# -- nvr-check -------------------------------------------------------------------------------


def test_nvr_check_refuses_a_wrong_password_without_retrying(tmp_path, capsys):
    with NvrSimulator() as nvr:
        config = write_config(tmp_path, station_toml(tcp_port=9, nvr=nvr, password="not-it"))
        assert main(["devices", "nvr-check", "main", "--config", str(config)]) == 1
        assert nvr.auth_failures == 1
    err = capsys.readouterr().err
    assert "wrong username or password" in err and "what to do: check username and password" in err


def test_nvr_check_warns_of_a_drifting_clock_and_finds_the_clip(tmp_path, capsys):
    with NvrSimulator(clock_offset_s=40.0) as nvr:
        now = datetime.now(UTC)
        nvr.record_segments(2, now - timedelta(minutes=15), 300, 4)  # 15 min ago .. 5 min ahead
        config = write_config(tmp_path, station_toml(tcp_port=9, nvr=nvr))
        assert main(["devices", "nvr-check", "main", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    # the NVR's clock has whole seconds: the offset measured is 40 s give or take the second's fraction
    assert re.search(r"login OK, clock offset \+(39|40)\.\d s", out), out
    assert re.search(r"warning: the NVR's clock is (39|40|41) s off \(ahead\): set NTP on it; the gateway corrects",
                     out), out
    assert "channel 2 (station A1): clip " in out and "from 3 recording(s)" in out and "gaps" not in out


def test_nvr_check_of_a_channel_without_recordings_and_of_an_unknown_nvr(tmp_path, capsys):
    with NvrSimulator() as nvr:
        config = write_config(tmp_path, station_toml(tcp_port=9, nvr=nvr))
        assert main(["devices", "nvr-check", "main", "--config", str(config)]) == 1
        out = capsys.readouterr().out
        assert "clock offset +0" in out or "clock offset -0" in out
        assert "warning" not in out and "channel 2 (station A1): no recordings in the last 10 minutes" in out
        assert main(["devices", "nvr-check", "backup", "--config", str(config)]) == 1
    assert "no NVR 'backup'" in capsys.readouterr().err


# -- list ------------------------------------------------------------------------------------


def test_list_shows_ports_input_devices_and_configured_devices_with_no_gateway_running(tmp_path, capsys):
    serial_dir, input_dir = tmp_path / "serial-by-id", tmp_path / "input-by-id"
    serial_dir.mkdir()
    input_dir.mkdir()
    with PtyScanner(serial_dir / "usb-Honeywell_1900-if00") as pty:
        (input_dir / "usb-Zebra_DS2208-event-kbd").symlink_to(os.devnull)
        (input_dir / "usb-Logitech_Mouse-event-mouse").symlink_to(os.devnull)
        missing = serial_dir / "usb-Datalogic-if00"
        stations = station_toml(serial=pty.path, tcp_port=5000) + station_toml(serial=missing, name="B2")
        config = write_config(tmp_path, stations, port=free_port())
        options = ["--config", str(config), "--serial-dir", str(serial_dir), "--input-dir", str(input_dir)]
        assert main(["devices", "list", *options]) == 0
        out = capsys.readouterr().out
        assert f"usb-Honeywell_1900-if00 -> {pty.tty_path}  [A1 scanner]" in out
        assert f"usb-Zebra_DS2208-event-kbd -> {os.devnull}" in out and "Mouse" not in out
        assert "configured devices (gateway not running):" in out
        assert f"A1       scanner  serial      {pty.path}  present" in out
        assert "A1       scanner  tcp_client  tcp:127.0.0.1:5000" in out
        assert f"B2       scanner  serial      {missing}  missing (not plugged in?)" in out
        assert main(["devices", "list", "--json", *options]) == 0
        report = orjson.loads(capsys.readouterr().out)
        assert report["gateway"]["running"] is False and [d["present"] for d in report["stations"]] == [
            True, None, False]
    nowhere = ["--serial-dir", str(tmp_path / "no-serial"), "--input-dir", str(tmp_path / "no-input")]
    assert main(["devices", "list", "--config", str(config), *nowhere]) == 0
    assert capsys.readouterr().out.count("  none found") == 2


async def test_list_shows_the_running_gateways_live_state(tmp_path, capsys):
    scanner, printer = TcpScannerServer(), PrinterSimulator()
    with NvrSimulator(clock_offset_s=40.0) as nvr, trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            scanner_port = await nursery.start(scanner.serve)
            printer_port = await nursery.start(printer.serve_tcp)
            printer.paper_out = True
            api_port = free_port()
            config = write_config(tmp_path, station_toml(tcp_port=scanner_port, printer_port=printer_port, nvr=nvr),
                                  port=api_port)
            services = await nursery.start(serve_gateway, load_settings(config), trio.Event())
            while not all(state.state == "up" for state in services.devices):  # noqa: ASYNC110
                await trio.sleep(0.02)
            await scanner.send(frame("SF1", aim="]C0"))

            async def listing() -> str:
                args = ["devices", "list", "--config", str(config), "--serial-dir", str(tmp_path / "none")]
                assert await trio.to_thread.run_sync(main, args) == 0
                return capsys.readouterr().out

            while "1 events" not in (out := await listing()):  # noqa: ASYNC110  (polling, as an installer would)
                await trio.sleep(0.05)
            assert f"configured devices (gateway running at http://127.0.0.1:{api_port}):" in out
            assert f"A1       scanner  tcp_client  tcp:127.0.0.1:{scanner_port}  up since " in out
            assert f"A1       printer  tcp         tcp:127.0.0.1:{printer_port}  up since " in out
            assert "[paper out]" in out
            nvr_line = r"A1       nvr      isapi       main channel 2  up since .*\[clock offset \+(39|40)"
            assert re.search(nvr_line, out), out
            nursery.cancel_scope.cancel()


# -- the pure part -----------------------------------------------------------------------------


def test_a_live_device_the_daemon_names_differently_is_matched_by_its_kind():
    configured = [{"station": "A1", "kind": "nvr", "device": "nvr main channel 2", "live": None},
                  {"station": "A1", "kind": "scanner", "device": "s1", "live": None},
                  {"station": "A1", "kind": "scanner", "device": "s2", "live": None}]
    live = [{"station": "A1", "kind": "nvr", "device": "main/2"}, {"station": "A1", "kind": "scanner", "device": "s2"},
            {"station": "A1", "kind": "scanner", "device": "tcp:10.0.0.9:4000"}]
    attach_live(configured, live)
    assert [d["live"] for d in configured] == [live[0], None, live[1]]  # two scanners: only by name


def test_a_scan_line_shows_control_characters_and_every_element():
    scan = decode_scan(b"]C1" + f"01{GTIN}3103000250\x1d10LOT-42".encode(), FramingConfig(),
                       station="A1", device_id="tcp:127.0.0.1:4000", received_at_ms=0)
    line = format_scan(scan)
    assert f"tcp:127.0.0.1:4000  GS1-128 ]C1  01{GTIN}3103000250<GS>10LOT-42  GTIN {GTIN}" in line
    assert line.endswith(f"01={GTIN} 3103=000250 10=LOT-42")
    assert visible("a\tb\r\x07") == "a<TAB>b<CR><x07>"
    broken = decode_scan(b"]E09501101020918", FramingConfig(), station="A1", device_id="s1", received_at_ms=0)
    assert "EAN-13/UPC-A/UPC-E ]E0  9501101020918  ERROR: " in format_scan(broken)


def test_list_names_each_keyboard_wedges_layout(tmp_path, capsys):
    wedge = tmp_path / "usb-Zebra_DS2208-event-kbd"
    stations = station_toml(name="A1") + (
        f'[[stations.A1.scanners]]\nkind = "hid"\npath = "{wedge}"\nlayout = "de"\n'
        'keys = { KEY_Q = ["q", "Q", "@"] }\n'
        f'[[stations.A1.scanners]]\nkind = "hid"\npath = "{wedge}-2"\n')
    config = write_config(tmp_path, stations, port=free_port())
    nowhere = ["--serial-dir", str(tmp_path / "no-serial"), "--input-dir", str(tmp_path / "no-input")]
    assert main(["devices", "list", "--config", str(config), *nowhere]) == 0
    out = capsys.readouterr().out
    assert f"A1       scanner  hid/de+keys {wedge}" in out
    assert f"A1       scanner  hid/us      {wedge}-2" in out
