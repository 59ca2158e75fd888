"""The builtin HTTP/1.1 server in a process of its own, for the adversarial tests.

``python -m tests._support.h1_server_process ['{"max_connections": 24, ...}']`` serves a small
ASGI app with ``serve_http1`` on 127.0.0.1, a free port, with the small limits of
``LIMITS`` (a JSON object argument overrides them), and prints ``listening <port>`` on
stdout once it accepts. It runs until killed or until its stdin closes (the test process that
started it is gone: it never outlives its tests).

The test side is below the app: ``ServerProcess`` starts it and reads its memory, and raw
socket helpers send bytes and parse what comes back (``exchange``, ``get``, ``Prober``).

Routes:
    ``GET /livez``: ``live``, no work (what the tests' normal client asks).
    ``POST /webhook``: reads the whole body (at most 1 MiB, as a webhook route would) and
        answers its length; on a disconnect it returns without a reply, so the server's own
        error reply (400, 431) is what the client gets.
    ``GET /big``: 64 KiB of body (fills a client's buffers that never reads).
    ``/__smuggled__``: the marker. Reaching it means the server took a request from bytes
        that were a body or should have been refused; it counts the hit and answers
        ``SMUGGLED``.
    ``GET /__stats__``: ``{"smuggled": hits, "requests": requests served}`` as JSON.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from math import inf
from pathlib import Path
from typing import Any

import httptools
import trio

from gateway._server import ServerSettings, serve_http1

LIMITS: dict[str, Any] = {
    "max_connections": 24,
    "request_timeout_s": 2.0,
    "keep_alive_timeout_s": 2.0,
    "graceful_timeout_s": 0.5,
}
ROOT = Path(__file__).resolve().parents[2]
MAX_BODY_BYTES = 1024 * 1024
BIG_BODY = b"b" * (64 * 1024)

_counts = {"smuggled": 0, "requests": 0}


async def _reply(send: Any, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The routes of the module docstring."""
    _counts["requests"] += 1
    path = scope["path"]
    if path == "/livez":
        await _reply(send, 200, b"live")
    elif path == "/__smuggled__":
        _counts["smuggled"] += 1
        await _reply(send, 200, b"SMUGGLED")
    elif path == "/__stats__":
        await _reply(send, 200, json.dumps(_counts).encode(), b"application/json")
    elif path == "/big":
        await _reply(send, 200, BIG_BODY)
    elif path == "/webhook":
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message["body"])
            if size > MAX_BODY_BYTES:
                await _reply(send, 413, b"too large")
                return
            if not message["more_body"]:
                break
        await _reply(send, 200, b"%d" % size)
    else:
        await _reply(send, 404, b"not found")


async def parent_gone() -> None:
    """Return when stdin, a pipe from the test process, closes: the server never outlives its tests."""
    await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)


async def main(limits: dict[str, Any]) -> None:
    async def report(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_http1(app, [("127.0.0.1", 0)], shutdown_trigger=parent_gone,
                          settings=ServerSettings(**limits), task_status=task_status)

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(report)
        port = binds[0].rsplit(":", 1)[1]
        print(f"listening {port}", flush=True)


# -- the test side: start the process, talk to it over raw sockets -----------------------------


class ServerProcess:
    """The server process, started by ``start()``; ``stop()`` kills it."""

    def __init__(self, limits: dict[str, Any]) -> None:
        self.limits = {**LIMITS, **limits}
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, within_s: float = 20.0) -> ServerProcess:
        self.process = subprocess.Popen([sys.executable, "-m", "tests._support.h1_server_process",
                                         json.dumps(self.limits)],
                                        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], within_s)
        line = self.process.stdout.readline().decode() if ready else ""
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the server process did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_bytes(self) -> int:
        """The process's resident memory (``VmRSS`` of ``/proc/<pid>/status``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


class _Replies:
    """httptools' callback object: the replies in a byte stream, as far as it parses."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.parser = httptools.HttpResponseParser(self)
        self.broken = False

    def on_message_begin(self) -> None:
        self.current = Reply(0, {}, b"")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self.current.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        self.replies.append(self.current)

    def feed(self, data: bytes) -> None:
        if not self.broken:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.broken = True


@dataclass
class Exchange:
    """What a raw client saw: the replies, the bytes, whether the server closed."""

    replies: list[Reply]
    received: bytes
    closed: bool

    @property
    def statuses(self) -> list[int]:
        return [reply.status for reply in self.replies]


async def connect(port: int, receive_buffer: int = 0) -> trio.socket.SocketType:
    """A TCP connection to 127.0.0.1:``port``, Nagle off (pieces leave as sent)."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await sock.connect(("127.0.0.1", port))
    return sock


async def read_some(sock: trio.socket.SocketType) -> bytes:
    """One read; b"" when the server closed or reset."""
    try:
        return await sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return b""


async def exchange(port: int, payload: bytes, *, pieces: int = 1, wait_s: float = 2.0,
                   replies: int | None = None) -> Exchange:
    """Send ``payload`` (in ``pieces`` 10 ms apart), then read until the server closes, or
    ``replies`` replies arrived (then 0.2 s more), or ``wait_s`` passed."""
    parsed = _Replies()
    received = b""
    closed = False
    with await connect(port) as sock:
        size = -(-len(payload) // pieces)
        try:
            for start in range(0, len(payload), size):
                await sock.send(payload[start:start + size])
                if pieces > 1:
                    await trio.sleep(0.01)
        except (ConnectionResetError, BrokenPipeError):
            pass  # refused before all of it was sent: what it answered is still readable
        with trio.move_on_after(wait_s) as reading:
            while True:
                data = await read_some(sock)
                if not data:
                    closed = True
                    break
                received += data
                parsed.feed(data)
                if replies is not None and len(parsed.replies) >= replies:
                    reading.deadline = min(reading.deadline, trio.current_time() + 0.2)
    return Exchange(parsed.replies, received, closed)


async def get(port: int, path: str) -> tuple[Reply | None, float]:
    """``GET path`` on a new connection: the reply (None if the server closed first) and the
    seconds it took from the connect."""
    started = trio.current_time()
    seen = await exchange(port, f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode(),
                          wait_s=10.0, replies=1)
    return (seen.replies[0] if seen.replies else None), trio.current_time() - started


async def smuggled_hits(port: int) -> int:
    """How often the marker route was reached so far."""
    reply, _ = await get(port, "/__stats__")
    assert reply is not None and reply.status == 200
    hits: int = json.loads(reply.body)["smuggled"]
    return hits


@dataclass
class Prober:
    """A normal client during an attack: ``GET /livez`` on a new connection every
    ``interval_s`` until ``stop`` is set; ``latencies_s`` (inf: no 200). A connection closed
    before any reply is retried once, as HTTP clients do for an idempotent request; the
    latency counts both tries."""

    port: int
    interval_s: float = 0.2
    latencies_s: list[float] = field(default_factory=list)
    stop: trio.Event = field(default_factory=trio.Event)

    async def run(self) -> None:
        while not self.stop.is_set():
            reply, took_s = await get(self.port, "/livez")
            if reply is None:  # closed before any reply (evicted as it connected): clients retry an idempotent
                reply, again_s = await get(self.port, "/livez")  # GET once (RFC 9110 9.2.2); both count
                took_s += again_s
            self.latencies_s.append(took_s if reply is not None and reply.status == 200 else inf)
            with trio.move_on_after(self.interval_s):
                await self.stop.wait()

    @property
    def worst_s(self) -> float:
        return max(self.latencies_s, default=inf)


if __name__ == "__main__":
    trio.run(main, {**LIMITS, **(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})})
