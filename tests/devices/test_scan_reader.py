"""The shared read loop: deadlines, end of file, vanished devices, backpressure (no real I/O)."""

from __future__ import annotations

import errno
import math
import os

import pytest
import trio

from devices.framing import FramingConfig
from devices.scan import Scan
from devices.scan_reader import ScanAssembler, fd_chunks, read_scans
from gateway._errors import DeviceError, DeviceUnavailableError


def scripted(*steps: bytes | float | Exception):
    """A chunk reader playing a script: bytes are returned, floats slept, exceptions raised."""
    queue = list(steps)

    async def read_chunk() -> bytes:
        while queue:
            step = queue.pop(0)
            if isinstance(step, float):
                await trio.sleep(step)
            elif isinstance(step, Exception):
                raise step
            else:
                return step
        await trio.sleep_forever()
        raise AssertionError

    return read_chunk


def assembler(**config) -> ScanAssembler:
    return ScanAssembler(FramingConfig(**config), station="S", device_id="dev", wall_ms=lambda: 7)


def test_assembler_frames_and_decodes():
    asm = assembler()
    scans = asm.feed(b"]E09501101020917\r]C0AB", now=1.0)
    assert [s.gtin for s in scans] == ["09501101020917"] and scans[0].received_at_ms == 7
    assert asm.deadline() == 3.0 and asm.expire(2.9) == []
    (partial,) = asm.expire(3.0)
    assert partial.text == "AB" and "no terminator" in (partial.error or "")
    assert asm.close() == [] and asm.deadline() == math.inf and "dev" in repr(asm)


async def test_idle_gap_ends_a_read_without_terminator(autojump_clock):
    send, scans = trio.open_memory_channel[Scan](10)
    reader = scripted(b"]C0AB", 0.01, b"CD")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_scans, reader, assembler(terminator="none", idle_gap_s=0.05), send)
        with trio.fail_after(1):
            scan = await scans.receive()
        assert scan.ok and scan.text == "ABCD" and trio.current_time() == pytest.approx(0.06)
        nursery.cancel_scope.cancel()


async def test_end_of_file_flushes_the_partial_and_raises(autojump_clock):
    send, scans = trio.open_memory_channel[Scan](10)
    with pytest.raises(DeviceUnavailableError, match="end of file"):
        await read_scans(scripted(b"]C0OK\r]C0CU", b""), assembler(), send)
    assert [s.text for s in (scans.receive_nowait(), scans.receive_nowait())] == ["OK", "CU"]


async def test_a_vanished_device_flushes_the_partial_and_reraises():
    send, scans = trio.open_memory_channel[Scan](10)
    with pytest.raises(DeviceUnavailableError, match="EIO"):
        await read_scans(scripted(b"]C0HAL", DeviceUnavailableError("dev", "read failed (EIO)")), assembler(), send)
    assert "went away" in (scans.receive_nowait().error or "")


async def test_fd_chunks_reads_a_non_blocking_fd_until_end_of_file():
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    try:
        os.write(write_fd, b"abc")
        read_chunk = fd_chunks(read_fd, "pipe")
        assert await read_chunk() == b"abc"
        os.close(write_fd)
        assert await read_chunk() == b""  # end of file: the caller raises DeviceUnavailableError
    finally:
        os.close(read_fd)


async def test_fd_chunks_maps_read_errors_to_unavailable(monkeypatch):
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"x")

    def eio(fd: int, size: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "read", eio)  # a USB-serial adapter pulled mid-read
    try:
        with pytest.raises(DeviceUnavailableError, match="EIO") as raised:
            await fd_chunks(read_fd, "/dev/serial/by-id/x")()
        assert raised.value.device == "/dev/serial/by-id/x"
    finally:
        monkeypatch.undo()
        os.close(read_fd)
        os.close(write_fd)


async def test_fd_chunks_refuses_what_cannot_be_polled(tmp_path):
    regular = os.open(tmp_path / "capture.bin", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(DeviceError, match="cannot wait") as raised:
            await fd_chunks(regular, "capture.bin")()
        assert not isinstance(raised.value, DeviceUnavailableError)  # config error: no point reopening
    finally:
        os.close(regular)


def test_a_repeated_read_reuses_its_decoding_but_gets_its_own_time():
    clock = iter([100, 200, 300])
    asm = ScanAssembler(FramingConfig(), station="S", device_id="dev", wall_ms=lambda: next(clock))
    (first,) = asm.feed(b"]d20109501101020917\x1d10L1\r", 0.0)
    (again,) = asm.feed(b"]d20109501101020917\x1d10L1\r", 0.0)
    assert (first.received_at_ms, again.received_at_ms) == (100, 200)
    assert again == first.__class__(**{**{f: getattr(first, f) for f in first.__dataclass_fields__},
                                       "received_at_ms": 200})
    (partial,) = asm.feed(b"]C0X", 0.0) + asm.close()
    assert partial.received_at_ms == 300 and not partial.ok
