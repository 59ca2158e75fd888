"""The ZPL printer driver against the printer simulator, over real TCP sockets and a pty."""

from __future__ import annotations

import os
import tty
from datetime import UTC, datetime

import pytest
import trio

from devices.printer import ZplPrinter
from devices.simulators.printer import PrinterSimulator, open_printer_simulator
from devices.zpl import LabelData, render_label
from gateway._errors import DeviceUnavailableError

LABEL = render_label(LabelData("DY-1001", "PG-7", "station-3", datetime(2026, 12, 4, 18, 30, tzinfo=UTC),
                               waybill="SF1234567890"))


def printer_for(simulator: PrinterSimulator, **timeouts: float) -> ZplPrinter:
    return ZplPrinter.tcp("label-1", "127.0.0.1", simulator.port, **timeouts)


async def test_ready_printer_gets_the_label_and_reads_it_back():
    with trio.fail_after(10):
        async with open_printer_simulator() as simulator:
            result = await printer_for(simulator).print_label(LABEL)
            assert result.outcome == "sent" and result.reason == ""
            assert result.status is not None and result.status.ready
            assert len(simulator.printed()) == 1
            assert "QA,SF1234567890" in (simulator.labels[0].fields or ())
            # one ~HS before the job, one after it to confirm receipt
            assert simulator.status_requests == 2


async def test_paper_out_refuses_then_prints_when_paper_is_back():
    with trio.fail_after(10):
        async with open_printer_simulator() as simulator:
            printer = printer_for(simulator)
            simulator.paper_out = True
            refused = await printer.print_label(LABEL)
            assert refused.outcome == "refused"
            assert refused.reason == "paper out"
            assert simulator.labels == []            # nothing reached the printer
            simulator.paper_out = False
            sent = await printer.print_label(LABEL)
            assert sent.outcome == "sent"
            assert len(simulator.labels) == 1 and simulator.labels[0].blocked_by == ()


async def test_head_open_and_paused_are_both_reported():
    with trio.fail_after(10):
        async with open_printer_simulator() as simulator:
            simulator.head_open = True
            simulator.paused = True
            result = await printer_for(simulator).print_label(LABEL)
            assert result.outcome == "refused"
            assert result.reason == "print head open, paused"
            assert simulator.labels == []


async def test_malformed_zpl_is_refused_without_touching_the_printer():
    with trio.fail_after(10):
        async with open_printer_simulator() as simulator:
            result = await printer_for(simulator).print_label("^XA^FDno end^FS")
            assert result.outcome == "refused" and "^XZ" in result.reason
            assert simulator.connections == 0


async def test_silent_printer_is_refused_after_the_status_timeout():
    with trio.fail_after(10):
        async with open_printer_simulator() as simulator:
            simulator.status_answers_left = 0
            result = await printer_for(simulator, status_timeout_s=0.3).print_label(LABEL)
            assert result.outcome == "refused" and "no status answer" in result.reason
            assert simulator.labels == []


async def test_unreachable_printer_is_refused():
    with trio.fail_after(10):
        async with open_printer_simulator() as simulator:
            port = simulator.port
        result = await ZplPrinter.tcp("label-1", "127.0.0.1", port).print_label(LABEL)
        assert result.outcome == "refused" and result.reason == "printer not reachable"
        with pytest.raises(DeviceUnavailableError, match="label-1"):
            await ZplPrinter.tcp("label-1", "127.0.0.1", port).status()


async def test_cable_pulled_mid_label_is_uncertain_and_never_resent():
    with trio.fail_after(10):
        async with open_printer_simulator() as simulator:
            simulator.cut_after_label_bytes = 100
            result = await printer_for(simulator, status_timeout_s=1).print_label(LABEL)
            assert result.outcome == "uncertain"
            assert simulator.cut_connections == 1
            assert simulator.connections == 1        # the driver did not try again
            assert simulator.labels == []


async def test_printer_that_stops_answering_after_the_label_is_uncertain():
    with trio.fail_after(10):
        async with open_printer_simulator() as simulator:
            simulator.status_answers_left = 1      # answers before the job, not after
            result = await printer_for(simulator, status_timeout_s=0.5).print_label(LABEL)
            assert result.outcome == "uncertain" and "confirm" in result.reason
            assert len(simulator.labels) == 1 and simulator.connections == 1


async def test_jobs_from_two_callers_go_one_at_a_time():
    with trio.fail_after(10):
        async with open_printer_simulator() as simulator:
            printer = printer_for(simulator)
            results = []

            async def job():
                results.append(await printer.print_label(LABEL))

            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(job)
            assert [r.outcome for r in results] == ["sent"] * 3
            assert len(simulator.labels) == 3 and simulator.status_requests == 6


async def test_serial_printer_on_a_pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    simulator = PrinterSimulator("serial-sim")
    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(simulator.handle_stream, trio.lowlevel.FdStream(master))
                printer = ZplPrinter.serial("label-serial", os.ttyname(slave), 115200)
                simulator.paper_out = True
                assert (await printer.print_label(LABEL)).reason == "paper out"
                simulator.paper_out = False
                assert (await printer.print_label(LABEL)).outcome == "sent"
                assert len(simulator.printed()) == 1
                nursery.cancel_scope.cancel()
    finally:
        os.close(slave)
