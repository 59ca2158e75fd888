"""The serial scanner driver on real pseudo-terminals: reads, framing, unplug and replug, fuzz."""

from __future__ import annotations

import functools
import os

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.framing import Framer, FramingConfig
from devices.reopen import run_with_reopen
from devices.scan import Scan
from devices.serial_scanner import open_serial_port, serve_serial_scanner
from devices.simulators.scanner import PtyScanner, frame
from gateway._backoff import Backoff
from gateway._errors import DeviceUnavailableError

GTIN = "09501101020917"


async def receive(channel: trio.MemoryReceiveChannel[Scan], count: int = 1, timeout_s: float = 5.0) -> list[Scan]:
    with trio.fail_after(timeout_s):
        return [await channel.receive() for _ in range(count)]


async def test_reads_arrive_as_scans_whatever_the_chunking(tmp_path):
    link = tmp_path / "usb-Datalogic_Scanner_S123-if00"
    send, scans = trio.open_memory_channel[Scan](100)
    with PtyScanner(link) as scanner, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_serial_scanner, str(link), send, station="A1"))
            two_reads = frame(f"01{GTIN}\x1d10LOT1", aim="]C1") + frame("SF1001", aim="]C0")
            await scanner.send(two_reads[:7])  # half a read...
            await trio.sleep(0.02)
            await scanner.send(two_reads[7:])  # ...then the rest and a second one in one write
            first, second = await receive(scans, 2)
            assert first.ok and first.gtin == GTIN and first.element("10") == "LOT1"
            assert first.device_id == str(link) and first.station == "A1"
            assert second.ok and second.text == "SF1001" and second.symbology == "]C0"
            nursery.cancel_scope.cancel()


async def test_no_terminator_reads_end_on_the_idle_gap(tmp_path):
    send, scans = trio.open_memory_channel[Scan](100)
    framing = FramingConfig(terminator="none", idle_gap_s=0.03)
    with PtyScanner() as scanner, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_serial_scanner, scanner.path, send, station="A1",
                                                  framing=framing))
            await scanner.send(b"]E0950110")
            await scanner.send(b"1020917")
            (scan,) = await receive(scans)
            assert scan.ok and scan.gtin == GTIN
            nursery.cancel_scope.cancel()


async def test_a_slow_consumer_slows_reading_but_loses_nothing():
    send, scans = trio.open_memory_channel[Scan](1)
    with PtyScanner() as scanner, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_serial_scanner, scanner.path, send, station="A1"))
            await scanner.send(b"".join(frame(f"ORDER-{n}", aim="]C0") for n in range(50)))
            got = []
            for _ in range(50):
                got.append((await receive(scans))[0].text)
                await trio.sleep(0.001)  # the consumer is slower than the scanner
            assert got == [f"ORDER-{n}" for n in range(50)]
            nursery.cancel_scope.cancel()


async def test_a_missing_port_is_unavailable(tmp_path):
    send, _ = trio.open_memory_channel[Scan](1)
    with pytest.raises(DeviceUnavailableError, match="cannot open serial port"):
        await serve_serial_scanner(str(tmp_path / "no-such-scanner"), send, station="A1")


async def test_unplug_sends_the_partial_read_and_raises_unavailable():
    send, scans = trio.open_memory_channel[Scan](10)
    raised: list[DeviceUnavailableError] = []

    async def serve(path: str, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve_serial_scanner(path, send, station="A1", task_status=task_status)
        except DeviceUnavailableError as exc:
            raised.append(exc)

    with PtyScanner() as scanner, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, scanner.path)
            await scanner.send(b"]E09501")
            await trio.sleep(0.02)
            scanner.unplug()
            (partial,) = await receive(scans)
            assert partial.raw == b"]E09501" and "went away" in (partial.error or "")
    assert len(raised) == 1 and raised[0].device == scanner.path


async def test_unplug_and_replug_on_the_same_by_id_path_resumes_scans(tmp_path):
    """The pty is closed (EIO/EOF) and a new one appears behind the same link, as udev does."""
    link = tmp_path / "usb-Honeywell_1900-if00"
    send, scans = trio.open_memory_channel[Scan](100)
    opened = trio.Event()
    outages: list[DeviceUnavailableError] = []

    def on_open() -> None:
        opened.set()

    scanner = PtyScanner(link)
    scanner.plug()
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                serve = functools.partial(serve_serial_scanner, str(link), send, station="A1")
                await nursery.start(functools.partial(
                    run_with_reopen, serve, device=str(link), backoff=Backoff(0.01, 0.05),
                    on_open=on_open, on_unavailable=lambda error, delay: outages.append(error)))
                await scanner.send(frame("BEFORE", aim="]C0"))
                assert (await receive(scans))[0].text == "BEFORE"

                scanner.unplug()
                await trio.sleep(0.2)  # the link is gone: several reopen attempts fail
                assert len(outages) >= 2 and any("cannot open" in e.message for e in outages)
                opened = trio.Event()
                scanner.plug()  # a new /dev/pts/N behind the same link
                await opened.wait()
                await scanner.send(frame("AFTER", aim="]C0"))
                (after,) = await receive(scans)
                assert after.ok and after.text == "AFTER" and after.device_id == str(link)
                nursery.cancel_scope.cancel()
    finally:
        scanner.unplug()


def run_pty_fuzz(data: bytes, framing: FramingConfig) -> tuple[list[bytes], list[bytes]]:
    """Write ``data`` + a sentinel read through a real pty; return (received raws, expected raws)."""
    sentinel = b"\r]C0END-OF-FUZZ\r"

    async def main() -> list[bytes]:
        send, scans = trio.open_memory_channel[Scan](10_000)
        got: list[bytes] = []
        with PtyScanner() as scanner, trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                await nursery.start(functools.partial(serve_serial_scanner, scanner.path, send, station="F",
                                                      framing=framing))
                await scanner.send(data + sentinel)
                while not got or got[-1] != b"]C0END-OF-FUZZ":
                    scan = await scans.receive()
                    assert isinstance(scan, Scan) and (scan.ok or scan.error)
                    got.append(scan.raw)
                nursery.cancel_scope.cancel()
        return got

    expected = [f.data for f in Framer(framing).feed(data + sentinel, 0.0)]
    return trio.run(main), expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from([b"]", b"]C1", b"]E0", b"]d2", b"01", b"0950110102091", b"8", b"\x1d", b"\r",
                              b"10", b"17", b"991399", b"\xff", b"\x00", b"\x03", b"\n"]), max_size=40).map(b"".join),
))
def test_fuzzed_input_through_a_real_pty_never_crashes_and_loses_no_read(data):
    got, expected = run_pty_fuzz(data, FramingConfig(max_frame_bytes=64, partial_timeout_s=5.0))
    assert got == expected


def test_the_pty_is_really_a_tty():
    with PtyScanner() as scanner:
        fd = os.open(scanner.path, os.O_RDONLY | os.O_NOCTTY)
        try:
            assert os.isatty(fd)
        finally:
            os.close(fd)


async def test_a_port_another_reader_holds_is_unavailable():
    send, _ = trio.open_memory_channel[Scan](1)
    with PtyScanner() as scanner:
        holder = open_serial_port(scanner.path)  # e.g. a second gateway on the same port
        try:
            with pytest.raises(DeviceUnavailableError, match="lock"):
                await serve_serial_scanner(scanner.path, send, station="A1")
        finally:
            holder.close()
