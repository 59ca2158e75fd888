"""Scanner simulators speaking the real wire protocols: a pty, TCP both ways, evdev records.

Each plays the scanner's side of one driver, over the same kind of file descriptor or
socket the real device uses, so the drivers under test (and the ``make run`` demo) run
their production code paths:

* ``PtyScanner``: a serial scanner on a pseudo-terminal. The driver opens ``path``, a
  symlink like udev's ``/dev/serial/by-id/...``; ``unplug()`` closes the pty (the
  driver reads end of file; a pulled USB adapter gives EIO: both mean "unplugged") and
  removes the link; ``plug()`` makes a new pty and points the link at it.
* ``TcpScannerServer``: a fixed-mount scanner that listens (the gateway connects,
  client mode); ``TcpScannerClient``: one that connects to the gateway (server mode).
  ``reset()`` aborts connections with an RST.
* ``HidScannerWriter`` and ``key_records`` (``devices.simulators.wedge``): a keyboard wedge typing a code as
  ``struct input_event`` records (press/release, Shift, EV_MSC scan codes, EV_SYN)
  into a FIFO the HID driver reads as it reads ``/dev/input/event*``.

``frame()`` builds what a scanner sends for one read: prefix, AIM identifier, data,
suffix, terminator. ``python -m devices.simulators.scanner pty|tcp-listen|tcp-connect|hid
TARGET`` runs one demo scanner sending ``DEMO_READS`` (one with a bad check digit).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import struct
import tty
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from devices.simulators._fd import write_all
from devices.simulators.wedge import HidScannerWriter, key_records


def frame(data: str | bytes, *, aim: str = "", terminator: bytes = b"\r", prefix: bytes = b"",
          suffix: bytes = b"") -> bytes:
    """The bytes a scanner sends for one read: ``prefix + aim + data + suffix + terminator``."""
    body = data.encode() if isinstance(data, str) else data
    return prefix + aim.encode() + body + suffix + terminator


class PtyScanner:
    """A serial scanner at the far end of a pseudo-terminal.

    Args:
        link: the stable path the driver is configured with (a symlink, like udev's
            by-id links); ``None``: use the pty's own ``/dev/pts/N``, which changes
            with every ``plug()``.
    """

    def __init__(self, link: str | os.PathLike[str] | None = None) -> None:
        self.link = Path(link) if link is not None else None
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.tty_path = ""

    def __repr__(self) -> str:
        state = f"plugged at {self.tty_path}" if self.plugged else "unplugged"
        return f"PtyScanner({str(self.link) if self.link else self.tty_path!r}, {state})"

    @property
    def plugged(self) -> bool:
        return self.master_fd is not None

    @property
    def path(self) -> str:
        """What the driver opens: the link, or the pty itself."""
        return str(self.link) if self.link is not None else self.tty_path

    def plug(self) -> str:
        """Create the pty (raw mode) and point the link at it; returns ``path``."""
        if self.plugged:
            return self.path
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation before the driver configures it
        os.set_blocking(master, False)
        self.master_fd, self._slave_fd = master, slave
        self.tty_path = os.ttyname(slave)
        if self.link is not None:
            staging = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
            staging.symlink_to(self.tty_path)
            staging.replace(self.link)  # atomic, like udev replacing a by-id link
        return self.path

    def unplug(self) -> None:
        """Close the pty: the driver reads end of file, as after an unplug; the link disappears."""
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        for fd in (self.master_fd, self._slave_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master_fd = self._slave_fd = None

    close = unplug

    def __enter__(self) -> PtyScanner:
        self.plug()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.unplug()

    async def send(self, data: bytes) -> None:
        """Write bytes as the scanner would (use ``frame()`` for a whole read)."""
        if self.master_fd is None:
            raise RuntimeError("the scanner is unplugged")
        await write_all(self.master_fd, data)


class TcpScannerServer:
    """A fixed-mount scanner that listens; the gateway connects to it (client mode).

    Start it with ``await nursery.start(scanner.serve)`` (returns the port). ``send`` pushes
    bytes to every connected gateway; one that went away (even killed) leaves ``connections``
    at once, so ``wait_connected`` after a restart waits for the new connection."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.connections: list[trio.SocketStream] = []
        self._connected = trio.Event()

    def __repr__(self) -> str:
        return f"TcpScannerServer({self.host}:{self.port}, {len(self.connections)} connected)"

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; ``started(port)``."""
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = int(listeners[0].socket.getsockname()[1])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._hold, listeners)
            task_status.started(self.port)

    async def _hold(self, stream: trio.SocketStream) -> None:
        self.connections.append(stream)
        self._connected.set()
        try:  # a gateway sends nothing: reading only notices it leave (EOF, or a reset when it was killed)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while await stream.receive_some(4096):
                    pass
        finally:
            if stream in self.connections:
                self.connections.remove(stream)

    async def wait_connected(self) -> None:
        """Until at least one gateway is connected."""
        while not self.connections:
            self._connected = trio.Event()
            await self._connected.wait()

    async def send(self, data: bytes) -> None:
        """Send bytes to every connected gateway."""
        for stream in list(self.connections):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(data)

    async def reset(self) -> None:
        """Abort every connection with a TCP RST (a scanner rebooting)."""
        for stream in list(self.connections):
            self.connections.remove(stream)
            await abort(stream)


class TcpScannerClient:
    """A fixed-mount scanner that connects to the gateway's listener (server mode)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.stream: trio.SocketStream | None = None

    def __repr__(self) -> str:
        return f"TcpScannerClient(to {self.host}:{self.port}, {'connected' if self.stream else 'closed'})"

    async def connect(self) -> None:
        self.stream = await trio.open_tcp_stream(self.host, self.port)

    async def send(self, data: bytes) -> None:
        if self.stream is None:
            raise RuntimeError("not connected")
        await self.stream.send_all(data)

    async def reset(self) -> None:
        """Abort the connection with a TCP RST."""
        if self.stream is not None:
            stream, self.stream = self.stream, None
            await abort(stream)

    async def aclose(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            await stream.aclose()


async def abort(stream: trio.SocketStream) -> None:
    """Close with SO_LINGER 0: the peer sees ECONNRESET, not an orderly EOF."""
    with contextlib.suppress(OSError):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


#: What the demo scanners read, in turn: (AIM identifier, data). GS is ``"\x1d"``.
DEMO_READS: tuple[tuple[str, str], ...] = (
    ("]E0", "9501101020917"),                                  # EAN-13, a product
    ("]C0", "SF1234567890"),                                   # Code 128, a shipping label
    ("]C1", "010950110102091717271231\x1d10LOT-42"),            # GS1-128: GTIN, expiry, lot
    ("]d2", "010950110102091721SN0001\x1d10LOT-42"),           # GS1 DataMatrix with a serial
    ("]E0", "9501101020918"),                                  # a smudged EAN-13: bad check digit
)


async def _demo(kind: str, target: str, port: int, every_s: float, count: int) -> None:
    """Run one demo scanner until ``count`` reads are sent (0: for ever)."""
    reads = (DEMO_READS[n % len(DEMO_READS)] for n in range(count or 1 << 62))
    cleanups: list[Callable[[], None]] = []
    try:
        async with trio.open_nursery() as nursery:
            send: Callable[[str, str], Awaitable[None]]
            if kind == "pty":
                pty = PtyScanner(target)
                cleanups.append(pty.unplug)
                print(f"serial scanner on {pty.plug()} -> {pty.tty_path}", flush=True)

                async def send(aim: str, data: str) -> None:
                    await pty.send(frame(data, aim=aim))
            elif kind == "tcp-listen":
                server = TcpScannerServer(target, port)
                print(f"TCP scanner listening on {target}:{await nursery.start(server.serve)}", flush=True)
                await server.wait_connected()

                async def send(aim: str, data: str) -> None:
                    await server.send(frame(data, aim=aim))
            elif kind == "tcp-connect":
                client = TcpScannerClient(target, port)
                await client.connect()

                async def send(aim: str, data: str) -> None:
                    await client.send(frame(data, aim=aim))
            else:
                writer = HidScannerWriter(target)
                cleanups.append(writer.unplug)
                print(f"keyboard wedge typing into FIFO {target} (waiting for a reader)", flush=True)
                await writer.plug()

                async def send(aim: str, data: str) -> None:
                    await writer.type(aim + data)
            for aim, data in reads:
                await trio.sleep(every_s)
                print(f"read {aim}{data!r}", flush=True)
                await send(aim, data)
            nursery.cancel_scope.cancel()
    finally:
        for cleanup in cleanups:
            cleanup()


def main(argv: list[str] | None = None) -> int:
    """``python -m devices.simulators.scanner pty|tcp-listen|tcp-connect|hid TARGET``: a demo scanner."""
    p = argparse.ArgumentParser(prog="python -m devices.simulators.scanner", description=main.__doc__)
    p.add_argument("kind", choices=["pty", "tcp-listen", "tcp-connect", "hid"])
    p.add_argument("target", help="pty: the link to create; tcp-*: the host; hid: the FIFO to write")
    p.add_argument("--port", type=int, default=51236, help="TCP port (default 51236)")
    p.add_argument("--every-s", type=float, default=2.0, help="seconds between reads (default 2)")
    p.add_argument("--count", type=int, default=0, help="reads to send, 0 = for ever")
    args = p.parse_args(argv)
    try:
        trio.run(_demo, args.kind, args.target, args.port, args.every_s, args.count)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "HidScannerWriter", "PtyScanner", "TcpScannerClient", "TcpScannerServer", "abort", "frame",
    "key_records", "main",
]
