"""TCP scanners both ways round, over loopback sockets: reads, resets, reconnects, fuzz."""

from __future__ import annotations

import functools

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.framing import Framer, FramingConfig
from devices.reopen import run_with_reopen
from devices.scan import Scan
from devices.simulators.scanner import TcpScannerClient, TcpScannerServer, frame
from devices.tcp_scanner import serve_tcp_scanner_client, serve_tcp_scanner_server
from gateway._backoff import Backoff
from gateway._errors import DeviceUnavailableError

GTIN = "09501101020917"
LF = FramingConfig(terminator="lf")


async def receive(channel: trio.MemoryReceiveChannel[Scan], count: int = 1) -> list[Scan]:
    with trio.fail_after(5):
        return [await channel.receive() for _ in range(count)]


async def test_client_mode_reads_lines_from_a_listening_scanner():
    send, scans = trio.open_memory_channel[Scan](100)
    scanner = TcpScannerServer()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(scanner.serve)
            await nursery.start(functools.partial(
                serve_tcp_scanner_client, "127.0.0.1", port, send, station="T1", framing=LF))
            await scanner.wait_connected()
            await scanner.send(frame(f"01{GTIN}", aim="]d2", terminator=b"\n") + b"]C0PART")
            await scanner.send(b"IAL\n")
            first, second = await receive(scans, 2)
            assert first.ok and first.gtin == GTIN and first.device_id == f"tcp:127.0.0.1:{port}"
            assert second.ok and second.text == "PARTIAL"
            nursery.cancel_scope.cancel()


async def test_client_mode_refused_is_unavailable():
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nobody listens there now
    send, _ = trio.open_memory_channel[Scan](1)
    with pytest.raises(DeviceUnavailableError, match="cannot connect"):
        await serve_tcp_scanner_client("127.0.0.1", port, send, station="T1")


async def test_client_mode_reconnects_after_a_reset():
    send, scans = trio.open_memory_channel[Scan](100)
    scanner = TcpScannerServer()
    opens = 0
    reopened = trio.Event()
    outages: list[str] = []

    def on_open() -> None:
        nonlocal opens
        opens += 1
        if opens == 2:
            reopened.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(scanner.serve)
            serve = functools.partial(serve_tcp_scanner_client, "127.0.0.1", port, send, station="T1", framing=LF)
            await nursery.start(functools.partial(
                run_with_reopen, serve, device=f"tcp:127.0.0.1:{port}", backoff=Backoff(0.01, 0.05),
                on_open=on_open, on_unavailable=lambda error, delay: outages.append(error.message)))
            await scanner.wait_connected()
            await scanner.send(b"]C0BEFORE\n]C0HAL")
            assert (await receive(scans))[0].text == "BEFORE"
            await trio.sleep(0.02)
            await scanner.reset()  # RST: the scanner rebooted
            (partial,) = await receive(scans)
            assert partial.raw == b"]C0HAL" and not partial.ok
            await reopened.wait()
            await scanner.wait_connected()
            await scanner.send(b"]C0AFTER\n")
            assert (await receive(scans))[0].text == "AFTER"
            assert outages and "connection lost" in outages[0]
            nursery.cancel_scope.cancel()


async def test_server_mode_serves_several_scanners_and_survives_their_resets():
    send, scans = trio.open_memory_channel[Scan](100)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(functools.partial(
                serve_tcp_scanner_server, "127.0.0.1", 0, send, station="T2", framing=LF,
                names={"127.0.0.1": "dock-door-3"}))
            first, second = TcpScannerClient("127.0.0.1", port), TcpScannerClient("127.0.0.1", port)
            await first.connect()
            await second.connect()
            await first.send(b"]C0ONE\n")
            await second.send(b"]C0TWO\n")
            got = sorted(scan.text for scan in await receive(scans, 2))
            assert got == ["ONE", "TWO"]

            await first.send(b"]C0CU")
            await trio.sleep(0.02)
            await first.reset()
            (partial,) = await receive(scans)
            assert partial.raw == b"]C0CU" and "went away" in (partial.error or "")
            assert partial.device_id == "dock-door-3"

            await second.send(b"]C0STILL\n")  # the other connection is untouched
            assert (await receive(scans))[0].text == "STILL"
            await first.connect()  # the rebooted scanner comes back
            await first.send(b"]C0BACK\n")
            assert (await receive(scans))[0].text == "BACK"
            await second.aclose()
            await first.aclose()
            nursery.cancel_scope.cancel()


async def test_server_mode_names_unknown_peers_by_address():
    send, scans = trio.open_memory_channel[Scan](10)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(functools.partial(
                serve_tcp_scanner_server, "127.0.0.1", 0, send, station="T2"))
            client = TcpScannerClient("127.0.0.1", port)
            await client.connect()
            await client.send(b"]E09501101020917\r")
            (scan,) = await receive(scans)
            local_port = client.stream.socket.getsockname()[1]
            assert scan.device_id == f"tcp:127.0.0.1:{local_port}" and scan.gtin == GTIN
            await client.aclose()
            nursery.cancel_scope.cancel()


async def test_server_mode_cannot_listen_on_a_taken_port():
    send, _ = trio.open_memory_channel[Scan](1)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(functools.partial(serve_tcp_scanner_server, "127.0.0.1", 0, send, station="T"))
            with pytest.raises(DeviceUnavailableError, match="cannot listen"):
                await serve_tcp_scanner_server("127.0.0.1", port, send, station="T")
            nursery.cancel_scope.cancel()


def run_tcp_fuzz(data: bytes) -> tuple[list[bytes], list[bytes]]:
    sentinel = b"\n]C0END-OF-FUZZ\n"

    async def main() -> list[bytes]:
        send, scans = trio.open_memory_channel[Scan](10_000)
        got: list[bytes] = []
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                port = await nursery.start(functools.partial(
                    serve_tcp_scanner_server, "127.0.0.1", 0, send, station="F", framing=LF))
                client = TcpScannerClient("127.0.0.1", port)
                await client.connect()
                await client.send(data + sentinel)
                while not got or got[-1] != b"]C0END-OF-FUZZ":
                    got.append((await scans.receive()).raw)
                await client.aclose()
                nursery.cancel_scope.cancel()
        return got

    return trio.run(main), [f.data for f in Framer(LF).feed(data + sentinel, 0.0)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600))
def test_fuzzed_bytes_over_tcp_never_crash_and_lose_no_read(data):
    got, expected = run_tcp_fuzz(data)
    assert got == expected
