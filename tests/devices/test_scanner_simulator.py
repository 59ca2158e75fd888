"""The scanner simulators: framing helper, the pty's unplug/replug, the demo scanner."""

from __future__ import annotations

import functools
import os

import trio

from devices.hid_scanner import serve_hid_scanner
from devices.scan import Scan
from devices.simulators.scanner import DEMO_READS, PtyScanner, _demo, frame
from gateway._errors import DeviceUnavailableError


def test_frame_puts_the_parts_in_the_scanners_order():
    assert frame("123", aim="]C0", prefix=b"\x02", suffix=b"#", terminator=b"\r\n") == b"\x02]C0123#\r\n"


def test_a_pty_replugged_behind_the_same_link_is_a_new_tty(tmp_path):
    link = tmp_path / "usb-Scanner-if00"
    scanner = PtyScanner(link)
    first = (scanner.plug(), scanner.tty_path)
    assert os.path.realpath(link) == first[1] and scanner.plugged
    scanner.unplug()
    assert not link.exists() and not scanner.plugged and "unplugged" in repr(scanner)
    scanner.plug()
    assert os.path.realpath(link) == scanner.tty_path and scanner.path == str(link)
    scanner.unplug()


async def test_the_demo_keyboard_wedge_types_its_reads(tmp_path):
    fifo = tmp_path / "demo-kbd"
    os.mkfifo(fifo)
    send, scans = trio.open_memory_channel[Scan](100)

    async def serve(task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve_hid_scanner(str(fifo), send, station="demo", task_status=task_status)
        except DeviceUnavailableError:
            pass  # the demo scanner "unplugs" when it is done

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve)
            nursery.start_soon(functools.partial(_demo, "hid", str(fifo), 0, 0.001, len(DEMO_READS)))
            got = [await scans.receive() for _ in DEMO_READS]
    assert [scan.symbology for scan in got] == [aim for aim, _ in DEMO_READS]
    assert [scan.ok for scan in got] == [True, True, True, True, False]  # the last: bad check digit
