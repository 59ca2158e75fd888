"""The doctor's ``devices`` check: every configured device present and answering.

Per station, as ``gateway devices`` names them (``configured_devices``):

* a serial scanner, printer or scale: its path exists and the port opens (a port locked by
  the running gateway counts as present: the gateway has it);
* a keyboard-wedge (hid) scanner: its ``/dev/input/by-id`` link exists and can be opened;
* a TCP scanner the gateway connects to: a TCP connection is accepted (one the gateway
  listens on: nothing to check before it runs);
* a printer: ``~HS`` is answered and says it can print ("paper out" is a failure with what
  to do, from ``printer_advice``);
* an NVR: the login (digest auth) works; its clock offset goes to the ``clock`` check.

The NVR's login is asked once per run (``nvr_login``, remembered in the context) and with a
single attempt: NVRs lock an account after a few failed logins.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

import trio

from gateway._appliance.doctor_core import DoctorContext, Findings
from gateway._devices_cli_format import STATIONS_REFERENCE, printer_advice
from gateway._errors import DeviceAuthError, DeviceError
from gateway._settings import PrinterSection, ScannerSection, Settings

#: errno values that mean another process holds the device (a locked port, a grabbed input).
_TAKEN = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY})
_DENIED = frozenset({errno.EACCES, errno.EPERM})
TCP_CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class NvrLogin:
    """One NVR's login as the doctor saw it.

    Attributes:
        offset_s: its clock minus ours, when the login worked.
        problem: why it did not ("" when it did).
        auth_refused: the NVR refused the username or password.
    """

    offset_s: float | None
    problem: str = ""
    auth_refused: bool = False


async def nvr_login(ctx: DoctorContext, name: str) -> NvrLogin:
    """Log in to ``[nvrs.NAME]`` and measure its clock, once per run."""
    from gateway._packline.devices import nvr_client

    async def ask() -> NvrLogin:
        section = ctx.settings.nvrs[name]
        client = nvr_client(name, section)
        client.attempts = 1  # one login per run: NVRs lock accounts after a few failures
        try:
            with trio.move_on_after(section.timeout_s + 1.0):
                return NvrLogin(await client.clock_offset())
            return NvrLogin(None, f"no answer within {section.timeout_s + 1.0:g} s")
        except DeviceAuthError as exc:
            return NvrLogin(None, exc.message, auth_refused=True)
        except DeviceError as exc:
            return NvrLogin(None, exc.message)
        finally:
            await client.aclose()

    login: NvrLogin = await ctx.once(f"nvr:{name}", ask)
    return login


def _open_serial(path: str, baudrate: int) -> None:
    from devices.serial_port import open_serial_port

    open_serial_port(path, baudrate).close()


def _open_input(path: str) -> None:
    os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))


def _errno_of(exc: BaseException) -> int | None:
    """The errno of ``exc`` or of the first exception it was raised from that has one."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, OSError) and current.errno is not None:
            return current.errno
        current = current.__cause__
    return None


async def _check_path(ctx: DoctorContext, found: Findings, subject: str, path: str, kind: str,
                      baudrate: int = 9600) -> bool:
    """The device node exists and opens; False (with a finding) when not."""
    group = "input" if kind == "hid" else "dialout"
    if not await trio.Path(path).exists():
        found.fail(f"{path} does not exist (not plugged in, or another path)",
                   "plug it in; `gateway devices list` shows the ports found: put its /dev/serial/by-id/... (or "
                   f"/dev/input/by-id/...) link in the config (see {STATIONS_REFERENCE})", subject=subject)
        return False
    try:
        opener = _open_input if kind == "hid" else (lambda p: _open_serial(p, baudrate))
        with trio.fail_after(TCP_CONNECT_TIMEOUT_S):
            await trio.to_thread.run_sync(opener, path, abandon_on_cancel=True)
    except trio.TooSlowError:
        found.fail(f"{path} did not open within {TCP_CONNECT_TIMEOUT_S:g} s", "unplug and re-plug it (a hung USB "
                   "adapter), then run the doctor again", subject=subject)
        return False
    except (DeviceError, OSError) as exc:
        code = _errno_of(exc)
        if code in _TAKEN or "lock" in str(exc).lower():
            running = await ctx.running_gateway()
            if running:
                found.ok(f"{path} is present and held by the running gateway", subject=subject)
                return False
            found.fail(f"{path} is held by another program ({exc})", "stop the program that has it open "
                       f"(`fuser -v {path}` names it): the gateway needs it alone", subject=subject)
            return False
        if code in _DENIED:
            found.fail(f"no permission to open {path}", f"add the gateway's user to the {group!r} group "
                       f"(`usermod -aG {group} edge-gateway`), then restart the gateway", subject=subject)
            return False
        found.fail(f"{path} does not open: {exc}", "check that it is the scanner's, printer's or scale's port "
                   "(`gateway devices list`), and its baudrate", subject=subject)
        return False
    return True


async def _check_tcp(found: Findings, subject: str, host: str, port: int) -> None:
    try:
        with trio.fail_after(TCP_CONNECT_TIMEOUT_S):
            stream = await trio.open_tcp_stream(host, port)
        await stream.aclose()
    except (OSError, trio.TooSlowError) as exc:
        found.fail(f"nothing accepts a connection at {host}:{port} ({str(exc) or 'timed out'})",
                   "check that the device is on and on the network, and its host/port in the config", subject=subject)
        return
    found.ok(f"accepts a connection at {host}:{port}", subject=subject)


async def _check_scanner(ctx: DoctorContext, found: Findings, station: str, scanner: ScannerSection) -> None:
    subject = f"{station} scanner {scanner.device_id}"
    if scanner.kind in ("serial", "hid"):
        if await _check_path(ctx, found, subject, scanner.path, scanner.kind, scanner.baudrate):
            found.ok(f"{scanner.path} is present and opens", subject=subject)
    elif scanner.kind == "tcp_client":
        await _check_tcp(found, subject, scanner.host, scanner.port)
    else:
        found.ok(f"the gateway listens for it on {scanner.host}:{scanner.port}", subject=subject)


async def _check_printer(ctx: DoctorContext, found: Findings, station: str, section: PrinterSection) -> None:
    from gateway._packline.devices import printer_of

    subject = f"{station} printer {section.device_id}"
    if section.kind == "serial" and not await _check_path(ctx, found, subject, section.path, "serial",
                                                          section.baudrate):
        return
    printer = printer_of(station, section)
    try:
        with trio.fail_after(section.timeout_s * 2 + 1.0):
            status = await printer.status()
    except (DeviceError, trio.TooSlowError) as exc:
        reason = exc.message if isinstance(exc, DeviceError) else "no answer in time"
        found.fail(f"~HS not answered: {reason}", printer_advice("printer not reachable"), subject=subject)
        return
    if status.ready:
        found.ok("~HS answered: ready", subject=subject)
        return
    reason = ", ".join(status.reasons)
    found.fail(f"~HS answered: {reason}", printer_advice(reason), subject=subject, reasons=list(status.reasons))


async def _check_nvr(ctx: DoctorContext, found: Findings, name: str) -> None:
    subject = f"nvr {name}"
    section = ctx.settings.nvrs[name]
    login = await nvr_login(ctx, name)
    if login.auth_refused:
        found.fail(f"{section.url} refused the username or password ({login.problem})",
                   f"check username and password (password_env / password_file) of [nvrs.{name}]; do not retry in "
                   "a loop: the NVR locks the account after a few failures", subject=subject)
    elif login.problem:
        found.fail(f"{section.url}: {login.problem}", f"check that the NVR is on and reachable from this box, and "
                   f"url of [nvrs.{name}]", subject=subject)
    else:
        found.ok(f"login to {section.url} OK (clock: see the clock check)", subject=subject)


def device_count(settings: Settings) -> int:
    """How many things the ``devices`` check looks at (for its timeout)."""
    stations = settings.stations.values()
    return len(settings.nvrs) + sum(len(s.scanners) + (s.printer is not None) + (s.scale is not None)
                                    for s in stations)


async def check_devices(ctx: DoctorContext, found: Findings) -> None:
    """Every configured device present and answering (module docstring)."""
    settings = ctx.settings
    if not settings.stations and not settings.nvrs:
        found.ok("no stations configured")
        return
    if settings.demo.enabled and settings.demo.devices and not await ctx.running_gateway():
        found.ok("[demo] devices: the gateway simulates them itself (checked while it runs)")
        return
    for station, config in settings.stations.items():
        for scanner in config.scanners:
            ctx.progress(f"devices: {station} scanner {scanner.device_id}")
            await _check_scanner(ctx, found, station, scanner)
        if config.printer is not None:
            ctx.progress(f"devices: {station} printer {config.printer.device_id}")
            await _check_printer(ctx, found, station, config.printer)
        if config.scale is not None:
            subject = f"{station} scale {config.scale.path}"
            if await _check_path(ctx, found, subject, config.scale.path, "serial", config.scale.baudrate):
                found.ok(f"{config.scale.path} is present and opens", subject=subject)
    for name in settings.nvrs:
        ctx.progress(f"devices: nvr {name}")
        await _check_nvr(ctx, found, name)


__all__ = ["NvrLogin", "check_devices", "device_count", "nvr_login"]
