"""Fixed-mount TCP scanners, both ways round: one read per line.

Fixed-mount (tunnel, overhead) scanners push each read over TCP as a line. Depending on
the model and its setup either side opens the connection:

* **client mode** (``serve_tcp_scanner_client``): the scanner listens (often port 23 or
  51236) and the gateway connects. One call serves one connection; when the scanner
  resets or closes it, ``DeviceUnavailableError`` -- ``run_with_reopen`` connects again.
  The ``device_id`` is ``tcp:HOST:PORT`` of the scanner, stable over reconnects.
* **server mode** (``serve_tcp_scanner_server``): the gateway listens and scanners
  connect. Each connection is served until it ends; the listener keeps running, so a
  scanner that reconnects after a reset simply resumes. A connection's ``device_id`` is
  ``names[peer host]`` when configured (stable identity), else ``tcp:HOST:PORT`` of the
  peer (whose port changes with every connection).

Reads are framed and decoded like every other scanner's (``scan_reader.read_scans``).
TCP keepalive is switched on so a scanner that lost power without a FIN or RST is
noticed (after ``keepalive_s`` + 3 probes) rather than waited for forever.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import NoReturn

import trio

from devices.framing import FramingConfig
from devices.scan import Scan
from devices.scan_reader import READ_CHUNK_BYTES, ChunkReader, ScanAssembler, read_scans
from gateway._errors import DeviceUnavailableError

log = logging.getLogger(__name__)


def set_keepalive(stream: trio.SocketStream, keepalive_s: float) -> None:
    """TCP keepalive: probe an idle connection after ``keepalive_s``, every ``keepalive_s / 3``."""
    sock = stream.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle = max(1, int(keepalive_s))
    for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", max(1, idle // 3)), ("TCP_KEEPCNT", 3)):
        option = getattr(socket, name, None)
        if option is not None:  # Linux has all three; other platforms may not
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def stream_chunks(stream: trio.abc.ReceiveStream, device_id: str) -> ChunkReader:
    """A chunk reader for a TCP stream; a reset raises ``DeviceUnavailableError``."""

    async def read_chunk() -> bytes:
        try:
            return bytes(await stream.receive_some(READ_CHUNK_BYTES))
        except (trio.BrokenResourceError, OSError) as exc:
            raise DeviceUnavailableError(device_id, f"connection lost: {exc.__cause__ or exc}") from exc

    return read_chunk


async def serve_tcp_scanner_client(
    host: str,
    port: int,
    send_channel: trio.MemorySendChannel[Scan],
    *,
    station: str,
    framing: FramingConfig | None = None,
    device_id: str | None = None,
    connect_timeout_s: float = 5.0,
    keepalive_s: float = 10.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Connect to a scanner that listens, and read scans until the connection ends.

    Args:
        host, port: the scanner's address.
        send_channel: every read goes here as a ``Scan`` (errors included).
        station: the pack station this scanner belongs to.
        framing: terminator etc.; default CR-terminated lines.
        device_id: the scanner's name; default ``tcp:HOST:PORT``.
        connect_timeout_s: give up a connect attempt after this long.
        keepalive_s: idle time before TCP keepalive probes start.
        task_status: ``started()`` once connected.

    Raises:
        DeviceUnavailableError: refused, timed out, reset or closed by the scanner.
    """
    name = device_id or f"tcp:{host}:{port}"
    try:
        with trio.fail_after(connect_timeout_s):
            stream = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError) as exc:
        raise DeviceUnavailableError(name, f"cannot connect to {host}:{port}: {exc}") from exc
    async with stream:
        set_keepalive(stream, keepalive_s)
        log.info("TCP scanner %s connected (station %s)", name, station)
        assembler = ScanAssembler(framing or FramingConfig(), station=station, device_id=name)
        task_status.started()
        await read_scans(stream_chunks(stream, name), assembler, send_channel)


async def serve_tcp_scanner_server(
    host: str,
    port: int,
    send_channel: trio.MemorySendChannel[Scan],
    *,
    station: str,
    framing: FramingConfig | None = None,
    names: Mapping[str, str] | None = None,
    keepalive_s: float = 10.0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Listen for scanners that connect, and read scans from each until it disconnects.

    Args:
        host, port: where to listen (port 0: any free port, reported by ``started``).
        send_channel: every read of every connection goes here as a ``Scan``.
        station: the pack station these scanners belong to.
        framing: terminator etc., for every connection; default CR-terminated lines.
        names: peer host -> device name, for a stable ``device_id``.
        keepalive_s: idle time before TCP keepalive probes start.
        task_status: ``started(port)`` once listening, with the bound port.

    Raises:
        DeviceUnavailableError: cannot listen (address in use, no permission). A
            connection that ends is logged, not raised: the scanner will reconnect.
    """
    config = framing or FramingConfig()
    peer_names = dict(names or {})
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise DeviceUnavailableError(f"tcp-listen:{host}:{port}", f"cannot listen: {exc}") from exc

    async def serve_connection(stream: trio.SocketStream) -> None:
        peer_host, peer_port = stream.socket.getpeername()[:2]
        name = peer_names.get(peer_host) or f"tcp:{peer_host}:{peer_port}"
        set_keepalive(stream, keepalive_s)
        log.info("TCP scanner %s connected (station %s)", name, station)
        assembler = ScanAssembler(config, station=station, device_id=name)
        try:
            await read_scans(stream_chunks(stream, name), assembler, send_channel)
        except DeviceUnavailableError as exc:
            log.info("TCP scanner %s disconnected: %s", name, exc.message)
        finally:
            await stream.aclose()

    bound_port = int(listeners[0].socket.getsockname()[1])
    log.info("listening for TCP scanners on %s:%d", host, bound_port)
    await trio.serve_listeners(serve_connection, listeners, task_status=_PortStatus(task_status, bound_port))
    raise AssertionError("unreachable: serve_listeners returns only by cancellation")


class _PortStatus:
    """Reports the bound port instead of ``serve_listeners``' list of listeners."""

    def __init__(self, outer: trio.TaskStatus[int], port: int) -> None:
        self._outer = outer
        self._port = port

    def started(self, value: object = None) -> None:
        self._outer.started(self._port)


__all__ = ["serve_tcp_scanner_client", "serve_tcp_scanner_server", "set_keepalive", "stream_chunks"]
